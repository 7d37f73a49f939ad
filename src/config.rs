//! Settings, layered: built-in defaults < TOML file < `DOCENT_*` environment <
//! command-line flags (clap reads flags and environment), validated once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::llm::{
    ConstraintDialect, DTypeChoice, KvCacheDtype, LocalSettings, OpenAiSettings, Runtime, DEFAULT_KV_CACHE_TOKENS,
};
use crate::pipeline::chunk::ChunkConfig;

/// The default full-context model, as `scripts/fetch-models.sh` names it.
pub const DEFAULT_MODEL_FILE: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";
/// The default short-context baseline model (SmolLM2-135M-Instruct).
pub const DEFAULT_BASELINE_FILE: &str = "smollm2-135m-instruct-q4_1.gguf";

/// Sequences mistral.rs runs at once on a GPU (its own default; it captures CUDA graphs for decode
/// batches up to 64). How many of them fit is decided by the KV cache: a request waits until its
/// prompt and answer fit beside the running ones.
pub const GPU_MAX_RUNNING: usize = 32;
/// Analyses admitted at once on a GPU, running or waiting for KV blocks.
const GPU_MAX_QUEUED: usize = 64;
/// Batch items run at once on a GPU (benches/gpu-report.md, the throughput scenario).
const GPU_BATCH_WORKERS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// llama.cpp for a GGUF file on the CPU, mistral.rs for everything else.
    Auto,
    Mistralrs,
    Llamacpp,
    Openai,
}

impl EngineKind {
    /// The in-process library that runs `model` (a remote full-context model leaves the local
    /// ones, the baseline's, to `Auto`).
    fn runtime(self, model: &Path, on_cpu: bool) -> anyhow::Result<Runtime> {
        let gguf = model.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
        Ok(match self {
            Self::Mistralrs => Runtime::MistralRs,
            Self::Llamacpp if !gguf => {
                bail!("--engine llamacpp runs GGUF files; {} is not one (use --engine mistralrs)", model.display())
            }
            Self::Llamacpp => Runtime::LlamaCpp,
            Self::Auto | Self::Openai if gguf && on_cpu => Runtime::LlamaCpp,
            Self::Auto | Self::Openai => Runtime::MistralRs,
        })
    }
}

