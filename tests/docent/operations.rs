//! Running docent as teams run a service: request ids on every response, log line and error
//! body; structured JSON logs.

use serde_json::Value;

use crate::batch_e2e::ServerProcess;
use crate::common::{client, free_port, TestServer};

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
