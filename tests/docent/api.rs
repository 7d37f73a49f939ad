//! The REST API and the pages on a real HTTP server, with the scripted engine
//! (fast). The real model runs in e2e.rs.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::common::{
    analyze, client, get_html, get_json, read_corpus, settings, text_of, upload, ScriptedEngine, TestServer,
};

async fn json_of(resp: reqwest::Response) -> Value {
    resp.json().await.expect("JSON body")
}

#[actix_web::test]
async fn uploads_lists_serves_text_and_deletes_a_pdf() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 100_000).await;
    let resp = upload(&s, "bitcoin.pdf", read_corpus("bitcoin.pdf")).await;
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let doc = json_of(resp).await;
    assert_eq!(location, format!("/api/v1/documents/{}", doc["id"].as_str().unwrap()));
    assert_eq!(doc["pages"], 9);
    assert_eq!(doc["media_type"], "application/pdf");
    assert!(doc["tokens"].as_u64().unwrap() > 1000);
    assert_eq!(doc["sha256"].as_str().unwrap().len(), 64);

    let id = doc["id"].as_str().unwrap();
    let list = get_json(&s, "/api/v1/documents").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let text = text_of(&s, id).await;
    assert!(text.contains("A purely peer-to-peer version of electronic cash"));
    assert_eq!(text.chars().count() as u64, doc["chars"].as_u64().unwrap());

    let del = client().delete(s.url(&format!("/api/v1/documents/{id}"))).send().await.unwrap();
    assert_eq!(del.status(), 204);
    let gone = client().get(s.url(&format!("/api/v1/documents/{id}"))).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(json_of(gone).await["error"]["code"], "document_not_found");
    assert!(!dir.path().join("docs").join(id).exists(), "files of a deleted document remain");
    s.stop().await;
}

#[actix_web::test]
async fn bad_uploads_get_stable_error_codes() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 100_000).await;
    let cases: [(&str, Vec<u8>, u16, &str); 3] = [
        ("fake.pdf", b"not a pdf at all".to_vec(), 422, "pdf_corrupt"),
        ("locked.pdf", read_corpus("encrypted_rc4_userpw-openpassword.pdf"), 422, "pdf_encrypted"),
        ("blob.bin", vec![0, 159, 146, 150, 0, 1], 415, "unsupported_media_type"),
    ];
    for (name, bytes, status, code) in cases {
        let resp = upload(&s, name, bytes).await;
        assert_eq!(resp.status(), status, "{name}");
        assert_eq!(json_of(resp).await["error"]["code"], code, "{name}");
    }
    let none = client()
        .post(s.url("/api/v1/documents"))
        .multipart(reqwest::multipart::Form::new().text("x", "y"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 400);
    let list = get_json(&s, "/api/v1/documents").await;
    assert_eq!(list.as_array().unwrap().len(), 0, "a rejected upload was stored");
    s.stop().await;
}

#[actix_web::test]
async fn encrypted_pdf_opens_with_a_password_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 100_000).await;
    let part =
        reqwest::multipart::Part::bytes(read_corpus("encrypted_rc4_userpw-openpassword.pdf")).file_name("locked.pdf");
    let form = reqwest::multipart::Form::new().part("file", part).text("password", "openpassword");
    let resp = client().post(s.url("/api/v1/documents")).multipart(form).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    s.stop().await;
}

#[actix_web::test]
async fn analysis_resolves_and_verifies_citations_and_flags_unsupported_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 100_000).await;
    let doc = json_of(upload(&s, "bitcoin.pdf", read_corpus("bitcoin.pdf")).await).await;
    let id = doc["id"].as_str().unwrap();
    let text = text_of(&s, id).await;
    let resp = analyze(&s, id, json!({"pipeline": "full", "task": "summary"})).await;
    assert_eq!(resp.status(), 200);
    let a = json_of(resp).await;
    let cites = a["citations"].as_array().unwrap();
    assert_eq!(cites.len(), 3);
    for c in cites {
        let (start, end) = (c["start"].as_u64().unwrap() as usize, c["end"].as_u64().unwrap() as usize);
        assert_eq!(&text[start..end], c["quote"].as_str().unwrap());
    }
    assert_eq!(cites[0]["valid"], true);
    assert_eq!(cites[0]["page"], 1);
    assert_eq!(cites[2]["valid"], false, "a claim unrelated to its span must not verify");
    assert!(cites[2]["reason"].as_str().unwrap().starts_with("unsupported"));
    let sentence_cites: Vec<Value> =
        a["answer"]["sentences"].as_array().unwrap().iter().map(|s| s["citations"].clone()).collect();
    assert_eq!(sentence_cites, vec![json!([1]), json!([2]), json!([3])]);

    let again = get_json(&s, &format!("/api/v1/analyses/{}", a["id"].as_str().unwrap())).await;
    assert_eq!(again, a);
    s.stop().await;
}

