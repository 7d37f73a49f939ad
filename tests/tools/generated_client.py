"""Generates a Python client from docent's OpenAPI document with openapi-python-client (PyPI) and
uses it as a client program would: upload a PDF, then ask for its summary.

stdin: {"spec": FILE, "out": DIR, "base_url": URL, "pdf": FILE}
stdout: {"document_id", "filename", "analysis_id", "analysis_document_id", "task", "sentences"}
"""

import importlib
import json
import os
import subprocess
import sys


def main():
    args = json.load(sys.stdin)
    generator = os.path.join(os.path.dirname(sys.executable), "openapi-python-client")
    subprocess.run(
        [generator, "generate", "--path", args["spec"], "--output-path", os.path.join(args["out"], "docent_client"),
         "--meta", "none"],
        check=True, stdout=sys.stderr, stderr=sys.stderr,
    )
    sys.path.insert(0, args["out"])
    client_mod = importlib.import_module("docent_client")
    create_document = importlib.import_module("docent_client.api.documents.create_document")
    create_analysis = importlib.import_module("docent_client.api.analyses.create_analysis")
    models = importlib.import_module("docent_client.models")
    types = importlib.import_module("docent_client.types")

    client = client_mod.Client(base_url=args["base_url"], raise_on_unexpected_status=True, timeout=120)
    with open(args["pdf"], "rb") as f:
        form = models.UploadForm(file=types.File(payload=f, file_name=os.path.basename(args["pdf"]),
                                                 mime_type="application/pdf"))
        doc = create_document.sync(client=client, body=form)
    if not isinstance(doc, models.Document):
        sys.exit(f"upload answered {doc!r}")
    analysis = create_analysis.sync(doc.id, client=client, body=models.AnalysisRequest(task=models.Task.SUMMARY))
    if not isinstance(analysis, models.Analysis):
        sys.exit(f"summary answered {analysis!r}")
    print(json.dumps({
        "document_id": doc.id,
        "filename": doc.filename,
        "analysis_id": analysis.id,
        "analysis_document_id": analysis.document_id,
        "task": analysis.task.value,
        "sentences": len(analysis.answer.sentences),
    }))


if __name__ == "__main__":
    main()
