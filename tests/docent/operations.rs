//! Running docent as teams run a service: request ids on every response, log line and error
//! body; structured JSON logs; Prometheus metrics; keep-alive comments on event streams.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::batch_e2e::ServerProcess;
use crate::common::{analyze, client, free_port, read_corpus, run_tool, settings, upload, ScriptedEngine, TestServer};

fn request_id(resp: &reqwest::Response) -> String {
    resp.headers().get("x-request-id").expect("an X-Request-Id header").to_str().unwrap().to_owned()
}

fn is_generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[actix_web::test]
async fn every_response_has_a_request_id_and_error_bodies_carry_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 1_000_000).await;

    let plain = client().get(s.url("/api/v1/documents")).send().await.unwrap();
    let generated = request_id(&plain);
    assert!(is_generated(&generated), "{generated}");
    let again = request_id(&client().get(s.url("/healthz")).send().await.unwrap());
    assert!(is_generated(&again) && again != generated, "{again} after {generated}");

    // A sane client id is kept; one that could break a log line or is too long is replaced.
    let kept = client().get(s.url("/api/v1/documents")).header("X-Request-Id", "client.trace-42_A").send().await;
    assert_eq!(request_id(&kept.unwrap()), "client.trace-42_A");
    for bad in ["two words", "a/b", &"x".repeat(65)] {
        let resp = client().get(s.url("/api/v1/documents")).header("X-Request-Id", bad).send().await.unwrap();
        let id = request_id(&resp);
        assert!(is_generated(&id), "{bad:?} became {id:?}");
    }

    // A handler's error, an extractor's error and the auth middleware's refusal.
    let missing = client().get(s.url("/api/v1/documents/nope")).header("X-Request-Id", "req-404").send().await;
    let malformed = client()
        .post(s.url("/api/v1/documents/nope/analyses"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await;
    let cross_site =
        client().delete(s.url("/api/v1/documents/nope")).header("Origin", "http://evil.example").send().await;
    for (resp, status, code) in
        [(missing, 404, "document_not_found"), (malformed, 400, "invalid_request"), (cross_site, 403, "csrf_failed")]
    {
        let resp = resp.unwrap();
        let id = request_id(&resp);
        assert_eq!(resp.status(), status);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert_eq!(body["error"]["request_id"], id.as_str(), "{body}");
    }
    s.stop().await;
}

#[actix_web::test]
async fn json_logs_carry_the_request_id_on_every_line_of_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("server.log"));
    let server = ServerProcess::start_with(&data, free_port(), &log, &["--log-format", "json"]);
    server.ready().await;
    let url = format!("{}/api/v1/documents/nope", server.base);
    let resp = client().get(&url).header("X-Request-Id", "trace-me-42").send().await.unwrap();
    assert_eq!(resp.status(), 404);
    server.kill();

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["fields"]["message"].as_str().is_some_and(|m| m.contains("listening"))), "{text}");
    let ours: Vec<&Value> = lines.iter().filter(|l| l["span"]["request_id"] == "trace-me-42").collect();
    let messages: Vec<&str> = ours.iter().filter_map(|l| l["fields"]["message"].as_str()).collect();
    // The handler's error (with its code) and the access line, both under the request's id.
    assert!(ours.iter().any(|l| l["fields"]["code"] == "document_not_found"), "{messages:?}\n{text}");
    assert!(
        ours.iter().any(|l| l["fields"]["status"] == 404 && messages.contains(&"GET /api/v1/documents/nope")),
        "{messages:?}\n{text}"
    );
}

/// Samples as Prometheus' parser reads them: (name, sorted labels) -> value.
type Samples = HashMap<(String, Vec<(String, String)>), f64>;

/// `GET /metrics`, read by prometheus_client's text-format parser (which fails the test on
/// anything it does not accept).
async fn scrape(s: &TestServer, key: Option<&str>) -> Samples {
    let mut req = client().get(s.url("/metrics"));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = resp.text().await.unwrap();
    run_tool("parse_metrics.py", text.as_bytes())
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let mut labels: Vec<(String, String)> =
                v["labels"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect();
            labels.sort();
            ((v["name"].as_str().unwrap().to_owned(), labels), v["value"].as_f64().unwrap())
        })
        .collect()
}

fn sample(m: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut labels: Vec<(String, String)> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    labels.sort();
    let key = (name.to_owned(), labels);
    *m.get(&key).unwrap_or_else(|| {
        let same: Vec<_> = m.keys().filter(|(n, _)| n == name).collect();
        panic!("no sample {key:?}; samples of {name}: {same:?}")
    })
}

