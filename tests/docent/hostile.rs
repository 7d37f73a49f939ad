//! Hard and hostile files through the real server and the real parse worker: every file of the
//! hard corpus ends in text or a specific error code within the parse limits, and a parser that
//! hangs, crashes or runs out of memory loses that one upload, never the server.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{client, get_json, one_page_pdf, read_corpus, settings, upload, ScriptedEngine, TestServer};

/// What one file of the hard corpus must give.
enum Outcome {
    /// Text: at least this many pages, containing this phrase, with a warning that contains this.
    Text { pages: u64, phrase: &'static str, warning: Option<&'static str> },
    /// A specific error code.
    Refused(&'static str),
}

const HARD: &[(&str, Outcome)] = &[
    ("arabic_rtl_docling.pdf", Outcome::Text { pages: 1, phrase: "تحسين الإنتاجية وحل المشكلات", warning: None }),
    ("bitcoin_ar.pdf", Outcome::Text { pages: 9, phrase: "نظام نقد الكتروني قائم على مبدأ الند للند", warning: None }),
    ("bitcoin_zh_cn.pdf", Outcome::Text { pages: 9, phrase: "比特币", warning: None }),
    // Its cross-reference table and page tree are lost; both are rebuilt from the objects found.
    (
        "broken_xref_unreadablemetadata.pdf",
        Outcome::Text { pages: 3, phrase: "Dielectric Strength", warning: Some("repaired: ") },
    ),
    (
        "broken_zen_of_python_corrupted.pdf",
        Outcome::Text { pages: 1, phrase: "Beautiful is better than ugly", warning: None },
    ),
    ("encrypted_rc4_userpw-openpassword.pdf", Outcome::Refused("pdf_encrypted")),
    ("ethereum-whitepaper-zh.md", Outcome::Text { pages: 1, phrase: "以太坊", warning: None }),
    // pdf-extract drops this file's Chinese glyphs (its CID fonts); the Latin text remains.
    (
        "ethereum-yellowpaper-zh.pdf",
        Outcome::Text {
            pages: 29,
            phrase: "以太坊：一种安全去中心化的通用交易账本",
            warning: Some("cjk_fonts: page(s) 1–29 "),
        },
    ),
    // Page 14 stops pdf-extract; poppler reads its text layer instead.
    (
        "german_geotopo_117p.pdf",
        Outcome::Text { pages: 117, phrase: "trivialer topologischer Raum", warning: Some("page(s) 14: ") },
    ),
    ("irs_irm_2.3.59_400p_tables.pdf", Outcome::Text { pages: 400, phrase: "EFFECTIVE DATE", warning: None }),
    ("latex_multicolumn.pdf", Outcome::Text { pages: 3, phrase: "Two-Column Document", warning: None }),
    (
        "scanned_no_textlayer_docling_ocr_test.pdf",
        Outcome::Text { pages: 1, phrase: "Docling bundles PDF document conversion", warning: Some("ocr: page(s) 1 ") },
    ),
    ("scanned_with_bad_ocr_layer.pdf", Outcome::Text { pages: 1, phrase: "Foundation", warning: Some("ocr_layer: ") }),
];

/// Limits the whole hard corpus must parse within (the defaults are 300 s and 2048 MiB).
const TIMEOUT: Duration = Duration::from_secs(60);
const MEMORY_MB: u64 = 512;

async fn server(dir: &std::path::Path, edit: impl FnOnce(&mut docent::config::Settings)) -> TestServer {
    let mut s = settings(dir);
    s.parser.timeout = TIMEOUT;
    s.parser.memory_bytes = MEMORY_MB << 20;
    edit(&mut s);
    TestServer::start(&s, Arc::new(ScriptedEngine::new(1_000_000))).await
}

async fn body(resp: reqwest::Response) -> (u16, Value) {
    (resp.status().as_u16(), resp.json().await.expect("JSON body"))
}

#[actix_web::test]
async fn every_hard_file_gives_text_or_a_specific_code_within_the_limits() {
    assert!(
        std::process::Command::new("tesseract").arg("--version").output().is_ok(),
        "tesseract is missing: scripts/test.sh installs tesseract-ocr"
    );
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |_| {}).await;
    for (name, outcome) in HARD {
        let started = Instant::now();
        let (status, doc) = body(upload(&s, name, read_corpus(name)).await).await;
        assert!(started.elapsed() < TIMEOUT, "{name} took {:?}", started.elapsed());
        match outcome {
            Outcome::Refused(code) => {
                assert_eq!(status, 422, "{name}: {doc}");
                assert_eq!(doc["error"]["code"], *code, "{name}");
            }
            Outcome::Text { pages, phrase, warning } => {
                assert_eq!(status, 201, "{name}: {doc}");
                assert_eq!(doc["pages"].as_u64(), Some(*pages), "{name}");
                let id = doc["id"].as_str().unwrap();
                let text = crate::common::text_of(&s, id).await;
                assert!(text.contains(phrase), "{name}: no {phrase:?} in the text");
                let warnings = doc["warnings"].to_string();
                if let Some(w) = warning {
                    assert!(warnings.contains(w), "{name}: no warning {w:?} in {warnings}");
                }
            }
        }
    }
    s.stop().await;
}

