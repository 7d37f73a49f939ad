//! Graceful shutdown of a real `docent serve` process on the small real model: SIGTERM stops
//! new work, lets what runs finish and be stored, leaves queued batch items queued for the next
//! start, and exits 0 within `--shutdown-grace-s`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::batch_e2e::ServerProcess;
use crate::common::{client, file_form, free_port, read_corpus};

/// (state, attempts) of a batch's items, read from the database of a stopped server.
fn item_rows(data: &std::path::Path, batch: &str) -> Vec<(String, i64)> {
    let db = rusqlite::Connection::open(data.join("docent.sqlite3")).unwrap();
    let mut stmt = db.prepare("SELECT state, attempts FROM batch_items WHERE batch_id = ?1 ORDER BY idx").unwrap();
    let rows = stmt.query_map([batch], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

fn rows(expected: &[(&str, i64)]) -> Vec<(String, i64)> {
    expected.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
}

async fn upload_to(server: &ServerProcess, name: &str, bytes: Vec<u8>) -> String {
    let url = format!("{}/api/v1/documents", server.base);
    let resp = client().post(url).multipart(file_form(name, bytes)).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

/// A question rather than a summary: one answer each, so that the work a shutdown waits for stays
/// well inside its grace period on a loaded two-core CI machine (a summary is six requests).
const QUESTION: &str = "What problem does the document address?";

async fn batch_of(server: &ServerProcess, ids: &[String]) -> String {
    let url = format!("{}/api/v1/batches", server.base);
    let batch = json!({"document_ids": ids, "pipelines": ["full"], "task": "question", "question": QUESTION});
    let resp = client().post(url).json(&batch).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

async fn wait_running(server: &ServerProcess, batch: &str) {
    let started = Instant::now();
    while server.get(&format!("/api/v1/batches/{batch}")).await["running"] != 1 {
        assert!(started.elapsed() < Duration::from_secs(60), "the first item never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Poll a restarted server until the batch has ended.
async fn wait_done(server: &ServerProcess, batch: &str) -> Value {
    let started = Instant::now();
    loop {
        let b = server.get(&format!("/api/v1/batches/{batch}")).await;
        if b["status"] == "done" {
            return b;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "the batch did not resume: {b}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[actix_web::test]
async fn sigterm_lets_the_running_analysis_and_batch_item_finish_keeps_the_queue_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("server.log"));
    let port = free_port();
    let mut server = ServerProcess::start_with(&data, port, &log, &["--shutdown-grace-s", "300"]);
    server.ready().await;
    let mut ids = Vec::new();
    for name in ["bitcoin_intro.txt", "bitcoin_proof_of_work.txt", "cuad_limeenergy_termination.txt"] {
        ids.push(upload_to(&server, name, read_corpus(name)).await);
    }
    let batch = batch_of(&server, &ids[1..]).await;
    wait_running(&server, &batch).await;
    // An analysis through the API, waiting for the engine behind the running item.
    let url = format!("{}/api/v1/documents/{}/analyses", server.base, ids[0]);
    let analysis = tokio::spawn(client().post(&url).json(&json!({"task": "question", "question": QUESTION})).send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!analysis.is_finished(), "the analysis ended before SIGTERM");

    let signalled = Instant::now();
    server.terminate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Stopping: the work goes on, new connections are not served.
    assert!(!server.exited() && !analysis.is_finished(), "{}", std::fs::read_to_string(&log).unwrap());
    let quick = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    assert!(quick.get(format!("{}/healthz", server.base)).send().await.is_err(), "still serving after SIGTERM");

    let status = tokio::task::spawn_blocking(move || {
        let status = server.wait_exit(Duration::from_secs(300));
        drop(server);
        status
    })
    .await
    .unwrap();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "{logged}");
    // Before the grace period ended: the work finished, the deadline did not stop it.
    assert!(signalled.elapsed() < Duration::from_secs(300), "{:?}", signalled.elapsed());
    // The analysis in progress was answered, the running item ended on its first attempt, and
    // the queued one was left queued, never tried.
    let answered = analysis.await.unwrap().unwrap();
    assert_eq!(answered.status(), 200, "{logged}");
    let answered: Value = answered.json().await.unwrap();
    assert_eq!(item_rows(&data, &batch), rows(&[("done", 1), ("queued", 0)]), "{logged}");
    assert!(logged.contains("every running analysis and batch item finished"), "{logged}");

    // Restarted: the analysis is stored, once, and the batch resumes where it stopped.
    let server = ServerProcess::start(&data, port, &log);
    server.ready().await;
    let stored = server.get(&format!("/api/v1/documents/{}/analyses", ids[0])).await;
    let stored: Vec<&Value> = stored.as_array().unwrap().iter().map(|a| &a["id"]).collect();
    assert_eq!(stored, [&answered["id"]]);
    let end = wait_done(&server, &batch).await;
    assert_eq!((end["done"].as_u64(), end["failed"].as_u64()), (Some(2), Some(0)), "{end}");
    server.kill();
    assert_eq!(item_rows(&data, &batch), rows(&[("done", 1), ("done", 1)]));
}

#[actix_web::test]
async fn sigterm_exits_0_at_the_end_of_the_grace_period_and_the_unfinished_item_runs_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("server.log"));
    let port = free_port();
    let mut server = ServerProcess::start_with(&data, port, &log, &["--shutdown-grace-s", "1"]);
    server.ready().await;
    // About 2,600 tokens: longer than a second for the model to read and answer.
    let long = read_corpus("bitcoin_intro.txt").repeat(3);
    let id = upload_to(&server, "long.txt", long).await;
    let batch = batch_of(&server, &[id]).await;
    wait_running(&server, &batch).await;

    let signalled = Instant::now();
    server.terminate();
    let status = tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(30))).await.unwrap();
    let took = signalled.elapsed();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "{logged}");
    // One second of grace, and little more to stop.
    assert!(took < Duration::from_secs(5), "{took:?}\n{logged}");
    assert!(logged.contains("stopped at the end of the grace period"), "{logged}");
    assert_eq!(item_rows(&data, &batch), rows(&[("running", 1)]), "{logged}");

    let server = ServerProcess::start(&data, port, &log);
    server.ready().await;
    let end = wait_done(&server, &batch).await;
    assert_eq!((end["done"].as_u64(), end["items"][0]["attempts"].as_u64()), (Some(1), Some(2)), "{end}");
    server.kill();
}