#[actix_web::test]
async fn metrics_count_requests_analyses_tokens_parses_and_batch_items_as_prometheus_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    // Room for the short text and a summary point's quote (`prompt::reserve`), not for the whole
    // paper.
    let s = TestServer::scripted(dir.path(), 2500).await;
    let short = upload(&s, "bitcoin_intro.txt", read_corpus("bitcoin_intro.txt")).await;
    assert_eq!(short.status(), 201);
    let short = short.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let long = upload(&s, "bitcoin.pdf", read_corpus("bitcoin.pdf")).await;
    let long = long.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let empty = upload(&s, "blank.txt", b"  \n\n ".to_vec()).await;
    assert_eq!(empty.status(), 422);
    let empty_code = empty.json::<Value>().await.unwrap()["error"]["code"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        assert_eq!(analyze(&s, &short, json!({"task": "summary"})).await.status(), 200);
    }
    let too_long = analyze(&s, &long, json!({"task": "summary"})).await;
    assert_eq!(too_long.status(), 422);
    assert_eq!(client().get(s.url("/api/v1/documents/nope")).send().await.unwrap().status(), 404);
    let batch = client()
        .post(s.url("/api/v1/batches"))
        .json(&json!({"document_ids": [short], "pipelines": ["full"]}))
        .send()
        .await
        .unwrap();
    let batch = batch.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    crate::batch::wait_finished(&s, &batch, Duration::from_secs(60)).await;

    let m = scrape(&s, None).await;
    // Two API analyses and the batch item; the paper was refused by the pipeline.
    assert_eq!(sample(&m, "docent_analyses_total", &[("pipeline", "full"), ("outcome", "ok")]), 3.0);
    let refused = [("pipeline", "full"), ("outcome", "document_too_long")];
    assert_eq!(sample(&m, "docent_analyses_total", &refused), 1.0);
    // The scripted engine reports 10 prompt and 5 completion tokens an answer.
    assert_eq!(sample(&m, "docent_prompt_tokens_total", &[("pipeline", "full")]), 30.0);
    assert_eq!(sample(&m, "docent_completion_tokens_total", &[("pipeline", "full")]), 15.0);
    assert_eq!(sample(&m, "docent_prefill_seconds_count", &[("pipeline", "full")]), 3.0);
    assert_eq!(sample(&m, "docent_decode_seconds_count", &[("pipeline", "full")]), 3.0);
    assert_eq!(sample(&m, "docent_decode_seconds_bucket", &[("pipeline", "full"), ("le", "+Inf")]), 3.0);
    assert_eq!(sample(&m, "docent_parses_total", &[("outcome", "ok")]), 2.0);
    assert_eq!(sample(&m, "docent_parses_total", &[("outcome", empty_code.as_str())]), 1.0);
    let requests = |route: &str, method: &str, status: &str| {
        sample(&m, "docent_http_requests_total", &[("route", route), ("method", method), ("status", status)])
    };
    // Routes by pattern: one series for every document id.
    let analyses = "/api/v1/documents/{id}/analyses";
    assert_eq!((requests(analyses, "POST", "200"), requests(analyses, "POST", "422")), (2.0, 1.0));
    assert_eq!(requests("/api/v1/documents", "POST", "201"), 2.0);
    assert_eq!(requests("/api/v1/documents", "POST", "422"), 1.0);
    assert_eq!(requests("/api/v1/documents/{id}", "GET", "404"), 1.0);
    assert_eq!(sample(&m, "docent_batch_items", &[("state", "done")]), 1.0);
    assert_eq!(sample(&m, "docent_batch_items", &[("state", "queued")]), 0.0);
    assert_eq!(sample(&m, "docent_analyses_running", &[]), 0.0);
    assert_eq!(sample(&m, "docent_analyses_admitted", &[]), 0.0);
    assert_eq!(sample(&m, "docent_analyses_admitted_limit", &[]), 4.0);
    for slot in ["full", "baseline"] {
        let engine = [("slot", slot), ("model", "scripted-test-engine"), ("context", "2500")];
        assert_eq!(sample(&m, "docent_engine_info", &engine), 1.0);
    }

    // The scrape itself is counted by the next one.
    let again = scrape(&s, None).await;
    let scrapes = [("route", "/metrics"), ("method", "GET"), ("status", "200")];
    assert_eq!(sample(&again, "docent_http_requests_total", &scrapes), 1.0);
    s.stop().await;
}

