//! Batches through the HTTP API with the scripted engine (fast): uploads and stored documents,
//! per-item states and error codes, events, results, idempotency, cancel, a full queue. The real
//! model and the crash test are in batch_e2e.rs.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{client, get_json, read_corpus, settings, upload, ScriptedEngine, TestServer};

fn file_part(name: &str, bytes: Vec<u8>) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned())
}

pub async fn submit(
    server: &TestServer,
    files: &[(&str, Vec<u8>)],
    options: Value,
    key: Option<&str>,
) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new().text("options", options.to_string());
    for (name, bytes) in files {
        form = form.part("file", file_part(name, bytes.clone()));
    }
    let mut req = client().post(server.url("/api/v1/batches")).multipart(form);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    req.send().await.expect("batch request")
}

/// Poll the batch until every item has ended.
pub async fn wait_finished(server: &TestServer, id: &str, limit: Duration) -> Value {
    let start = std::time::Instant::now();
    loop {
        let batch = get_json(server, &format!("/api/v1/batches/{id}")).await;
        if matches!(batch["status"].as_str(), Some("done" | "cancelled")) {
            return batch;
        }
        assert!(start.elapsed() < limit, "batch not finished after {limit:?}: {batch:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn results(server: &TestServer, id: &str) -> Vec<Value> {
    let resp = client().get(server.url(&format!("/api/v1/batches/{id}/results"))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/x-ndjson"));
    let body = resp.text().await.unwrap();
    body.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect()
}

#[actix_web::test]
async fn a_batch_of_uploads_ends_every_item_with_an_analysis_or_a_coded_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 100_000).await;
    let files = [
        ("bitcoin_intro.txt", read_corpus("bitcoin_intro.txt")),
        ("cuad.pdf", read_corpus("cuad_limeenergy_distributor_agreement.pdf")),
        ("locked.pdf", read_corpus("encrypted_rc4_userpw-openpassword.pdf")),
    ];
    let resp = submit(&s, &files, json!({"pipelines": ["full", "chunked"], "task": "summary"}), None).await;
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let batch: Value = resp.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/batches/{}", batch["id"].as_str().unwrap()));
    assert_eq!((batch["total"].as_u64(), batch["done"].as_u64()), (Some(6), Some(0)));

    let id = batch["id"].as_str().unwrap();
    let end = wait_finished(&s, id, Duration::from_secs(60)).await;
    assert_eq!(
        (end["status"].as_str(), end["done"].as_u64(), end["failed"].as_u64()),
        (Some("done"), Some(4), Some(2))
    );
    for item in end["items"].as_array().unwrap() {
        assert_eq!(item["attempts"], 1, "{item}");
        if item["filename"] == "locked.pdf" {
            assert_eq!(
                (item["state"].as_str(), item["error"]["code"].as_str()),
                (Some("failed"), Some("pdf_encrypted"))
            );
        } else {
            assert_eq!(item["state"], "done", "{item}");
        }
    }
    // Cancelling a batch that has ended changes nothing.
    let late = client().post(s.url(&format!("/api/v1/batches/{id}/cancel"))).send().await.unwrap();
    assert_eq!(late.json::<Value>().await.unwrap()["status"], "done");
    let lines = results(&s, id).await;
    assert_eq!(lines.len(), 6);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["item"], i);
        if line["state"] == "done" {
            let analysis = &line["analysis"];
            assert_eq!(analysis["document_id"], line["document_id"]);
            assert_eq!(analysis["pipeline"], line["pipeline"]);
            assert!(analysis["citations"].as_array().unwrap().iter().any(|c| c["valid"] == true), "{line}");
        }
    }
    // The uploads are ordinary documents now; the encrypted one was kept, not stored half-parsed.
    let docs = get_json(&s, "/api/v1/documents").await;
    assert_eq!(docs.as_array().unwrap().len(), 2);
    s.stop().await;
}

