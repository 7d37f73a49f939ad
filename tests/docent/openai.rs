//! The remote engine against a real OpenAI-compatible server: llama.cpp's llama-server
//! (scripts/fetch-llama-server.sh builds it) serving the 0.5B GGUF on this machine. Two docent
//! instances share it; answers are constrained by the grammar rewritten from the pipeline's
//! regex and verified by docent.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use docent::config::{EngineArgs, EngineKind, ServeArgs, Settings};
use docent::llm::GenRequest;

use crate::common::{analyze, client, default_model, free_port, read_corpus, TestServer};

fn llama_server_binary() -> std::path::PathBuf {
    let path = std::env::var_os("DOCENT_LLAMA_SERVER").map(std::path::PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map_or_else(|| "/root".into(), std::path::PathBuf::from);
        home.join(".cache/docent/llama.cpp/0.3.36/bin/llama-server")
    });
    assert!(path.is_file(), "{} is missing: run scripts/fetch-llama-server.sh", path.display());
    path
}

struct LlamaServer {
    child: Child,
    url: String,
}

impl LlamaServer {
    async fn start() -> Self {
        let port = free_port();
        let child = Command::new(llama_server_binary())
            .arg("-m")
            .arg(default_model())
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "-c", "8192", "-np", "1", "-t", "2"])
            .args(["--alias", "qwen2.5-coder-0.5b"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("llama-server starts");
        // Owned at once, so that a failed start still kills it (Drop).
        let server = Self { child, url: format!("http://127.0.0.1:{port}") };
        for _ in 0..600 {
            if let Ok(r) = client().get(format!("{}/health", server.url)).send().await {
                if r.status() == 200 {
                    return server;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("llama-server did not become ready");
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn remote_settings(data: &std::path::Path, llama: &LlamaServer) -> Settings {
    let engine = EngineArgs {
        engine: Some(EngineKind::Openai),
        base_url: Some(format!("{}/v1", llama.url)),
        model: Some("qwen2.5-coder-0.5b".into()),
        baseline_model: Some("same".into()),
        ..EngineArgs::default()
    };
    let serve = ServeArgs {
        data_dir: Some(data.to_owned()),
        addr: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        ..ServeArgs::default()
    };
    let mut settings = Settings::resolve(&engine, &serve).unwrap();
    settings.parser.program = env!("CARGO_BIN_EXE_docent").into();
    settings
}

#[actix_web::test]
async fn two_docent_instances_share_a_llama_cpp_server_and_verify_its_constrained_answers() {
    let llama = LlamaServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let settings = remote_settings(&dir.path().join("a"), &llama);
    let engines = docent::load_engines(&settings).await.expect("the remote engine connects");
    assert_eq!(engines.full.model_name(), "qwen2.5-coder-0.5b");
    assert_eq!(engines.full.context_limit(), 8192, "the context comes from the server's /props");

    // docent's count of a chat prompt is what the server then reports it read.
    let req = GenRequest {
        system: "Answer in one short sentence.".into(),
        user: "What does a timestamp server do?".into(),
        regex: None,
        max_tokens: 8,
        ..Default::default()
    };
    let counted = engines.full.count_prompt_tokens(&req).await.unwrap();
    let out = engines.full.generate(req).await.unwrap();
    assert_eq!(counted, out.prompt_tokens);
    assert!(out.prefill_ms > 0 && out.completion_tokens > 0, "{out:?}");

    let a = TestServer::start_with(&settings, engines).await;
    let settings_b = remote_settings(&dir.path().join("b"), &llama);
    let b = TestServer::start_with(&settings_b, docent::load_engines(&settings_b).await.unwrap()).await;
    let upload_to = |s: &TestServer, name: &'static str| {
        let s = s.url("");
        async move {
            let part = reqwest::multipart::Part::bytes(read_corpus(name)).file_name(name);
            let form = reqwest::multipart::Form::new().part("file", part);
            let resp = client().post(format!("{s}/api/v1/documents")).multipart(form).send().await.unwrap();
            resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
        }
    };
    let (doc_a, doc_b) =
        tokio::join!(upload_to(&a, "bitcoin_intro.txt"), upload_to(&b, "cuad_limeenergy_termination.txt"));
    let (ra, rb) = tokio::join!(
        analyze(&a, &doc_a, json!({"task": "summary"})),
        // A summary, not a question: a question may now rightly be declined (issue 21: the
        // refusal is decided from the first line's evidence, and on this contract the 0.5B
        // model's one-line answer to "When may a party terminate the agreement?" is), and a
        // refusal has no claim whose marker this test could check.
        analyze(&b, &doc_b, json!({"task": "summary"}))
    );
    for (resp, name) in [(ra, "bitcoin_intro.txt"), (rb, "cuad_limeenergy_termination.txt")] {
        let status = resp.status();
        let analysis: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{name}: {analysis}");
        assert_eq!(analysis["model"], "qwen2.5-coder-0.5b");
        let sentences = analysis["answer"]["sentences"].as_array().unwrap();
        // The grammar let no claim out without exactly one marker.
        assert!(!sentences.is_empty());
        for s in sentences {
            assert_eq!(s["citations"].as_array().unwrap().len(), 1, "{name}: {s}");
        }
        let citations = analysis["citations"].as_array().unwrap();
        let valid = citations.iter().filter(|c| c["valid"] == true).count();
        assert!(valid >= 1, "{name}: none of {} citations verified: {analysis:#}", citations.len());
        let text = String::from_utf8(read_corpus(name)).unwrap();
        let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        for c in citations.iter().filter(|c| c["valid"] == true) {
            assert!(squash(&text).contains(&squash(c["quote"].as_str().unwrap())), "{c}");
        }
    }
    a.stop().await;
    b.stop().await;
}

#[actix_web::test]
async fn a_remote_engine_that_cannot_be_reached_is_a_clear_start_up_error() {
    let port = free_port();
    let engine = EngineArgs {
        engine: Some(EngineKind::Openai),
        base_url: Some(format!("http://127.0.0.1:{port}/v1")),
        model: Some("anything".into()),
        max_context: Some(4096),
        ..EngineArgs::default()
    };
    let settings = Settings::resolve(&engine, &ServeArgs::default()).unwrap();
    let err = docent::load_engine(&settings).await.err().expect("no server, no engine");
    assert!(format!("{err:#}").contains("probe"), "{err:#}");
    let missing = EngineArgs { engine: Some(EngineKind::Openai), model: Some("x".into()), ..EngineArgs::default() };
    let err = Settings::resolve(&missing, &ServeArgs::default()).unwrap_err();
    assert!(err.to_string().contains("--base-url"), "{err}");
}