#[actix_web::test]
async fn metrics_show_an_analysis_running_while_the_model_works() {
    let dir = tempfile::tempdir().unwrap();
    let s = slow_server(dir.path(), Duration::from_millis(1500), Duration::from_secs(15)).await;
    let doc: Value = upload(&s, "bitcoin_intro.txt", read_corpus("bitcoin_intro.txt")).await.json().await.unwrap();
    let url = s.url(&format!("/api/v1/documents/{}/analyses", doc["id"].as_str().unwrap()));
    let work = tokio::spawn(client().post(url).json(&json!({"task": "summary"})).send());
    let started = std::time::Instant::now();
    loop {
        let m = scrape(&s, None).await;
        if sample(&m, "docent_analyses_running", &[]) == 1.0 {
            assert_eq!(sample(&m, "docent_analyses_admitted", &[]), 1.0);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10) && !work.is_finished(), "never seen running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(work.await.unwrap().unwrap().status(), 200);
    let m = scrape(&s, None).await;
    assert_eq!((sample(&m, "docent_analyses_running", &[]), sample(&m, "docent_analyses_admitted", &[])), (0.0, 0.0));
    s.stop().await;
}

#[actix_web::test]
async fn metrics_need_a_key_once_keys_exist() {
    let dir = tempfile::tempdir().unwrap();
    let store = docent::store::Store::open(dir.path()).unwrap();
    let (_, key) = store.create_key("ops", "2026-12-02T00:00:00Z", false).unwrap();
    drop(store);
    let s = TestServer::scripted(dir.path(), 1500).await;
    // A program gets a 401 with the stable code, not the sign-in page.
    let anonymous = client().get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    assert_eq!(anonymous.json::<Value>().await.unwrap()["error"]["code"], "unauthorized");
    let wrong = client().get(s.url("/metrics")).bearer_auth("not-a-key").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let m = scrape(&s, Some(&key)).await;
    let refused = [("route", "/metrics"), ("method", "GET"), ("status", "401")];
    assert_eq!(sample(&m, "docent_http_requests_total", &refused), 2.0);
    s.stop().await;
}

/// A server whose scripted engine takes `delay` an answer and whose idle streams send a comment
/// line every `keep_alive`.
async fn slow_server(dir: &std::path::Path, delay: Duration, keep_alive: Duration) -> TestServer {
    let mut settings = settings(dir);
    settings.sse_keep_alive = keep_alive;
    let engine = ScriptedEngine { delay, ..ScriptedEngine::new(100_000) };
    TestServer::start(&settings, std::sync::Arc::new(engine)).await
}

fn frames(text: &str) -> Vec<&str> {
    text.split("\n\n").filter(|f| !f.is_empty()).collect()
}

#[actix_web::test]
async fn a_silent_analysis_stream_sends_keep_alive_comments_until_its_answer() {
    let dir = tempfile::tempdir().unwrap();
    let s = slow_server(dir.path(), Duration::from_millis(2600), Duration::from_millis(500)).await;
    let doc: Value = upload(&s, "bitcoin_intro.txt", read_corpus("bitcoin_intro.txt")).await.json().await.unwrap();
    let resp = client()
        .post(s.url(&format!("/api/v1/documents/{}/analyses", doc["id"].as_str().unwrap())))
        .header("accept", "text/event-stream")
        .json(&json!({"task": "summary"}))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    let frames = frames(&text);
    // The scripted engine reports no progress: 2.6 s of silence hold five comments (four or
    // six on a loaded machine), then the answer.
    let comments = frames.iter().take_while(|f| **f == ": keep-alive").count();
    assert!((4..=6).contains(&comments), "{frames:?}");
    assert_eq!(frames.len(), comments + 1, "{frames:?}");
    assert!(frames.last().unwrap().starts_with("event: analysis\n"), "{frames:?}");
    s.stop().await;
}

#[actix_web::test]
async fn a_batch_stream_sends_keep_alive_comments_while_its_items_wait_behind_another_batch() {
    let dir = tempfile::tempdir().unwrap();
    // One worker: the second batch waits while the first one's item takes 2.5 s, and the
    // first one's events (item_progress every 2 s) must not silence the second one's stream.
    let s = slow_server(dir.path(), Duration::from_millis(2500), Duration::from_millis(400)).await;
    let files = [("bitcoin_intro.txt", read_corpus("bitcoin_intro.txt"))];
    let first = crate::batch::submit(&s, &files, json!({"pipelines": ["full"]}), None).await;
    let first = first.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let second = crate::batch::submit(&s, &files, json!({"pipelines": ["full"]}), None).await;
    let second = second.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let text = client().get(s.url(&format!("/api/v1/batches/{second}/events"))).send().await.unwrap().text().await;
    let text = text.unwrap();
    let frames = frames(&text);
    let started = frames.iter().position(|f| f.starts_with("event: item_started")).expect("its item started");
    let waiting = frames.iter().take(started).filter(|f| **f == ": keep-alive").count();
    // About 2.5 s behind the first batch: six comments, more while its upload is parsed.
    assert!((4..=10).contains(&waiting), "{frames:?}");
    assert!(frames.iter().all(|f| !f.contains(&first)), "{frames:?}");
    assert!(frames.last().unwrap().contains("\"status\":\"done\""), "{frames:?}");
    s.stop().await;
}
