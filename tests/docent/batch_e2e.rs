//! Batches on real models: real documents through HTTP to verified citations, and a server
//! process killed with SIGKILL mid-batch that, restarted, ends every item exactly once.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::batch::{results, submit, wait_finished};
use crate::common::{client, default_model, free_port, models_dir, read_corpus, settings, TestServer};

const DOCS: [&str; 3] = ["bitcoin_intro.txt", "bitcoin_proof_of_work.txt", "cuad_limeenergy_termination.txt"];

#[actix_web::test]
async fn a_batch_of_real_documents_gets_summaries_with_verified_citations_from_the_real_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(dir.path());
    settings.engine.model = default_model();
    let engine = docent::load_engine(&settings).await.expect("the default model loads");
    let s = TestServer::start(&settings, engine).await;
    let files: Vec<(&str, Vec<u8>)> = DOCS.iter().map(|d| (*d, read_corpus(d))).collect();
    let resp = submit(&s, &files, json!({"pipelines": ["full"], "task": "summary"}), None).await;
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    // The event stream, followed to its end, passes on the engine's reports of the prompt read.
    let events = client().get(s.url(&format!("/api/v1/batches/{id}/events"))).send().await.unwrap();
    let body = tokio::time::timeout(Duration::from_secs(1200), events.text()).await.expect("the stream ends").unwrap();
    let progress: Vec<Value> = body
        .split("\n\n")
        .filter(|e| e.contains("event: item_progress"))
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .filter(|d: &Value| d.get("prompt_done").is_some())
        .collect();
    let read = |d: &Value| (d["prompt_done"].as_u64().unwrap(), d["prompt_total"].as_u64().unwrap());
    assert!(progress.iter().all(|d| read(d).0 <= read(d).1 && read(d).1 > 100), "{body}");
    let items_read_whole: std::collections::HashSet<u64> =
        progress.iter().filter(|d| read(d).0 == read(d).1).map(|d| d["item"].as_u64().unwrap()).collect();
    assert_eq!(items_read_whole.len(), 3, "each item reports its prompt read whole: {body}");
    let end = wait_finished(&s, &id, Duration::from_secs(60)).await;
    assert_eq!((end["done"].as_u64(), end["failed"].as_u64()), (Some(3), Some(0)), "{end:#}");

    let lines = results(&s, &id).await;
    assert_eq!(lines.len(), 3);
    for line in &lines {
        let analysis = &line["analysis"];
        assert_eq!(analysis["model"], "qwen2.5-coder-0.5b-instruct-q4_k_m");
        let citations = analysis["citations"].as_array().unwrap();
        let valid = citations.iter().filter(|c| c["valid"] == true).count();
        assert!(valid >= 1, "{}: {valid} of {} citations verified", line["filename"], citations.len());
        // A verified citation quotes the document it belongs to.
        let text = String::from_utf8(read_corpus(line["filename"].as_str().unwrap())).unwrap();
        for c in citations.iter().filter(|c| c["valid"] == true) {
            let quote = c["quote"].as_str().unwrap();
            assert!(text
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .contains(&quote.split_whitespace().collect::<Vec<_>>().join(" ")));
        }
    }
    s.stop().await;
}

/// `docent serve` as a child process on the small real model.
pub struct ServerProcess {
    child: Child,
    pub base: String,
}

impl ServerProcess {
    pub fn start(data: &std::path::Path, port: u16, log: &std::path::Path) -> Self {
        Self::start_with(data, port, log, &[])
    }

