//! The `docent` command: serve the web app and API, ingest, summarize, compare, batch, convert, bench.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod cli;

use docent::config::{EngineArgs, ServeArgs, Settings};
use docent::domain::{Analysis, Comparison, PipelineKind, Scope, Side, Task};
use docent::models::checkpoint::baichuan2::TinyBaichuan2;
use docent::models::checkpoint::{write_random_qwen3, Qwen3Shape};
use docent::pipeline::TaskSpec;
use docent::service::ChunkedModel;

#[derive(Parser)]
#[command(name = "docent", version, about = "Whole-document answers with verified cited spans")]
struct Cli {
    #[command(flatten)]
    engine: EngineArgs,
    /// Log lines as text, or as one JSON object a line (each request's lines carry its id).
    #[arg(long, value_enum, env = "DOCENT_LOG_FORMAT", default_value = "text", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web pages and the REST API.
    Serve(ServeArgs),
    /// Parse one file from stdin and answer on stdout: the isolated parser the server starts
    /// for each upload (not for direct use).
    #[command(hide = true)]
    ParseWorker,
    /// Parse a file and store it in the data dir, printing its metadata as JSON.
    Ingest {
        file: PathBuf,
        #[arg(long)]
        password: Option<String>,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Summarize a file (or answer --question about it) and print the answer with its citations.
    Summarize {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "full")]
        pipeline: PipelineArg,
        #[arg(long)]
        question: Option<String>,
        #[arg(long)]
        password: Option<String>,
        /// Print the analysis as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run both pipelines on a file and print the answers side by side with their overlap.
    Compare {
        file: PathBuf,
        #[arg(long)]
        question: Option<String>,
        #[arg(long)]
        password: Option<String>,
        /// Model of the chunked side: the short-context baseline, or the full-context model.
        #[arg(long, value_enum, default_value = "baseline")]
        chunked_model: ChunkedModelArg,
        #[arg(long)]
        json: bool,
    },
    /// Run a batch of files (or directories of them) through the pipelines, with a progress bar;
    /// results as JSON Lines. Exits with 3 when some items failed.
    Batch(cli::batch::BatchArgs),
    /// Rebuild the search index of every stored document from the store.
    Reindex {
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Write a random-weight checkpoint: Qwen3 (config.json, bf16 safetensors, the real
    /// tokenizer; the full Qwen3-4B-Instruct-2507 shape costs the same GPU time as the real
    /// weights), or a tiny one in Baichuan2-7B's published layout.
    Checkpoint {
        /// Directory to write.
        #[arg(long)]
        out: PathBuf,
        /// `qwen3-4b`, `qwen3-4b-4-layers`, `tiny` (Qwen3), or `baichuan2-tiny`.
        #[arg(long, default_value = "qwen3-4b")]
        shape: String,
        /// Qwen3: directory with tokenizer.json (default: qwen3-tokenizer in --models-dir).
        /// Baichuan2: a SentencePiece tokenizer.model (default: the test fixture's).
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        /// baichuan2-tiny only: `bin` (pytorch_model.bin, as published) or `safetensors` (sharded).
        #[arg(long, default_value = "bin")]
        format: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Evaluate the pipelines on gold data (CUAD clauses, needles at controlled depths, summary
    /// citations): results.jsonl, summary.json and report.html, listed on the Evaluations page.
    Eval(docent::eval::EvalArgs),
    /// Benchmarks against a peer measured in the same run.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Model files: conversions into layouts mistral.rs loads.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// API keys of a data dir (the first one turns authentication on).
    Keys {
        #[command(subcommand)]
        command: cli::keys::KeysCommand,
        /// The server's data dir.
        #[arg(long, env = "DOCENT_DATA_DIR", default_value = "data", global = true)]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Convert a Baichuan2-7B (Base or Chat) download into a Llama checkpoint for
    /// `--baseline-model DIR`: W_pack split into q/k/v, the NormHead normalised, tokenizer.json
    /// built from tokenizer.model, Baichuan2's chat template. DST must not exist.
    ConvertBaichuan2 { src: PathBuf, dst: PathBuf },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Long prompts (8K–256K tokens) on a GPU against Hugging Face transformers and the FLOP floor.
    Gpu(docent::bench::GpuBenchArgs),
    /// The prefill attention kernels alone (FlashAttention-3 and -2) against torch's backends.
    #[cfg(feature = "flash-attn-v3")]
    Attention(docent::bench::AttentionBenchArgs),
    /// Next-token logits of raw-token prompts on a GPU, for benches/logits_check.py.
    Logits(docent::bench::LogitsArgs),
    /// The CPU path against its peers in one run: the GGUF model against llama.cpp's server,
    /// PDF parsing against pdftotext, the search index against SQLite FTS5.
    Cpu(docent::bench::CpuBenchArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PipelineArg {
    Full,
    Chunked,
    ChunkedSame,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ChunkedModelArg {
    Baseline,
    Same,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let tensor_parallel = docent::config::tensor_parallel(&cli.engine)?;
    // Before the runtime starts any thread: mistral.rs reads these from the environment.
    docent::config::export_tensor_parallel(tensor_parallel);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if mistralrs::core::distributed::is_daemon() {
        return runtime.block_on(tensor_parallel_worker(cli, tensor_parallel));
    }
    check_tensor_parallel(&cli, tensor_parallel)?;
    let result = runtime.block_on(run(cli, tensor_parallel));
    // An engine thread still busy (a request past the shutdown grace) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    result
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOCENT_LOG")
        .unwrap_or_else(|_| "info,mistralrs_core=warn,llama-cpp-2=warn,actix_web=info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        // The request's span (its id) on every line, flattened beside the event's own fields.
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).init(),
    }
}

/// With `--tensor-parallel N`, mistral.rs starts N-1 copies of this very command, one per extra
/// GPU, and tells them apart by an environment variable. A copy must load the same model with the
/// same settings, and do nothing else (no port, no data dir, no peer benchmark): mistral.rs then
/// keeps it serving its share of every request of the main process until that process ends.
async fn tensor_parallel_worker(cli: Cli, tensor_parallel: usize) -> anyhow::Result<()> {
    // mistral.rs keeps a worker spinning until it is killed; it must not outlive its main process
    // (and keep holding its GPU) when that one ends or is killed.
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        if std::os::unix::process::parent_id() != parent {
            std::process::exit(0);
        }
    });
    let settings = match &cli.command {
        Command::Bench(BenchCommand::Gpu(args)) => docent::bench::gpu::engine_settings(args, tensor_parallel)?,
        // Every other command that loads a model loads the full-context one first, from the
        // engine settings alone.
        _ => Settings::resolve(&cli.engine, &ServeArgs::default())?.engine,
    };
    docent::llm::MistralEngine::load(&settings).await?;
    anyhow::bail!("mistral.rs returned from a tensor-parallel worker's model load")
}

/// Analyses on a split model hung on the 2-GPU host (a constrained chat request never finished,
/// benches/gpu-report-2gpu.md), so for now only the benchmark, whose raw-token requests ran, may
/// split the model. Refusing beats a server that accepts work and never answers.
fn check_tensor_parallel(cli: &Cli, n: usize) -> anyhow::Result<()> {
    if n > 1 && !matches!(cli.command, Command::Bench(_)) {
        anyhow::bail!(
            "--tensor-parallel {n} runs only `docent bench gpu` for now: analyses on a model split \
             over GPUs did not finish on a 2-GPU H200 host (benches/gpu-report-2gpu.md)"
        );
    }
    Ok(())
}

async fn run(cli: Cli, tensor_parallel: usize) -> anyhow::Result<()> {
    match cli.command {
        Command::ParseWorker => docent::parse::worker_main()?,
        Command::Keys { command, data_dir } => cli::keys::run(command, &data_dir)?,
        Command::Serve(serve) => {
            let settings = Settings::resolve(&cli.engine, &serve)?;
            let state = docent::build_state(&settings, docent::load_engines(&settings).await?).await?;
            docent::serve_until_signalled(state, settings.addr).await?;
        }
        Command::Ingest { file, password, serve } => {
            let settings = Settings::resolve(&cli.engine, &serve)?;
            let docent = docent::build_docent(&settings, docent::load_engines(&settings).await?)?;
            let doc = ingest(&docent, &file, password).await?;
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Command::Batch(args) => {
            let code = cli::batch::run(&cli.engine, args).await?;
            if code != 0 {
                std::process::exit(code);
            }
        }
        Command::Reindex { serve } => {
            let settings = Settings::resolve(&cli.engine, &serve)?;
            let docent = docent::build_docent(&settings, docent::load_engines(&settings).await?)?;
            let n = docent.reindex(true).await.map_err(anyhow::Error::from)?;
            eprintln!("re-indexed {n} documents");
        }
        Command::Summarize { file, pipeline, question, password, json } => {
            let (docent, _scratch) = scratch_docent(&cli.engine).await?;
            let doc = ingest(&docent, &file, password).await?;
            let (kind, model) = match pipeline {
                PipelineArg::Full => (PipelineKind::Full, ChunkedModel::Baseline),
                PipelineArg::Chunked => (PipelineKind::Chunked, ChunkedModel::Baseline),
                PipelineArg::ChunkedSame => (PipelineKind::Chunked, ChunkedModel::Same),
            };
            let task = if question.is_some() { Task::Question } else { Task::Summary };
            let analysis = docent
                .analyze(&Scope::Open, &doc.id, kind, TaskSpec { task, question }, model)
                .await
                .map_err(anyhow::Error::from)
                .context("analysis failed")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&analysis)?);
            } else {
                print_answer(&analysis);
            }
        }
        Command::Compare { file, question, password, chunked_model, json } => {
            let (docent, _scratch) = scratch_docent(&cli.engine).await?;
            let doc = ingest(&docent, &file, password).await?;
            let task = if question.is_some() { Task::Question } else { Task::Summary };
            let model = match chunked_model {
                ChunkedModelArg::Baseline => ChunkedModel::Baseline,
                ChunkedModelArg::Same => ChunkedModel::Same,
            };
            let c = docent
                .compare(&Scope::Open, &doc.id, TaskSpec { task, question }, model)
                .await
                .map_err(anyhow::Error::from)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                print_comparison(&c);
            }
        }
        Command::Checkpoint { out, shape, tokenizer, format, seed } if shape == "baichuan2-tiny" => {
            let tokenizer = tokenizer.unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(docent::models::checkpoint::baichuan2::TOKENIZER_FIXTURE)
            });
            let model = TinyBaichuan2::random(seed);
            match format.as_str() {
                "bin" => model.write_pytorch_bin(&out, &tokenizer)?,
                "safetensors" => model.write_sharded_safetensors(&out, &tokenizer)?,
                other => anyhow::bail!("unknown format `{other}` (known: bin, safetensors)"),
            }
            eprintln!("wrote a tiny Baichuan2 checkpoint ({format}, seed {seed}) to {}", out.display());
        }
        Command::Checkpoint { out, shape, tokenizer, seed, .. } => {
            let Some(dims) = Qwen3Shape::by_name(&shape) else {
                anyhow::bail!("unknown shape `{shape}` (known: qwen3-4b, qwen3-4b-4-layers, tiny, baichuan2-tiny)")
            };
            let settings = Settings::resolve(&cli.engine, &ServeArgs::default())?;
            let tokenizer = tokenizer.unwrap_or_else(|| settings.models_dir.join("qwen3-tokenizer"));
            let start = std::time::Instant::now();
            let path = write_random_qwen3(&out, &dims, &tokenizer, seed)?;
            let bytes = fs_err::metadata(&path)?.len();
            eprintln!(
                "wrote {} ({:.2} GB) in {:.1} s",
                path.display(),
                bytes as f64 / 1e9,
                start.elapsed().as_secs_f64()
            );
        }
        Command::Eval(args) => {
            let out = docent::eval::run::run(&cli.engine, args).await?;
            eprintln!("wrote {}", out.join("report.html").display());
        }
        Command::Bench(BenchCommand::Gpu(args)) => docent::bench::gpu::run(args, tensor_parallel).await?,
        #[cfg(feature = "flash-attn-v3")]
        Command::Bench(BenchCommand::Attention(args)) => docent::bench::attention::run(&args)?,
        Command::Bench(BenchCommand::Logits(args)) => docent::bench::logits::run(&args).await?,
        Command::Bench(BenchCommand::Cpu(args)) => {
            let settings = Settings::resolve(&cli.engine, &ServeArgs::default())?;
            docent::bench::cpu::run(args, &settings).await?;
        }
        Command::Models(ModelsCommand::ConvertBaichuan2 { src, dst }) => {
            let start = std::time::Instant::now();
            let done =
                tokio::task::spawn_blocking(move || docent::models::baichuan::convert_baichuan2(&src, &dst)).await??;
            eprintln!(
                "converted {} layers, {} tensors, {:.2} GB in {:.1} s; LM head row norms {:.3}..{:.3} before normalising{}",
                done.layers,
                done.tensors,
                done.bytes as f64 / 1e9,
                start.elapsed().as_secs_f64(),
                done.head_row_norms.0,
                done.head_row_norms.1,
                if done.skipped.is_empty() { String::new() } else { format!("; skipped {}", done.skipped.join(", ")) }
            );
        }
    }
    Ok(())
}

