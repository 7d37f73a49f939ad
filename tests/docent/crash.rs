//! Crashes and full disks: a server killed with SIGKILL in the middle of an upload or an analysis
//! restarts with everything it had accepted and nothing half-stored; a full or read-only data dir
//! gives a clear error and corrupts nothing. (A server killed mid-batch: batch_e2e.rs.)

use std::time::Duration;

use serde_json::{json, Value};

use crate::batch_e2e::ServerProcess;
use crate::common::{client, file_form, free_port, read_corpus, settings, ScriptedEngine, TestServer};

/// PIDs of the parse workers `server` started.
fn parse_workers(server: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        // Field 4 of stat is the parent's pid (after the command in parentheses).
        let parent = stat.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').nth(1)).and_then(|p| p.parse().ok());
        if parent == Some(server) && String::from_utf8_lossy(&cmdline).contains("parse-worker") {
            found.push(pid);
        }
    }
    found
}

fn integrity(data: &std::path::Path) -> String {
    let db = rusqlite::Connection::open(data.join("docent.sqlite3")).unwrap();
    db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
}

async fn upload_to(base: &str, name: &str, bytes: Vec<u8>) -> reqwest::Result<reqwest::Response> {
    client().post(format!("{base}/api/v1/documents")).multipart(file_form(name, bytes)).send().await
}

#[actix_web::test]
async fn a_server_killed_mid_upload_and_mid_analysis_restarts_with_all_it_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("server.log"));
    let port = free_port();
    let server = ServerProcess::start(&data, port, &log);
    server.ready().await;
    let accepted: Value = upload_to(&server.base, "bitcoin_intro.txt", read_corpus("bitcoin_intro.txt"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = accepted["id"].as_str().unwrap().to_owned();
    let text =
        client().get(format!("{}/api/v1/documents/{id}/text", server.base)).send().await.unwrap().text().await.unwrap();

    // SIGKILL while the 400-page PDF is in its parse worker: the worker dies with the server.
    let base = server.base.clone();
    let upload =
        tokio::spawn(async move { upload_to(&base, "irs.pdf", read_corpus("irs_irm_2.3.59_400p_tables.pdf")).await });
    let started = std::time::Instant::now();
    let workers = loop {
        let w = parse_workers(server.pid());
        if !w.is_empty() {
            break w;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no parse worker seen");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    server.kill();
    assert!(upload.await.unwrap().is_err(), "the interrupted upload was answered");
    tokio::time::sleep(Duration::from_secs(1)).await;
    for w in workers {
        // Gone, or dead and waiting for init to reap it ("Z").
        let stat = std::fs::read_to_string(format!("/proc/{w}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next().unwrap_or('?'));
        assert!(matches!(state, None | Some('Z')), "parse worker {w} outlived the server: {stat}");
    }
    // What a kill between writing a document's files and committing its row leaves behind.
    let orphan = data.join("docs").join("00000000-0000-4000-8000-000000000000");
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join("original.pdf"), b"%PDF-1.7 half written").unwrap();

    let server = ServerProcess::start(&data, port, &log);
    server.ready().await;
    assert!(!orphan.exists(), "a half-stored upload was left in the data dir");
    let docs = server.get("/api/v1/documents").await;
    assert_eq!(docs.as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect::<Vec<_>>(), [id.as_str()]);
    assert_eq!(integrity(&data), "ok");

    // SIGKILL while the model reads the document: nothing partial is stored, the next run works.
    let url = format!("{}/api/v1/documents/{id}/analyses", server.base);
    let analysis = tokio::spawn(client().post(&url).json(&json!({"task": "summary"})).send());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!analysis.is_finished(), "the analysis ended before the kill");
    server.kill();
    assert!(analysis.await.unwrap().is_err());
    let server = ServerProcess::start(&data, port, &log);
    server.ready().await;
    assert_eq!(server.get(&format!("/api/v1/documents/{id}/analyses")).await, json!([]));
    let again =
        client().get(format!("{}/api/v1/documents/{id}/text", server.base)).send().await.unwrap().text().await.unwrap();
    assert_eq!(again, text);
    let retried = client().post(&url).json(&json!({"task": "summary"})).send().await.unwrap();
    assert_eq!(retried.status(), 200, "{}", std::fs::read_to_string(&log).unwrap());
    assert_eq!(server.get(&format!("/api/v1/documents/{id}/analyses")).await.as_array().map(Vec::len), Some(1));
    assert_eq!(integrity(&data), "ok");
    server.kill();
}

/// A small tmpfs as the data dir, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &std::path::Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "mounting a tmpfs needs root (the test command runs as root in CI)");
        Self(at.to_owned())
    }

    /// `from` seen read-only at `at`.
    fn bind_read_only(from: &std::path::Path, at: &std::path::Path) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let mount = |args: &[&str]| std::process::Command::new("mount").args(args).status().unwrap().success();
        assert!(mount(&["--bind", from.to_str().unwrap(), at.to_str().unwrap()]));
        let mounted = Self(at.to_owned());
        assert!(mount(&["-o", "remount,bind,ro", at.to_str().unwrap()]));
        mounted
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

async fn error_of(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    (
        status,
        body["error"]["code"].as_str().unwrap_or_default().to_owned(),
        body["error"]["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[actix_web::test]
async fn a_full_or_read_only_data_dir_gives_a_clear_error_and_keeps_what_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("data"), "24m");
    let s = TestServer::start(&settings(&disk.0), std::sync::Arc::new(ScriptedEngine::new(1_000_000))).await;
    let first = upload_to(&s.base, "bitcoin_intro.txt", read_corpus("bitcoin_intro.txt")).await.unwrap();
    assert_eq!(first.status(), 201);
    let id = first.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    // Fill the disk to the last byte.
    let filler = disk.0.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    let (status, code, message) =
        error_of(upload_to(&s.base, "irs.pdf", read_corpus("irs_irm_2.3.59_400p_tables.pdf")).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (507, "storage_full"), "{message}");
    assert!(message.contains("disk is full"), "{message}");
    let docs: Value = client().get(s.url("/api/v1/documents")).send().await.unwrap().json().await.unwrap();
    assert_eq!(docs.as_array().map(Vec::len), Some(1), "{docs}");
    let kept = crate::common::text_of(&s, &id).await;
    assert!(kept.starts_with("Bitcoin: A Peer-to-Peer Electronic Cash System"), "{kept}");
    let entries: Vec<_> = std::fs::read_dir(disk.0.join("docs")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(entries.len(), 1, "a failed upload left files: {entries:?}");

    std::fs::remove_file(&filler).unwrap();
    let after = upload_to(&s.base, "bitcoin.pdf", read_corpus("bitcoin.pdf")).await.unwrap();
    assert_eq!(after.status(), 201, "space freed, uploads work again");

    s.stop().await;
    assert_eq!(integrity(&disk.0), "ok");
    let docs = docent::store::Store::open(&disk.0).unwrap().list_documents(None).unwrap();
    assert_eq!(docs.len(), 2);

    // The same data dir read-only (a bind mount, so the open files above do not matter): the
    // server refuses to start and says why, and the data stays as it was.
    let read_only = dir.path().join("read-only");
    let _ro = SmallDisk::bind_read_only(&disk.0, &read_only);
    let engines = docent::Engines::same(std::sync::Arc::new(ScriptedEngine::new(1_000_000)));
    let err =
        docent::build_state(&settings(&read_only), engines).await.err().expect("a read-only data dir was accepted");
    assert!(format!("{err:#}").contains("is not writable"), "{err:#}");
    assert_eq!(integrity(&disk.0), "ok");
}
