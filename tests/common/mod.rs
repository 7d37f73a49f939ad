//! Helpers shared by the integration tests: corpus paths, settings on a
//! temporary data dir, a real HTTP server on a free port, a scripted engine.

#![allow(dead_code)]

pub mod baichuan2;
pub mod browser;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use docent::config::{EngineArgs, ServeArgs, Settings, DEFAULT_MODEL_FILE};
use docent::llm::{Engine, GenOutput, GenRequest};

/// A port nothing listens on now, for a child server.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

pub fn corpus(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpora").join(name)
}

pub fn read_corpus(name: &str) -> Vec<u8> {
    std::fs::read(corpus(name)).unwrap_or_else(|e| panic!("reading corpora/{name}: {e}"))
}

/// Where `scripts/fetch-models.sh` put the models: `DOCENT_MODELS_DIR`, else `./models`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("DOCENT_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"))
}

/// The real default model. Missing is a failure, not a skip: run
/// `scripts/fetch-models.sh` (the test command in the README does).
pub fn default_model() -> PathBuf {
    let dir = models_dir();
    let model = dir.join(DEFAULT_MODEL_FILE);
    assert!(model.is_file(), "{} is missing: run scripts/fetch-models.sh {}", model.display(), dir.display());
    model
}

/// The Python of `scripts/fetch-pytools.sh` (Prometheus' text parser, an OpenAPI validator):
/// `DOCENT_PYTOOLS`, else its default venv. Missing is a failure: run the script.
pub fn pytools() -> PathBuf {
    let python = std::env::var_os("DOCENT_PYTOOLS").map(PathBuf::from).unwrap_or_else(|| {
        let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()));
        home.join(".cache/docent/pytools/bin/python")
    });
    assert!(python.is_file(), "{} is missing: run scripts/fetch-pytools.sh", python.display());
    python
}

/// Run a script of tests/tools with the tools' Python on `input`: its stdout, or a failure
/// with its stderr.
pub fn run_tool(script: &str, input: &[u8]) -> String {
    use std::io::Write;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools").join(script);
    let mut child = std::process::Command::new(pytools())
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the tools' Python starts");
    child.stdin.take().expect("stdin").write_all(input).expect("writing to the tool");
    let out = child.wait_with_output().expect("the tool ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} refused its input: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

pub fn settings(data_dir: &std::path::Path) -> Settings {
    let engine = EngineArgs {
        // Only the real-engine tests load them, and they check they exist.
        models_dir: Some(models_dir()),
        model: Some(models_dir().join(DEFAULT_MODEL_FILE)),
        cpu: Some(true),
        ..EngineArgs::default()
    };
    let serve = ServeArgs {
        data_dir: Some(data_dir.to_owned()),
        addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..ServeArgs::default()
    };
    let mut settings = Settings::resolve(&engine, &serve).expect("settings");
    // The test harness is not docent: uploads are parsed by the docent binary built beside it.
    settings.parser.program = env!("CARGO_BIN_EXE_docent").into();
    settings
}

pub struct TestServer {
    pub base: String,
    handle: actix_web::dev::ServerHandle,
}

impl TestServer {
    /// A server with one engine in both model slots.
    pub async fn start(settings: &Settings, engine: Arc<dyn Engine>) -> Self {
        Self::start_with(settings, docent::Engines::same(engine)).await
    }

    pub async fn start_with(settings: &Settings, engines: docent::Engines) -> Self {
        let state = docent::build_state(settings, engines).await.expect("build service");
        let (server, addr) = docent::start_server(state, settings.addr).expect("bind");
        let handle = server.handle();
        tokio::spawn(server);
        Self { base: format!("http://{addr}"), handle }
    }

    /// A server on `dir` answered by the scripted engine with a context of `context_limit` tokens.
    pub async fn scripted(dir: &std::path::Path, context_limit: usize) -> Self {
        Self::start(&settings(dir), Arc::new(ScriptedEngine::new(context_limit))).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(1800))
        .build()
        .expect("client")
}

/// The multipart body of an upload: one `file` part named `name`.
pub fn file_form(name: &str, bytes: Vec<u8>) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()))
}

pub async fn upload(server: &TestServer, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    let form = file_form(name, bytes);
    client().post(server.url("/api/v1/documents")).multipart(form).send().await.expect("upload request")
}

/// `POST /api/v1/documents/{id}/analyses` with a JSON body.
pub async fn analyze(server: &TestServer, id: &str, body: serde_json::Value) -> reqwest::Response {
    client()
        .post(server.url(&format!("/api/v1/documents/{id}/analyses")))
        .json(&body)
        .send()
        .await
        .expect("analysis request")
}

/// `GET path` as JSON.
pub async fn get_json(server: &TestServer, path: &str) -> serde_json::Value {
    client().get(server.url(path)).send().await.expect("GET").json().await.expect("JSON body")
}

