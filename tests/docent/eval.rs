//! `docent eval` end to end on the real models: every suite, two pipelines, the files it writes,
//! and the Evaluations page serving the run.

use serde_json::Value;

use crate::common::{client, corpus, get_html, models_dir, TestServer};

/// sha256 of Qwen2.5-Coder-0.5B-Instruct Q4_K_M, as scripts/fetch-models.sh checks it.
const DEFAULT_MODEL_SHA256: &str = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32";

async fn run_docent(args: Vec<std::ffi::OsString>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_docent")).args(args).output().unwrap()
    })
    .await
    .unwrap()
}

#[actix_web::test]
async fn an_eval_run_scores_every_suite_on_the_real_models_and_the_page_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("evals").join("run-1");
    let args: Vec<std::ffi::OsString> = vec![
        "--models-dir".into(),
        models_dir().into(),
        "--cpu".into(),
        "true".into(),
        "--max-answer-tokens".into(),
        "128".into(),
        "eval".into(),
        "--suite".into(),
        "all".into(),
        "--limit".into(),
        "1".into(),
        "--pipelines".into(),
        "full,chunked".into(),
        "--needle-tokens".into(),
        "300".into(),
        "--needle-depths".into(),
        "50".into(),
        "--docs".into(),
        corpus("eval/cuad").into(),
        "--out".into(),
        out.clone().into(),
    ];
    let run = run_docent(args).await;
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

    let info: Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["model"]["sha256"][0][1], DEFAULT_MODEL_SHA256, "{info:#}");
    assert!(info["baseline"]["sha256"][0][1].as_str().unwrap().len() == 64);

    let lines: Vec<Value> = std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<(&str, &str)> =
        lines.iter().map(|l| (l["item"].as_str().unwrap(), l["pipeline"].as_str().unwrap())).collect();
    let cuad = "cuad/lejuholdingsltd_20140121_drs__on_f_1__ex_10_26_8473102_ex_10_26_content_license_/Governing Law";
    let summary = "summary/cardlyticsinc_20180112_s_1_ex_10_16_11002987_ex_10_16_maintenance_agreement4.txt";
    assert_eq!(
        ids,
        [
            (cuad, "full"),
            (cuad, "chunked"),
            ("needle/300/50", "full"),
            ("needle/300/50", "chunked"),
            (summary, "full"),
            (summary, "chunked")
        ]
    );
    for line in &lines {
        let Some(analysis) = line.get("analysis") else {
            // An item without an answer says why, with a stable code.
            assert!(line["error"]["code"].is_string(), "{line:#}");
            continue;
        };
        let scores = &line["scores"];
        assert_eq!(
            scores["counts"]["citations"].as_u64().unwrap() as usize,
            analysis["citations"].as_array().unwrap().len()
        );
        match line["suite"].as_str().unwrap() {
            // The gold clause was found in docent's text of the contract, so its spans are scored.
            "cuad" => assert!(scores["present"] == true && scores["gold_located"] == true, "{line:#}"),
            "needle" => {
                // The needle sentence is in the generated haystack, at the recorded offset.
                let sentence = line["gold"]["sentence"].as_str().unwrap();
                assert!(sentence.starts_with("The door code of the "), "{sentence}");
                assert!(scores["recalled"].is_boolean() && scores["cited_needle"].is_boolean());
            }
            _ => assert!(scores["sections"].as_u64().unwrap() >= 1),
        }
    }
    // The full-context model read the haystack whole: about 300 tokens of it, plus the prompt, in
    // each of the question's two requests (the usage counts both).
    let needle_full = &lines[2]["analysis"]["usage"]["prompt_tokens"];
    assert!(needle_full.as_u64().is_some_and(|t| (600..1800).contains(&t)), "{needle_full}");

    let summary: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let suites: Vec<&str> =
        summary["suites"].as_array().unwrap().iter().map(|s| s["suite"].as_str().unwrap()).collect();
    assert_eq!(suites, ["cuad", "needle", "summary"]);
    for s in summary["suites"].as_array().unwrap() {
        for p in s["pipelines"].as_array().unwrap() {
            assert_eq!(p["items"], 1);
            // A rate over items (a summary's first ones count citations; its coverage counts items).
            let per_item = if s["suite"] == "summary" { &p["metrics"][2] } else { &p["metrics"][0] };
            assert_eq!(per_item["value"]["n"], 1, "{p:#}");
            let v = &per_item["value"];
            assert!(v["low"].as_f64().unwrap() <= v["estimate"].as_f64().unwrap());
        }
    }
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        report.contains("<svg") && report.contains("Needle recall by depth") && report.contains(DEFAULT_MODEL_SHA256)
    );

    // The server lists runs under its data dir and serves their files, nothing else.
    let s = TestServer::scripted(dir.path(), 10_000).await;
    let page = get_html(&s, "/evals").await;
    assert!(page.contains("run-1") && page.contains("/evals/run-1/report.html"), "{page}");
    let resp = client().get(s.url("/evals/run-1/report.html")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    assert_eq!(resp.text().await.unwrap(), report);
    for path in ["/evals/run-1/run.json.bak", "/evals/..%2F..%2Fetc/report.html", "/evals/run-2/report.html"] {
        let resp = client().get(s.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "eval_not_found", "{path}");
    }
    s.stop().await;
}

#[actix_web::test]
async fn a_document_docent_cannot_read_is_an_error_line_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::copy(corpus("encrypted_rc4_userpw-openpassword.pdf"), docs.join("locked.pdf")).unwrap();
    let out = dir.path().join("out");
    let args: Vec<std::ffi::OsString> = vec![
        "--models-dir".into(),
        models_dir().into(),
        "--cpu".into(),
        "true".into(),
        "eval".into(),
        "--suite".into(),
        "summary".into(),
        "--pipelines".into(),
        "full,chunked".into(),
        "--docs".into(),
        docs.into(),
        "--out".into(),
        out.clone().into(),
    ];
    let run = run_docent(args).await;
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let lines: Vec<Value> = std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_eq!(line["error"]["code"], "pdf_encrypted", "{line:#}");
        assert!(line.get("analysis").is_none());
    }
    let summary: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["suites"][0]["pipelines"][0]["errors"]["pdf_encrypted"], 1);
    assert!(std::fs::read_to_string(out.join("report.html")).unwrap().contains("pdf_encrypted"));
}