    /// `docent serve` with more flags after the defaults.
    pub fn start_with(data: &std::path::Path, port: u16, log: &std::path::Path, extra: &[&str]) -> Self {
        let models = models_dir();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_docent"))
            .arg("--models-dir")
            .arg(&models)
            .arg("--model")
            .arg(models.join("smollm2-135m-instruct-q4_1.gguf"))
            .args(["--cpu", "true", "--max-answer-tokens", "96", "serve", "--addr", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("docent serve starts");
        Self { child, base: format!("http://127.0.0.1:{port}") }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn ready(&self) {
        for _ in 0..600 {
            if let Ok(r) = client().get(format!("{}/healthz", self.base)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not come up");
    }

    pub async fn get(&self, path: &str) -> Value {
        client().get(format!("{}{path}", self.base)).send().await.unwrap().json().await.unwrap()
    }

    /// SIGTERM, by this child's pid (not yet reaped: `wait_exit` reaps it).
    pub fn terminate(&self) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child, which nothing has reaped yet.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    }

    /// Whether the process has exited, without waiting.
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// Wait up to `limit` for the process to exit; its status.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < limit, "the server did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_web::test]
async fn a_server_killed_mid_batch_ends_every_item_exactly_once_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("server.log"));
    let port = free_port();
    let server = ServerProcess::start(&data, port, &log);
    server.ready().await;

    let mut form = reqwest::multipart::Form::new().text("options", json!({"pipelines": ["full"]}).to_string());
    for name in DOCS.iter().chain(["encrypted_rc4_userpw-openpassword.pdf"].iter()) {
        form = form.part("file", reqwest::multipart::Part::bytes(read_corpus(name)).file_name(name.to_string()));
    }
    let resp = client().post(format!("{}/api/v1/batches", server.base)).multipart(form).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    // Kill the server as soon as one item has ended and the next has just started.
    let start = std::time::Instant::now();
    let before = loop {
        let b = server.get(&format!("/api/v1/batches/{id}")).await;
        if b["done"].as_u64() >= Some(1) && b["running"] == 1 {
            break b;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "{b:#}\n{}", std::fs::read_to_string(&log).unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    server.kill();
    let killed: Vec<usize> = before["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["state"] == "running")
        .map(|i| i["index"].as_u64().unwrap() as usize)
        .collect();
    let done_before: Vec<(usize, String)> = before["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["state"] == "done")
        .map(|i| (i["index"].as_u64().unwrap() as usize, i["analysis_id"].as_str().unwrap().to_owned()))
        .collect();

    let server = ServerProcess::start(&data, port, &log);
    server.ready().await;
    let end = loop {
        let b = server.get(&format!("/api/v1/batches/{id}")).await;
        if b["status"] == "done" {
            break b;
        }
        assert!(start.elapsed() < Duration::from_secs(900), "{b:#}\n{}", std::fs::read_to_string(&log).unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let items = end["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    for item in items {
        let index = item["index"].as_u64().unwrap() as usize;
        let attempts = if killed.contains(&index) { 2 } else { 1 };
        assert_eq!(item["attempts"], attempts, "{item}");
        if item["filename"] == "encrypted_rc4_userpw-openpassword.pdf" {
            assert_eq!(
                (item["state"].as_str(), item["error"]["code"].as_str()),
                (Some("failed"), Some("pdf_encrypted"))
            );
            continue;
        }
        assert_eq!(item["state"], "done", "{item}");
        // Exactly one stored analysis per item: the killed attempt left none behind.
        let analyses =
            server.get(&format!("/api/v1/documents/{}/analyses", item["document_id"].as_str().unwrap())).await;
        let ids: Vec<&str> = analyses.as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [item["analysis_id"].as_str().unwrap()], "{item}");
    }
    for (index, analysis_id) in done_before {
        assert_eq!(items[index]["analysis_id"], analysis_id.as_str(), "an item done before the kill kept its result");
    }
    // Each upload became one document, whatever was running when the server died.
    assert_eq!(server.get("/api/v1/documents").await.as_array().unwrap().len(), 3);
    assert!(std::fs::read_to_string(&log).unwrap().contains("batch items interrupted by the last shutdown"));
}

async fn run_cli(args: Vec<std::ffi::OsString>) -> std::process::Output {
    tokio::task::spawn_blocking(move || Command::new(env!("CARGO_BIN_EXE_docent")).args(args).output().unwrap())
        .await
        .unwrap()
}

#[actix_web::test]
async fn the_batch_command_runs_a_folder_on_a_server_and_on_the_local_model() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("in");
    std::fs::create_dir_all(folder.join("nested")).unwrap();
    std::fs::copy(crate::common::corpus("bitcoin_proof_of_work.txt"), folder.join("pow.txt")).unwrap();
    std::fs::copy(crate::common::corpus("encrypted_rc4_userpw-openpassword.pdf"), folder.join("nested/locked.pdf"))
        .unwrap();
    std::fs::write(folder.join("notes.docx"), b"not a format docent reads").unwrap();

    // Against a running server: both files, both pipelines; the encrypted PDF fails, exit 3.
    let s = TestServer::scripted(&dir.path().join("server-data"), 100_000).await;
    let out = dir.path().join("server.jsonl");
    let args: Vec<std::ffi::OsString> = vec![
        "batch".into(),
        folder.clone().into(),
        "--pipeline".into(),
        "full,chunked".into(),
        "--server".into(),
        s.base.clone().into(),
        "--out".into(),
        out.clone().into(),
    ];
    let run = run_cli(args).await;
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("2 files, 4 items") && stderr.contains("pdf_encrypted"), "{stderr}");
    let lines: Vec<Value> =
        std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines.iter().filter(|l| l["state"] == "done" && l["analysis"]["id"].is_string()).count(), 2);
    s.stop().await;

    // On the local model, into a data dir that keeps the documents and analyses.
    let out = dir.path().join("local.jsonl");
    let models = models_dir();
    let args: Vec<std::ffi::OsString> = vec![
        "--models-dir".into(),
        models.clone().into(),
        "--model".into(),
        models.join("smollm2-135m-instruct-q4_1.gguf").into(),
        "--cpu".into(),
        "true".into(),
        "--max-answer-tokens".into(),
        "96".into(),
        "batch".into(),
        folder.join("pow.txt").into(),
        "--question".into(),
        "What does proof-of-work solve?".into(),
        "--data-dir".into(),
        dir.path().join("local-data").into(),
        "--out".into(),
        out.clone().into(),
    ];
    let run = run_cli(args).await;
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    let line: Value = serde_json::from_str(std::fs::read_to_string(&out).unwrap().trim()).unwrap();
    assert_eq!((line["state"].as_str(), line["analysis"]["task"].as_str()), (Some("done"), Some("question")));
    assert_eq!(line["analysis"]["model"], "smollm2-135m-instruct-q4_1");
    assert!(dir.path().join("local-data/docent.sqlite3").is_file());
}