/// Options shared by every command that loads a model. All optional here so
/// that a value given nowhere falls back to the file, then to the default.
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
pub struct EngineArgs {
    /// TOML file with any of these settings (keys as the long flags, with `_`).
    #[arg(long, env = "DOCENT_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Directory holding the models fetched by scripts/fetch-models.sh.
    #[arg(long, env = "DOCENT_MODELS_DIR", global = true)]
    pub models_dir: Option<PathBuf>,
    /// Full-context model: a .gguf file or a safetensors directory. Default: the 0.5B Qwen GGUF in
    /// --models-dir. With `--engine openai`: the model's name on the server.
    #[arg(long, env = "DOCENT_MODEL", global = true)]
    pub model: Option<PathBuf>,
    /// Where the models run: in this process, by llama.cpp (`llamacpp`, GGUF files on CPU) or
    /// mistral.rs (`mistralrs`: safetensors directories, GPUs), or the full-context model on a
    /// remote OpenAI-compatible server (`openai`: llama.cpp, vLLM, SGLang) at --base-url.
    /// Default `auto`: llama.cpp for a GGUF file on the CPU, mistral.rs otherwise.
    #[arg(long, env = "DOCENT_ENGINE", value_enum, global = true)]
    pub engine: Option<EngineKind>,
    /// With `--engine openai`: the API root, e.g. http://gpu-node:8000/v1.
    #[arg(long, env = "DOCENT_BASE_URL", global = true)]
    pub base_url: Option<String>,
    /// With `--engine openai`: how the server takes the answer's format (default: ask the server).
    #[arg(long, env = "DOCENT_OPENAI_CONSTRAINT", value_enum, global = true)]
    pub openai_constraint: Option<ConstraintDialect>,
    /// Activation dtype; `auto` is F32 on CPU (5x faster than F16 there) and the model's own on GPU.
    #[arg(long, env = "DOCENT_DTYPE", value_enum, global = true)]
    pub dtype: Option<DTypeChoice>,
    /// Cap on prompt + answer tokens (default: the model's context length).
    #[arg(long, env = "DOCENT_MAX_CONTEXT", global = true)]
    pub max_context: Option<usize>,
    /// Most tokens an answer may take.
    #[arg(long, env = "DOCENT_MAX_ANSWER_TOKENS", global = true)]
    pub max_answer_tokens: Option<usize>,
    /// Run on the CPU even when a GPU is present.
    #[arg(long, env = "DOCENT_CPU", global = true)]
    pub cpu: Option<bool>,
    /// On a GPU: tokens of KV cache PagedAttention reserves for all running sequences together
    /// (default 262144, one 256K-token Qwen3-4B sequence, 36 GiB).
    #[arg(long, env = "DOCENT_KV_CACHE_TOKENS", global = true)]
    pub kv_cache_tokens: Option<usize>,
    /// On a GPU: `auto` (the model's dtype) or `f8e4m3` (half the memory per token).
    #[arg(long, env = "DOCENT_KV_CACHE_DTYPE", global = true)]
    pub kv_cache_dtype: Option<KvCacheDtype>,
    /// On a GPU: prompt tokens per prefill pass. Default: 4,096 in a build with FlashAttention-3,
    /// where every pass runs through it as fast as one pass with far less activation memory; a
    /// whole prompt in one pass otherwise (chunks after the first would take the paged FA2 kernel).
    #[arg(long, env = "DOCENT_PREFILL_CHUNK_TOKENS", global = true)]
    pub prefill_chunk_tokens: Option<usize>,
    /// On a GPU: prompt tokens one engine step prefills before the running answers get their next
    /// token (whole chunks, at least one). Default: one chunk, so that a long document arriving
    /// delays each running answer's token by one chunk's prefill instead of its whole prefill.
    #[arg(long, env = "DOCENT_PREFILL_STEP_TOKENS", global = true)]
    pub prefill_step_tokens: Option<usize>,
    /// Split the full-context model over this many GPUs of this host (tensor parallelism over
    /// NCCL; needs a build with the `nccl` feature). The chunked side then uses the same model.
    #[arg(long, env = "DOCENT_TENSOR_PARALLEL", global = true)]
    pub tensor_parallel: Option<usize>,
    /// Chunked-baseline model: a .gguf file, a safetensors directory, or `same` (the full-context
    /// model). Default: SmolLM2-135M-Instruct in --models-dir.
    #[arg(long, env = "DOCENT_BASELINE_MODEL", global = true)]
    pub baseline_model: Option<PathBuf>,
    /// Tokens one chunked-baseline call may use, prompt and answer (Baichuan2-7B's 4096 by default).
    #[arg(long, env = "DOCENT_BASELINE_CONTEXT", global = true)]
    pub baseline_context: Option<usize>,
    /// Largest chunk, in tokens of the baseline model.
    #[arg(long, env = "DOCENT_CHUNK_TOKENS", global = true)]
    pub chunk_tokens: Option<usize>,
    /// Tokens a chunk repeats from the one before when a paragraph is split.
    #[arg(long, env = "DOCENT_CHUNK_OVERLAP", global = true)]
    pub chunk_overlap: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "DOCENT_ADDR")]
    pub addr: Option<SocketAddr>,
    /// Directory for the database, originals and texts.
    #[arg(long, env = "DOCENT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Largest upload accepted, in MiB.
    #[arg(long, env = "DOCENT_MAX_UPLOAD_MB")]
    pub max_upload_mb: Option<usize>,
    /// Analyses admitted at once, running or waiting for the engine (default 4 on the CPU, 64 on a
    /// GPU); more get `engine_busy` (503, Retry-After).
    #[arg(long, env = "DOCENT_MAX_QUEUED")]
    pub max_queued: Option<usize>,
    /// Batch items waiting at most; a batch that would pass it gets `engine_busy`.
    #[arg(long, env = "DOCENT_MAX_BATCH_ITEMS")]
    pub max_batch_items: Option<usize>,
    /// Batch items run at once (default 1 on the CPU, where one sequence at a time is fastest;
    /// 16 on a GPU, where mistral.rs decodes running sequences together).
    #[arg(long, env = "DOCENT_BATCH_WORKERS")]
    pub batch_workers: Option<usize>,
    /// Longest a file may take to parse (OCR included), in seconds; then `parse_timeout`.
    #[arg(long, env = "DOCENT_PARSE_TIMEOUT_S")]
    pub parse_timeout_s: Option<u64>,
    /// Most memory (address space) the parser of one file may use, in MiB; then `parse_memory_limit`.
    #[arg(long, env = "DOCENT_PARSE_MEMORY_MB")]
    pub parse_memory_mb: Option<u64>,
    /// OCR for PDF pages without a usable text layer: `auto` (Tesseract's eng and chi_sim, those
    /// installed), `off`, or Tesseract languages such as `eng+deu`.
    #[arg(long, env = "DOCENT_OCR_LANGUAGES")]
    pub ocr_languages: Option<String>,
    /// On SIGTERM, how long running analyses and batch items may take to finish, in seconds.
    #[arg(long, env = "DOCENT_SHUTDOWN_GRACE_S")]
    pub shutdown_grace_s: Option<u64>,
}