#[actix_web::test]
async fn the_event_stream_reports_items_as_they_run_and_ends_with_the_finished_batch() {
    let dir = tempfile::tempdir().unwrap();
    let engine = ScriptedEngine { context_limit: 100_000, delay: Duration::from_millis(2500) };
    let s = TestServer::start(&settings(dir.path()), Arc::new(engine)).await;
    let doc = crate::common::upload(&s, "a.txt", read_corpus("bitcoin_intro.txt")).await;
    let doc_id = doc.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let resp = client()
        .post(s.url("/api/v1/batches"))
        .json(&json!({"document_ids": [doc_id], "options": {"pipelines": ["full", "chunked"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    let events = client().get(s.url(&format!("/api/v1/batches/{id}/events"))).send().await.unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let body = tokio::time::timeout(Duration::from_secs(60), events.text()).await.expect("the stream ends").unwrap();
    let names: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(names.first(), Some(&"batch"), "{body}");
    assert_eq!(names.last(), Some(&"batch"), "{body}");
    assert_eq!(names.iter().filter(|n| **n == "item_done").count(), 2, "{body}");
    assert!(names.contains(&"item_started") && names.contains(&"item_progress"), "{body}");
    let last_data = body.lines().filter_map(|l| l.strip_prefix("data: ")).next_back().unwrap();
    let last: Value = serde_json::from_str(last_data).unwrap();
    assert_eq!((last["status"].as_str(), last["done"].as_u64()), (Some("done"), Some(2)));
    s.stop().await;
}

#[actix_web::test]
async fn an_idempotency_key_returns_the_same_batch_and_cancel_ends_what_has_not_started() {
    let dir = tempfile::tempdir().unwrap();
    let engine = ScriptedEngine { context_limit: 100_000, delay: Duration::from_millis(1500) };
    let s = TestServer::start(&settings(dir.path()), Arc::new(engine)).await;
    let files: Vec<(&str, Vec<u8>)> = (0..4)
        .map(|i| ("note.txt", format!("Note {i}. Docent reads whole documents and cites them.").into_bytes()))
        .collect();
    let options = json!({"pipelines": ["full"], "task": "question", "question": "What does docent do?"});
    let first = submit(&s, &files, options.clone(), Some("upload-42")).await;
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = submit(&s, &files, options, Some("upload-42")).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(get_json(&s, "/api/v1/batches").await.as_array().unwrap().len(), 1);

    let id = first["id"].as_str().unwrap();
    // Wait for the first item to start, then cancel.
    let start = std::time::Instant::now();
    while get_json(&s, &format!("/api/v1/batches/{id}")).await["running"] != 1 {
        assert!(start.elapsed() < Duration::from_secs(20), "no item started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cancel = client().post(s.url(&format!("/api/v1/batches/{id}/cancel"))).send().await.unwrap();
    assert_eq!(cancel.status(), 200);
    let end = wait_finished(&s, id, Duration::from_secs(30)).await;
    assert_eq!(end["status"], "cancelled");
    assert_eq!((end["done"].as_u64(), end["cancelled"].as_u64()), (Some(1), Some(3)), "{end:#}");
    let lines = results(&s, id).await;
    assert_eq!(lines.iter().filter(|l| l["state"] == "cancelled" && l.get("analysis").is_none()).count(), 3);
    let missing = client().post(s.url("/api/v1/batches/nope/cancel")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"]["code"], "batch_not_found");
    s.stop().await;
}

#[actix_web::test]
async fn bad_batches_get_stable_codes_and_a_full_queue_gets_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(dir.path());
    settings.max_batch_items = 2;
    let engine = ScriptedEngine { context_limit: 100_000, delay: Duration::from_secs(3) };
    let s = TestServer::start(&settings, Arc::new(engine)).await;
    let post = |body: Value| client().post(s.url("/api/v1/batches")).json(&body).send();
    let code = |resp: reqwest::Response| async move {
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap()["error"]["code"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        code(post(json!({"document_ids": ["missing"]})).await.unwrap()).await,
        (404, "document_not_found".into())
    );
    assert_eq!(code(post(json!({"document_ids": []})).await.unwrap()).await, (400, "invalid_request".into()));
    assert_eq!(code(post(json!({"docs": []})).await.unwrap()).await, (400, "invalid_request".into()));
    let doc = upload(&s, "a.txt", b"Docent cites every claim.".to_vec()).await.json::<Value>().await.unwrap();
    let id = doc["id"].as_str().unwrap();
    let no_question = json!({"document_ids": [id], "options": {"task": "question"}});
    assert_eq!(code(post(no_question).await.unwrap()).await, (400, "invalid_request".into()));
    let no_pipeline = json!({"document_ids": [id], "options": {"pipelines": []}});
    assert_eq!(code(post(no_pipeline).await.unwrap()).await, (400, "invalid_request".into()));
    let both = json!({"document_ids": [id], "task": "summary", "options": {"task": "summary"}});
    assert_eq!(code(post(both).await.unwrap()).await, (400, "invalid_request".into()));
    let no_file = submit(&s, &[], json!({}), None).await;
    assert_eq!(code(no_file).await, (400, "missing_file".into()));

    let too_many = json!({"document_ids": [id, id, id], "options": {"pipelines": ["full"]}});
    assert_eq!(code(post(too_many).await.unwrap()).await, (400, "invalid_request".into()));
    // Two items fit the queue; two more do not while at least one of them waits.
    // The options may also sit beside the ids.
    let flat = json!({"document_ids": [id, id], "pipelines": ["full"], "task": "summary"});
    assert_eq!(post(flat).await.unwrap().status(), 202);
    let more = json!({"document_ids": [id, id], "options": {"pipelines": ["full"]}});
    let full = post(more).await.unwrap();
    assert_eq!(full.headers().get("retry-after").map(|v| v.to_str().unwrap()), Some("10"));
    assert_eq!(code(full).await, (503, "engine_busy".into()));
    s.stop().await;
}

#[actix_web::test]
async fn the_batch_list_counts_items_by_state_as_each_batch_does() {
    let dir = tempfile::tempdir().unwrap();
    let engine = ScriptedEngine { delay: Duration::from_millis(1500), ..ScriptedEngine::new(100_000) };
    let s = TestServer::start(&settings(dir.path()), Arc::new(engine)).await;
    let text = ("bitcoin_intro.txt", read_corpus("bitcoin_intro.txt"));
    let id_of = |v: Value| v["id"].as_str().unwrap().to_owned();
    let mixed = submit(&s, &[text.clone(), ("notes.bin", vec![0, 159, 146, 150])], json!({}), None).await;
    let mixed = id_of(mixed.json().await.unwrap());
    let both = submit(&s, std::slice::from_ref(&text), json!({"pipelines": ["full", "chunked"]}), None).await;
    let both = id_of(both.json().await.unwrap());
    let dropped = id_of(submit(&s, &[text], json!({}), None).await.json().await.unwrap());
    let cancel = client().post(s.url(&format!("/api/v1/batches/{dropped}/cancel"))).send().await.unwrap();
    assert_eq!(cancel.status(), 200);

    let listed = |list: &Value, id: &str| list.as_array().unwrap().iter().find(|b| b["id"] == id).cloned().unwrap();
    let start = std::time::Instant::now();
    loop {
        let list = get_json(&s, "/api/v1/batches").await;
        let b = listed(&list, &both);
        if b["running"] == 1 {
            assert_eq!((b["status"].as_str(), b["total"].as_u64(), b["queued"].as_u64()), (Some("running"), Some(2), Some(1)));
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{list:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_finished(&s, &both, Duration::from_secs(60)).await;

    let list = get_json(&s, "/api/v1/batches").await;
    assert_eq!(list.as_array().unwrap().len(), 3, "{list:#}");
    for (id, status, counts) in
        [(&mixed, "done", [2, 0, 0, 1, 1, 0]), (&both, "done", [2, 0, 0, 2, 0, 0]), (&dropped, "cancelled", [1, 0, 0, 0, 0, 1])]
    {
        let entry = listed(&list, id);
        assert!(entry.get("items").is_none(), "a list does not carry items: {entry}");
        let fields = ["total", "queued", "running", "done", "failed", "cancelled"];
        let got: Vec<u64> = fields.iter().map(|f| entry[f].as_u64().unwrap()).collect();
        assert_eq!((entry["status"].as_str(), got), (Some(status), counts.to_vec()), "{entry}");
        // The same counts as the batch itself.
        let full = get_json(&s, &format!("/api/v1/batches/{id}")).await;
        for f in fields.iter().chain(&["status", "created_at"]) {
            assert_eq!(entry[f], full[f], "{f} of {id}");
        }
    }
    // Newest first, as before.
    let order: Vec<&str> = list.as_array().unwrap().iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(order, [dropped.as_str(), both.as_str(), mixed.as_str()]);
    s.stop().await;
}