#[actix_web::test]
async fn a_document_longer_than_the_context_is_refused_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 500).await;
    let doc = json_of(upload(&s, "bitcoin.pdf", read_corpus("bitcoin.pdf")).await).await;
    let resp = analyze(&s, doc["id"].as_str().unwrap(), json!({"task": "summary"})).await;
    assert_eq!(resp.status(), 422);
    let err = json_of(resp).await;
    assert_eq!(err["error"]["code"], "document_too_long");
    assert!(err["error"]["message"].as_str().unwrap().contains("accepts 500"));
    s.stop().await;
}

#[actix_web::test]
async fn malformed_requests_get_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 100_000).await;
    let doc = json_of(upload(&s, "note.txt", b"Docent reads whole documents and cites them.".to_vec()).await).await;
    let url = s.url(&format!("/api/v1/documents/{}/analyses", doc["id"].as_str().unwrap()));
    for body in [json!({"task": "poem"}), json!({"task": "question"}), json!({"task": "summary", "pipeline": "magic"})]
    {
        let resp = client().post(&url).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        assert_eq!(json_of(resp).await["error"]["code"], "invalid_request", "{body}");
    }
    let missing = client().get(s.url("/api/v1/analyses/nope")).send().await.unwrap();
    assert_eq!(json_of(missing).await["error"]["code"], "analysis_not_found");
    s.stop().await;
}

#[actix_web::test]
async fn documents_and_analyses_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 100_000).await;
    let doc = json_of(upload(&s, "bitcoin.pdf", read_corpus("bitcoin.pdf")).await).await;
    let id = doc["id"].as_str().unwrap().to_owned();
    let a = json_of(analyze(&s, &id, json!({"task": "summary"})).await).await;
    s.stop().await;

    let s = TestServer::scripted(dir.path(), 100_000).await;
    let doc2 = get_json(&s, &format!("/api/v1/documents/{id}")).await;
    assert_eq!(doc2, doc);
    let a2 = get_json(&s, &format!("/api/v1/analyses/{}", a["id"].as_str().unwrap())).await;
    assert_eq!(a2, a);
    let original = std::fs::read(dir.path().join("docs").join(&id).join("original.pdf")).unwrap();
    assert_eq!(original, read_corpus("bitcoin.pdf"), "the original upload is kept byte for byte");
    s.stop().await;
}

#[actix_web::test]
async fn pages_render_uploads_and_escape_document_text() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 100_000).await;
    let index = client().get(s.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(index.contains("enctype=\"multipart/form-data\""));

    let hostile = b"<script>alert('x')</script> Docent escapes every character of untrusted text.".to_vec();
    let part = reqwest::multipart::Part::bytes(hostile).file_name("evil<b>.txt");
    let resp = client()
        .post(s.url("/upload"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let page = get_html(&s, &location).await;
    assert!(page.contains("&lt;script&gt;alert("), "document text is not escaped");
    assert!(!page.contains("<script>alert("));
    assert!(page.contains("evil&lt;b&gt;.txt"));

    let id = location.rsplit('/').next().unwrap();
    let form = [("task", "summary")];
    let resp = client().post(s.url(&format!("/documents/{id}/analyze"))).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let analysis_url = resp.headers()["location"].to_str().unwrap().to_owned();
    let html = get_html(&s, &analysis_url).await;
    assert!(html.contains("<mark id=\"span-"), "cited span is not marked in the source");
    assert!(html.contains("class=\"cite valid\""));
    assert!(html.contains("class=\"cite invalid\""));

    let bad = client()
        .post(s.url("/upload"))
        .multipart(
            reqwest::multipart::Form::new()
                .part("file", reqwest::multipart::Part::bytes(b"nope".to_vec()).file_name("x.pdf")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("pdf_corrupt"));
    s.stop().await;
}

#[actix_web::test]
async fn a_full_queue_answers_503_with_retry_after_and_the_admitted_analysis_completes() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(dir.path());
    settings.max_queued = 1;
    let engine = ScriptedEngine { context_limit: 100_000, delay: std::time::Duration::from_secs(2) };
    let s = TestServer::start(&settings, Arc::new(engine)).await;
    let doc = json_of(upload(&s, "note.txt", b"Docent reads whole documents and cites them.".to_vec()).await).await;
    let id = doc["id"].as_str().unwrap();
    let (first, second) = tokio::join!(analyze(&s, id, json!({"task": "summary"})), async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        analyze(&s, id, json!({"task": "summary"})).await
    });
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 503);
    assert_eq!(second.headers()["retry-after"], "10");
    assert_eq!(json_of(second).await["error"]["code"], "engine_busy");
    s.stop().await;
}