/// Keys a settings file may hold; anything else is a typo worth refusing.
const FILE_KEYS: &[&str] = &[
    "models_dir",
    "model",
    "engine",
    "base_url",
    "openai_constraint",
    "dtype",
    "max_context",
    "max_answer_tokens",
    "cpu",
    "kv_cache_tokens",
    "kv_cache_dtype",
    "prefill_chunk_tokens",
    "prefill_step_tokens",
    "tensor_parallel",
    "baseline_model",
    "baseline_context",
    "chunk_tokens",
    "chunk_overlap",
    "addr",
    "data_dir",
    "max_upload_mb",
    "max_queued",
    "max_batch_items",
    "batch_workers",
    "parse_timeout_s",
    "parse_memory_mb",
    "ocr_languages",
    "shutdown_grace_s",
];

#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    #[serde(flatten)]
    engine: EngineArgs,
    #[serde(flatten)]
    serve: ServeArgs,
}

/// The executable that parses uploads (`<it> parse-worker`): `DOCENT_PARSE_WORKER`, else this
/// program itself.
fn parse_worker_program() -> anyhow::Result<PathBuf> {
    match std::env::var_os("DOCENT_PARSE_WORKER") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => std::env::current_exe().context("finding the docent executable to run the parse worker"),
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub engine: LocalSettings,
    /// The full-context model on a remote OpenAI-compatible server instead of `engine`.
    pub remote: Option<OpenAiSettings>,
    /// The chunked baseline's engine; `None` means the full-context engine ("same").
    pub baseline: Option<LocalSettings>,
    pub baseline_context: usize,
    pub chunking: ChunkConfig,
    pub models_dir: PathBuf,
    pub max_answer_tokens: usize,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub max_upload_bytes: usize,
    pub max_queued: usize,
    pub max_batch_items: usize,
    pub batch_workers: usize,
    /// How often an idle event stream sends a comment line, so that proxies keep it open.
    pub sse_keep_alive: std::time::Duration,
    /// On SIGTERM, how long running work may take to finish before the server exits anyway.
    pub shutdown_grace: std::time::Duration,
    /// How uploads are parsed: in a worker process, with limits and OCR.
    pub parser: crate::parse::Isolation,
}

