//! End to end on the real default model (Qwen2.5-Coder-0.5B-Instruct Q4_K_M)
//! through the real HTTP server: upload a real document, summarize it, check
//! every citation against the text, restart, and find everything again. The
//! document is the abstract and introduction of the Bitcoin whitepaper (about
//! 850 prompt tokens): long enough to be a real summary, short enough for CI
//! on two cores. Real PDFs go through the same upload path in api.rs.

use serde_json::{json, Value};

use crate::common::{analyze, default_model, get_html, get_json, read_corpus, settings, text_of, upload, TestServer};

const DOC: &str = "bitcoin_intro.txt";

#[actix_web::test]
async fn real_model_summarizes_a_real_pdf_with_verified_citations_that_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(dir.path());
    settings.engine.model = default_model();
    let engine = docent::load_engine(&settings).await.expect("the default model loads");
    let s = TestServer::start(&settings, engine.clone()).await;

    let resp = upload(&s, DOC, read_corpus(DOC)).await;
    assert_eq!(resp.status(), 201);
    let doc: Value = resp.json().await.unwrap();
    let id = doc["id"].as_str().unwrap().to_owned();
    let text = text_of(&s, &id).await;

    let started = std::time::Instant::now();
    let resp = analyze(&s, &id, json!({"pipeline": "full", "task": "summary"})).await;
    let status = resp.status();
    let a: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{a}");
    eprintln!("summary in {:?}: {}", started.elapsed(), serde_json::to_string_pretty(&a).unwrap());

    let cites = a["citations"].as_array().unwrap();
    assert!(!cites.is_empty(), "the answer cites nothing");
    let sentences = a["answer"]["sentences"].as_array().unwrap();
    assert!(!sentences.is_empty());
    for s in sentences {
        assert!(!s["citations"].as_array().unwrap().is_empty(), "an uncited sentence: {s}");
    }
    for c in cites {
        // Every citation resolves to a real span of the text, verified or not.
        let (start, end) = (c["start"].as_u64().unwrap() as usize, c["end"].as_u64().unwrap() as usize);
        assert_eq!(
            text.get(start..end),
            c["quote"].as_str(),
            "a citation's quote differs from the text at its offsets"
        );
        assert!(c["page"].as_u64().unwrap() >= 1);
        if c["valid"] != true {
            assert!(c["reason"].is_string(), "an invalid citation without a reason: {c}");
        }
    }
    let valid = cites.iter().filter(|c| c["valid"] == true).count();
    eprintln!("{valid} of {} citations verified", cites.len());
    assert!(valid >= 1, "no citation of the real model verified: {a}");
    assert!(a["usage"]["prompt_tokens"].as_u64().unwrap() > doc["tokens"].as_u64().unwrap());
    assert!(a["timings"]["prefill_ms"].as_u64().unwrap() > 0);

    // A question about the same document: answered with citations, or refused in the one allowed way.
    let q = "What problem does the paper propose a solution to?";
    let resp = analyze(&s, &id, json!({"task": "question", "question": q})).await;
    let status = resp.status();
    let qa: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{qa}");
    eprintln!("question: {}", serde_json::to_string_pretty(&qa["answer"]).unwrap());
    assert_eq!(qa["question"], q);
    for sentence in qa["answer"]["sentences"].as_array().unwrap() {
        let refused = sentence["text"] == docent::pipeline::REFUSAL;
        assert!(refused || !sentence["citations"].as_array().unwrap().is_empty(), "an uncited answer: {sentence}");
    }
    let listed = get_json(&s, &format!("/api/v1/documents/{id}/analyses")).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);

    // The analysis page marks every cited span.
    let html = get_html(&s, &format!("/analyses/{}", a["id"].as_str().unwrap())).await;
    for c in cites.iter().filter(|c| c["end"].as_u64() > c["start"].as_u64()) {
        assert!(html.contains(&format!("id=\"span-{}-{}\"", c["start"], c["end"])));
    }
    s.stop().await;

    let s = TestServer::start(&settings, engine).await;
    let again: Value = get_json(&s, &format!("/api/v1/analyses/{}", a["id"].as_str().unwrap())).await;
    assert_eq!(again, a);
    let doc_again: Value = get_json(&s, &format!("/api/v1/documents/{id}")).await;
    assert_eq!(doc_again, doc);
    s.stop().await;
}