/// A service on a temporary data dir, for one-off commands that should leave nothing behind.
async fn scratch_docent(engine: &EngineArgs) -> anyhow::Result<(docent::service::Docent, tempfile::TempDir)> {
    let scratch = tempfile::tempdir()?;
    let serve = ServeArgs { data_dir: Some(scratch.path().to_owned()), ..ServeArgs::default() };
    let settings = Settings::resolve(engine, &serve)?;
    let docent = docent::build_docent(&settings, docent::load_engines(&settings).await?)?;
    Ok((docent, scratch))
}

async fn ingest(
    docent: &docent::service::Docent,
    file: &std::path::Path,
    password: Option<String>,
) -> anyhow::Result<docent::domain::Document> {
    let bytes = fs_err::read(file)?;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    docent.ingest(&Scope::Open, &name, bytes, password).await.map_err(anyhow::Error::from)
}

fn print_answer(a: &Analysis) {
    for s in &a.answer.sentences {
        let marks: Vec<String> = s.citations.iter().map(|c| format!("[{c}]")).collect();
        println!("{} {}", s.text, marks.join(""));
    }
    println!();
    for c in &a.citations {
        let status = if c.valid {
            "verified".to_owned()
        } else {
            format!("NOT VERIFIED ({})", c.reason.as_deref().unwrap_or(""))
        };
        println!("[{}] p.{} bytes {}..{} {}: \"{}\"", c.id, c.page, c.start, c.end, status, c.quote.replace('\n', " "));
    }
    let valid = a.citations.iter().filter(|c| c.valid).count();
    if let Some(r) = &a.retrieval {
        println!("\n{}", r.describe());
    }
    println!(
        "\n{valid}/{} citations verified · {} prompt + {} answer tokens · prefill {} ms, decode {} ms, total {} ms · {} ({})",
        a.citations.len(), a.usage.prompt_tokens, a.usage.completion_tokens,
        a.timings.prefill_ms, a.timings.decode_ms, a.timings.total_ms, a.model, a.pipeline.as_str()
    );
}

fn print_comparison(c: &Comparison) {
    for (name, side) in [("FULL CONTEXT", &c.full), ("CHUNKED RETRIEVAL", &c.chunked)] {
        println!("=== {name} ===");
        match side {
            Side::Done(a) => print_answer(a),
            Side::Failed { error } => println!("no answer ({}): {}", error.code, error.message),
        }
        println!();
    }
    let o = &c.overlap;
    for (name, stats) in [("full", &o.full), ("chunked", &o.chunked)] {
        if let Some(s) = stats {
            println!(
                "{name}: {}/{} citations verified ({:.0}%), citations cover {:.1}% of the text, pages {:?}",
                s.valid,
                s.citations,
                s.validity * 100.0,
                s.coverage * 100.0,
                s.pages
            );
        }
    }
    println!("in common: {} segments, {:.1}% of the text", o.common_segments.len(), o.common_coverage * 100.0);
}