impl Settings {
    pub fn resolve(engine: &EngineArgs, serve: &ServeArgs) -> anyhow::Result<Self> {
        let file = match &engine.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let (fe, fs) = (file.engine, file.serve);
        let models_dir = engine.models_dir.clone().or(fe.models_dir).unwrap_or_else(|| PathBuf::from("models"));
        let named_model = engine.model.clone().or(fe.model);
        let model = named_model.clone().unwrap_or_else(|| models_dir.join(DEFAULT_MODEL_FILE));
        let kind = engine.engine.or(fe.engine).unwrap_or(EngineKind::Auto);
        let force_cpu = engine.cpu.or(fe.cpu).unwrap_or(false);
        // A build without CUDA runs everything on the CPU.
        let on_cpu = force_cpu || !cfg!(feature = "cuda");
        let runtime = kind.runtime(&model, on_cpu)?;
        // On a GPU mistral.rs batches running sequences (continuous batching, PagedAttention); on
        // the CPU one sequence at a time is fastest (README "Batches": two overlapping items took
        // longer than one after the other).
        let gpu = !on_cpu && runtime == Runtime::MistralRs && !matches!(kind, EngineKind::Openai);
        let full = LocalSettings {
            runtime,
            model,
            dtype: engine.dtype.or(fe.dtype).unwrap_or(DTypeChoice::Auto),
            max_context: engine.max_context.or(fe.max_context),
            force_cpu,
            max_num_seqs: if gpu { GPU_MAX_RUNNING } else { 1 },
            kv_cache_tokens: engine.kv_cache_tokens.or(fe.kv_cache_tokens).unwrap_or(DEFAULT_KV_CACHE_TOKENS),
            kv_cache_dtype: engine.kv_cache_dtype.or(fe.kv_cache_dtype).unwrap_or_default(),
            prefill_chunk_tokens: engine.prefill_chunk_tokens.or(fe.prefill_chunk_tokens),
            prefill_step_tokens: engine.prefill_step_tokens.or(fe.prefill_step_tokens),
            prefix_cache: true,
            tensor_parallel: engine.tensor_parallel.or(fe.tensor_parallel).unwrap_or(1),
        };
        let remote = match kind {
            EngineKind::Auto | EngineKind::Mistralrs | EngineKind::Llamacpp => None,
            EngineKind::Openai => Some(OpenAiSettings {
                base_url: engine.base_url.clone().or(fe.base_url).context("--engine openai needs --base-url")?,
                model: named_model
                    .context("--engine openai needs --model, the model's name on the server")?
                    .to_string_lossy()
                    .into_owned(),
                // The key is read from the environment only, never from flags or files.
                api_key: std::env::var("DOCENT_OPENAI_API_KEY").ok().filter(|k| !k.is_empty()),
                max_context: engine.max_context.or(fe.max_context),
                constraint: engine.openai_constraint.or(fe.openai_constraint).unwrap_or(ConstraintDialect::Auto),
            }),
        };
        let baseline_context = engine.baseline_context.or(fe.baseline_context).unwrap_or(4096);
        let named_baseline = engine.baseline_model.clone().or(fe.baseline_model);
        // Tensor parallelism is process-wide in mistral.rs (every model loaded would be split, and
        // its worker processes load one model), so the chunked side shares the split model.
        let baseline_model = match named_baseline {
            Some(m) if full.tensor_parallel > 1 && m != Path::new("same") => {
                bail!(
                    "--tensor-parallel {} runs one model: leave --baseline-model unset or `same`, not {}",
                    full.tensor_parallel,
                    m.display()
                )
            }
            _ if full.tensor_parallel > 1 => PathBuf::from("same"),
            Some(m) => m,
            None => models_dir.join(DEFAULT_BASELINE_FILE),
        };
        let baseline = match baseline_model {
            m if m == Path::new("same") => None,
            m => Some(LocalSettings {
                runtime: kind.runtime(&m, on_cpu)?,
                model: m,
                max_context: Some(baseline_context),
                kv_cache_tokens: 2 * baseline_context,
                ..full.clone()
            }),
        };
        let default_chunking = ChunkConfig::default();
        let settings = Self {
            models_dir,
            engine: full,
            remote,
            baseline,
            baseline_context,
            chunking: ChunkConfig {
                max_tokens: engine.chunk_tokens.or(fe.chunk_tokens).unwrap_or(default_chunking.max_tokens),
                overlap_tokens: engine.chunk_overlap.or(fe.chunk_overlap).unwrap_or(default_chunking.overlap_tokens),
            },
            max_answer_tokens: engine.max_answer_tokens.or(fe.max_answer_tokens).unwrap_or(384),
            addr: serve.addr.or(fs.addr).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir: serve.data_dir.clone().or(fs.data_dir).unwrap_or_else(|| PathBuf::from("data")),
            max_upload_bytes: serve.max_upload_mb.or(fs.max_upload_mb).unwrap_or(100) * 1024 * 1024,
            max_queued: serve.max_queued.or(fs.max_queued).unwrap_or(if gpu { GPU_MAX_QUEUED } else { 4 }),
            max_batch_items: serve.max_batch_items.or(fs.max_batch_items).unwrap_or(10_000),
            batch_workers: serve.batch_workers.or(fs.batch_workers).unwrap_or(if gpu { GPU_BATCH_WORKERS } else { 1 }),
            sse_keep_alive: std::time::Duration::from_secs(15),
            shutdown_grace: std::time::Duration::from_secs(serve.shutdown_grace_s.or(fs.shutdown_grace_s).unwrap_or(30)),
            parser: crate::parse::Isolation {
                program: parse_worker_program()?,
                timeout: std::time::Duration::from_secs(serve.parse_timeout_s.or(fs.parse_timeout_s).unwrap_or(300)),
                memory_bytes: serve.parse_memory_mb.or(fs.parse_memory_mb).unwrap_or(2048).saturating_mul(1 << 20),
                ocr: crate::parse::Ocr::detect(
                    serve.ocr_languages.as_deref().or(fs.ocr_languages.as_deref()).unwrap_or("auto"),
                )?,
            },
        };
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.max_answer_tokens < 32 || self.max_answer_tokens > 8192 {
            bail!("max_answer_tokens must be between 32 and 8192, got {}", self.max_answer_tokens);
        }
        if self.max_upload_bytes == 0 {
            bail!("max_upload_mb must be at least 1");
        }
        if self.engine.tensor_parallel > 1 && self.engine.runtime != Runtime::MistralRs {
            bail!("tensor_parallel splits a safetensors directory run by mistral.rs, not a GGUF file");
        }
        if !(1..=16).contains(&self.engine.tensor_parallel) {
            bail!("tensor_parallel must be between 1 and 16 GPUs, got {}", self.engine.tensor_parallel);
        }
        if self.engine.kv_cache_tokens < 1024 {
            bail!("kv_cache_tokens must be at least 1024, got {}", self.engine.kv_cache_tokens);
        }
        if self.baseline_context < 1024 {
            bail!("baseline_context must be at least 1024 tokens, got {}", self.baseline_context);
        }
        let chunking = self.chunking;
        if chunking.max_tokens < 32 || chunking.max_tokens * 2 > self.baseline_context {
            bail!("chunk_tokens must be between 32 and half of baseline_context, got {}", chunking.max_tokens);
        }
        if chunking.overlap_tokens * 2 > chunking.max_tokens {
            bail!("chunk_overlap must be at most half of chunk_tokens, got {}", chunking.overlap_tokens);
        }
        if self.parser.timeout.as_secs() == 0 {
            bail!("parse_timeout_s must be at least 1");
        }
        if self.parser.memory_bytes < 256 << 20 {
            bail!("parse_memory_mb must be at least 256");
        }
        if self.max_queued == 0 {
            bail!("max_queued must be at least 1");
        }
        if self.max_batch_items == 0 || self.batch_workers == 0 || self.batch_workers > 64 {
            bail!("max_batch_items must be at least 1 and batch_workers between 1 and 64");
        }
        Ok(())
    }
}