#[actix_web::test]
async fn without_ocr_a_scan_is_refused_as_having_no_text_layer() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |s| s.parser.ocr = None).await;
    let name = "scanned_no_textlayer_docling_ocr_test.pdf";
    let (status, err) = body(upload(&s, name, read_corpus(name)).await).await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("pdf_no_text_layer")));
    assert!(err["error"]["message"].as_str().unwrap().contains("OCR"), "{err}");
    s.stop().await;
}

/// A one-page PDF whose content stream inflates to `inflated` bytes of spaces.
fn decompression_bomb(inflated: usize) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![b' '; 1 << 20];
    for _ in 0..inflated / block.len() {
        z.write_all(&block).unwrap();
    }
    z.write_all(b"BT /F1 12 Tf 72 712 Td (bomb) Tj ET").unwrap();
    one_page_pdf(z.finish().unwrap(), Some("FlateDecode"))
}

#[actix_web::test]
async fn a_decompression_bomb_stops_at_the_memory_limit_and_the_server_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |s| s.parser.memory_bytes = 256 << 20).await;
    let bomb = decompression_bomb(1 << 30);
    assert!(bomb.len() < 4 << 20, "the bomb is {} bytes", bomb.len());
    let (status, err) = body(upload(&s, "bomb.pdf", bomb).await).await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("parse_memory_limit")), "{err}");
    let (status, doc) = body(upload(&s, "bitcoin.pdf", read_corpus("bitcoin.pdf")).await).await;
    assert_eq!((status, doc["pages"].as_u64()), (201, Some(9)), "the next upload failed: {doc}");
    assert_eq!(get_json(&s, "/api/v1/documents").await.as_array().unwrap().len(), 1);
    s.stop().await;
}

/// A stand-in parse worker (a shell script): what docent must survive from a real one.
fn fake_worker(dir: &std::path::Path, script: &str) -> std::path::PathBuf {
    let path = dir.join("worker.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[actix_web::test]
async fn a_hanging_parser_is_stopped_at_the_time_limit_with_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("still-running");
    // The worker starts a child of its own and hangs; the child would touch the marker later.
    let script = format!("(sleep 6; touch {}) &\nsleep 600", marker.display());
    let program = fake_worker(dir.path(), &script);
    let s = server(&dir.path().join("data"), |s| {
        s.parser.program = program;
        s.parser.timeout = Duration::from_secs(2);
    })
    .await;
    let started = Instant::now();
    let (status, err) = body(upload(&s, "notes.txt", b"any text".to_vec()).await).await;
    let took = started.elapsed();
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("parse_timeout")), "{err}");
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(5), "answered after {took:?}");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(!marker.exists(), "the worker's child outlived the time limit");
    assert_eq!(client().get(s.url("/healthz")).send().await.unwrap().status(), 200);
    s.stop().await;
}

#[actix_web::test]
async fn a_crashing_parser_fails_that_upload_only() {
    let dir = tempfile::tempdir().unwrap();
    let program = fake_worker(dir.path(), "cat > /dev/null; kill -SEGV $$");
    let s = server(&dir.path().join("data"), |s| s.parser.program = program).await;
    let (status, err) = body(upload(&s, "contract.pdf", read_corpus("bitcoin.pdf")).await).await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("pdf_corrupt")), "{err}");
    assert!(!err.to_string().contains("SEGV") && !err.to_string().contains("signal"), "{err}");
    assert_eq!(client().get(s.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(get_json(&s, "/api/v1/documents").await.as_array().unwrap().len(), 0);
    s.stop().await;
}