/// `GET path` as text (pages, HTML).
pub async fn get_html(server: &TestServer, path: &str) -> String {
    let resp = client().get(server.url(path)).send().await.expect("GET");
    resp.text().await.expect("text body")
}

/// The normalised text of a document, as the API serves it.
pub async fn text_of(server: &TestServer, id: &str) -> String {
    let resp = client().get(server.url(&format!("/api/v1/documents/{id}/text"))).send().await.expect("GET text");
    resp.text().await.expect("text body")
}

/// A scripted engine for fast tests of everything around the model: it
/// "summarizes" by restating the first segments it was shown and citing them,
/// and counts tokens as whitespace-separated words.
pub struct ScriptedEngine {
    pub context_limit: usize,
    /// How long each answer takes, to hold the engine busy.
    pub delay: std::time::Duration,
}

impl ScriptedEngine {
    pub fn new(context_limit: usize) -> Self {
        Self { context_limit, delay: std::time::Duration::ZERO }
    }
}

#[async_trait]
impl Engine for ScriptedEngine {
    fn model_name(&self) -> &str {
        "scripted-test-engine"
    }

    fn context_limit(&self) -> usize {
        self.context_limit
    }

    async fn count_tokens(&self, text: &str) -> anyhow::Result<usize> {
        Ok(text.split_whitespace().count())
    }

    async fn count_prompt_tokens(&self, req: &GenRequest) -> anyhow::Result<usize> {
        Ok(req.system.split_whitespace().count() + req.user.split_whitespace().count())
    }

    async fn generate(&self, req: GenRequest) -> anyhow::Result<GenOutput> {
        tokio::time::sleep(self.delay).await;
        let mut text = String::new();
        // Document lines end with their marker: "sentence text [S4111]"; answer lines start with
        // it: "[S4111] sentence text".
        let mut lines: Vec<(&str, &str)> =
            req.user.lines().filter(|l| l.ends_with(']') && l.contains(" [S")).filter_map(|l| l.rsplit_once(' ')).collect();
        // Asked a question, it points first at the lines sharing most words with it, as a model
        // that finds its evidence would.
        if let Some(q) = req.user.lines().find_map(|l| l.strip_prefix("Question: ")) {
            let words = |t: &str| -> std::collections::HashSet<String> {
                t.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 3).map(str::to_lowercase).collect()
            };
            let asked = words(q);
            lines.sort_by_key(|(sentence, _)| std::cmp::Reverse(words(sentence).intersection(&asked).count()));
        }
        for (sentence, marker) in lines.iter().take(2) {
            text.push_str(&format!("{marker} {sentence}\n"));
        }
        // One claim citing an unrelated segment: verification must flag it.
        let first_marker = lines.first().map_or("[S0]", |(_, m)| m);
        text.push_str(&format!("{first_marker} Quantum chromodynamics governs hadron spectra.\n"));
        Ok(GenOutput { prompt_tokens: 10, completion_tokens: 5, text, ..GenOutput::default() })
    }
}

/// A one-page PDF (Helvetica as /F1) whose page draws `content`, a content stream stored as
/// given under `filter` (e.g. already deflated, "FlateDecode").
pub fn one_page_pdf(content: Vec<u8>, filter: Option<&str>) -> Vec<u8> {
    use lopdf::{dictionary, Object, Stream};
    let mut doc = lopdf::Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font = doc.add_object(dictionary! {"Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica"});
    let mut dict = dictionary! {};
    if let Some(f) = filter {
        dict.set("Filter", Object::Name(f.as_bytes().to_vec()));
    }
    let content = doc.add_object(Stream::new(dict, content).with_compression(false));
    let page = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => content,
        "Resources" => dictionary! {"Font" => dictionary! {"F1" => font}},
        "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {"Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1}),
    );
    let catalog = doc.add_object(dictionary! {"Type" => "Catalog", "Pages" => pages_id});
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("PDF written");
    out
}

/// mistral.rs on the CPU, one sequence, no prefix cache: how the checkpoint tests load a model
/// directory, as `--model DIR --engine mistralrs` would.
pub fn mistral_cpu_settings(dir: &std::path::Path, dtype: docent::llm::DTypeChoice) -> docent::llm::LocalSettings {
    docent::llm::LocalSettings {
        runtime: docent::llm::Runtime::MistralRs,
        model: dir.to_owned(),
        dtype,
        max_context: None,
        force_cpu: true,
        max_num_seqs: 1,
        kv_cache_tokens: docent::llm::DEFAULT_KV_CACHE_TOKENS,
        kv_cache_dtype: docent::llm::KvCacheDtype::Auto,
        prefill_chunk_tokens: None,
        prefill_step_tokens: None,
        prefix_cache: false,
        tensor_parallel: 1,
    }
}