/// `--tensor-parallel`, from the flag or environment, else the settings file, else 1 (checked
/// with the other settings by `Settings::resolve`).
pub fn tensor_parallel(engine: &EngineArgs) -> anyhow::Result<usize> {
    let from_file = match (&engine.tensor_parallel, &engine.config) {
        (None, Some(path)) => load_file(path)?.engine.tensor_parallel,
        _ => None,
    };
    Ok(engine.tensor_parallel.or(from_file).unwrap_or(1))
}

/// mistral.rs reads its tensor-parallel settings from the environment, in this process and in
/// the worker processes it starts (copies of this command, one per extra GPU). Called at the
/// start of `main`, before any thread exists.
pub fn export_tensor_parallel(n: usize) {
    if n > 1 {
        std::env::set_var("MISTRALRS_MN_LOCAL_WORLD_SIZE", n.to_string());
        std::env::remove_var("MISTRALRS_NO_NCCL");
    } else {
        // A build with NCCL would otherwise split every model over all visible GPUs.
        std::env::set_var("MISTRALRS_NO_NCCL", "1");
    }
}

fn load_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = fs_err::read_to_string(path)?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("reading settings from {}", path.display()))?;
    if let Some(key) = table.keys().find(|k| !FILE_KEYS.contains(&k.as_str())) {
        bail!("unknown setting `{key}` in {} (known: {})", path.display(), FILE_KEYS.join(", "));
    }
    table.try_into().with_context(|| format!("reading settings from {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(toml: &str) -> (tempfile::NamedTempFile, EngineArgs) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, toml.as_bytes()).unwrap();
        let args = EngineArgs { config: Some(f.path().to_owned()), ..EngineArgs::default() };
        (f, args)
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let (_f, mut engine) = with_file("max_answer_tokens = 200\nmodels_dir = \"/m\"\nmax_queued = 7\n");
        let serve = ServeArgs { max_queued: Some(2), ..ServeArgs::default() };
        let s = Settings::resolve(&engine, &serve).unwrap();
        assert_eq!(s.max_answer_tokens, 200);
        assert_eq!(s.max_queued, 2);
        assert_eq!(s.engine.model, PathBuf::from("/m").join(DEFAULT_MODEL_FILE));
        assert_eq!(s.addr.to_string(), "127.0.0.1:8080");
        engine.max_answer_tokens = Some(300);
        assert_eq!(Settings::resolve(&engine, &serve).unwrap().max_answer_tokens, 300);
        assert_eq!(s.engine.kv_cache_dtype, KvCacheDtype::Auto);
        let (_g, fp8) = with_file("kv_cache_dtype = \"f8e4m3\"\n");
        assert_eq!(Settings::resolve(&fp8, &serve).unwrap().engine.kv_cache_dtype, KvCacheDtype::F8e4m3);
    }

    #[test]
    fn streams_keep_alive_every_15_s_and_shutdown_waits_30_s_unless_told() {
        let s = Settings::resolve(&EngineArgs::default(), &ServeArgs::default()).unwrap();
        assert_eq!((s.sse_keep_alive.as_secs(), s.shutdown_grace.as_secs()), (15, 30));
        let (_f, engine) = with_file("shutdown_grace_s = 5\n");
        assert_eq!(Settings::resolve(&engine, &ServeArgs::default()).unwrap().shutdown_grace.as_secs(), 5);
        let serve = ServeArgs { shutdown_grace_s: Some(120), ..ServeArgs::default() };
        assert_eq!(Settings::resolve(&engine, &serve).unwrap().shutdown_grace.as_secs(), 120);
    }

    #[test]
    fn tensor_parallel_runs_one_model_for_both_pipelines() {
        let (_f, mut engine) = with_file("tensor_parallel = 2\nmodel = \"/m/qwen3-4b\"\n");
        assert_eq!(tensor_parallel(&engine).unwrap(), 2);
        let s = Settings::resolve(&engine, &ServeArgs::default()).unwrap();
        assert_eq!(s.engine.tensor_parallel, 2);
        assert!(s.baseline.is_none(), "the chunked side shares the split model");
        engine.baseline_model = Some(PathBuf::from("/m/other.gguf"));
        let err = Settings::resolve(&engine, &ServeArgs::default()).unwrap_err();
        assert!(err.to_string().contains("runs one model"), "{err}");
        engine.baseline_model = Some(PathBuf::from("same"));
        assert!(Settings::resolve(&engine, &ServeArgs::default()).is_ok());
        engine.tensor_parallel = Some(0);
        assert!(Settings::resolve(&engine, &ServeArgs::default()).is_err());
        engine.tensor_parallel = Some(1);
        engine.baseline_model = None;
        assert!(Settings::resolve(&engine, &ServeArgs::default()).unwrap().baseline.is_some());
    }

    #[test]
    fn gguf_files_on_the_cpu_run_on_llama_cpp_and_directories_on_mistral_rs() {
        let serve = ServeArgs::default();
        let gguf = EngineArgs { model: Some("/m/a.gguf".into()), cpu: Some(true), ..EngineArgs::default() };
        let s = Settings::resolve(&gguf, &serve).unwrap();
        assert_eq!(s.engine.runtime, Runtime::LlamaCpp);
        assert_eq!(s.baseline.map(|b| b.runtime), Some(Runtime::LlamaCpp));
        let dir = EngineArgs { model: Some("/m/qwen3-4b".into()), ..gguf.clone() };
        assert_eq!(Settings::resolve(&dir, &serve).unwrap().engine.runtime, Runtime::MistralRs);
        let chosen = EngineArgs { engine: Some(EngineKind::Mistralrs), ..gguf.clone() };
        let s = Settings::resolve(&chosen, &serve).unwrap();
        assert_eq!((s.engine.runtime, s.baseline.map(|b| b.runtime)), (Runtime::MistralRs, Some(Runtime::MistralRs)));
        let wrong = EngineArgs { engine: Some(EngineKind::Llamacpp), ..dir };
        let err = Settings::resolve(&wrong, &serve).unwrap_err();
        assert!(err.to_string().contains("runs GGUF files"), "{err}");
        let split = EngineArgs { tensor_parallel: Some(2), ..gguf };
        assert!(Settings::resolve(&split, &serve).is_err(), "llama.cpp runs no tensor parallelism here");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let (_f, engine) = with_file("max_anser_tokens = 200\n");
        let err = Settings::resolve(&engine, &ServeArgs::default()).unwrap_err();
        assert!(err.to_string().contains("unknown setting `max_anser_tokens`"));
        let (_g, engine) = with_file("max_answer_tokens = 1\n");
        assert!(Settings::resolve(&engine, &ServeArgs::default()).is_err());
    }
}
