//! The `docent` command: serve the web app and API, ingest a file, or summarize one.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use docent::config::{EngineArgs, ServeArgs, Settings};
use docent::domain::{PipelineKind, Task};
use docent::http::AppState;
use docent::llm::checkpoint::{write_random_qwen3, Qwen3Shape};
use docent::pipeline::{DocInput, FullContext, Pipeline, TaskSpec};

#[derive(Parser)]
#[command(name = "docent", version, about = "Whole-document answers with verified cited spans")]
struct Cli {
    #[command(flatten)]
    engine: EngineArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web pages and the REST API.
    Serve(ServeArgs),
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
    /// Write a random-weight Qwen3 checkpoint (config.json, bf16 safetensors, the real tokenizer):
    /// the full Qwen3-4B-Instruct-2507 shape costs the same GPU time as the real weights.
    Checkpoint {
        /// Directory to write.
        #[arg(long)]
        out: PathBuf,
        /// `qwen3-4b` or `tiny`.
        #[arg(long, default_value = "qwen3-4b")]
        shape: String,
        /// Directory with the Qwen3 tokenizer.json (default: qwen3-tokenizer in --models-dir).
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Benchmarks against a peer measured in the same run.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Long prompts (8K–256K tokens) on a GPU against Hugging Face transformers and the FLOP floor.
    Gpu(docent::bench::GpuBenchArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PipelineArg {
    Full,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DOCENT_LOG")
                .unwrap_or_else(|_| "info,mistralrs_core=warn,actix_web=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(serve) => {
            let settings = Settings::resolve(&cli.engine, &serve)?;
            let engine = docent::load_engine(&settings).await?;
            let docent = docent::build_docent(&settings, engine)?;
            let state = AppState::new(docent, settings.max_upload_bytes)?;
            let (server, addr) = docent::start_server(state, settings.addr)?;
            tracing::info!("docent listening on http://{addr}");
            server.await?;
        }
        Command::Ingest { file, password, serve } => {
            let settings = Settings::resolve(&cli.engine, &serve)?;
            let bytes = fs_err::read(&file)?;
            let engine = docent::load_engine(&settings).await?;
            let docent = docent::build_docent(&settings, engine)?;
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let doc = docent.ingest(&name, bytes, password).await.map_err(anyhow::Error::from)?;
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Command::Summarize { file, pipeline: PipelineArg::Full, question, password, json } => {
            let settings = Settings::resolve(&cli.engine, &ServeArgs::default())?;
            let bytes = fs_err::read(&file)?;
            let name = file.to_string_lossy();
            let media = docent::parse::sniff(&name, &bytes)?;
            let parsed = docent::parse::parse(media, &bytes, password.as_deref())?;
            let engine = docent::load_engine(&settings).await?;
            let full = FullContext::new(Arc::clone(&engine), settings.max_answer_tokens);
            let task = if question.is_some() { Task::Question } else { Task::Summary };
            let out = full
                .run(DocInput { text: &parsed.text, pages: &parsed.pages }, &TaskSpec { task, question })
                .await
                .context("analysis failed")?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "pipeline": PipelineKind::Full, "model": out.model, "answer": out.answer,
                        "citations": out.citations, "usage": out.usage, "timings": out.timings,
                    }))?
                );
            } else {
                print_answer(&out);
            }
        }
        Command::Checkpoint { out, shape, tokenizer, seed } => {
            let Some(dims) = Qwen3Shape::by_name(&shape) else {
                anyhow::bail!("unknown shape `{shape}` (known: qwen3-4b, tiny)")
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
        Command::Bench(BenchCommand::Gpu(args)) => docent::bench::gpu::run(args).await?,
    }
    Ok(())
}

fn print_answer(out: &docent::pipeline::PipelineOutput) {
    for s in &out.answer.sentences {
        let marks: Vec<String> = s.citations.iter().map(|c| format!("[{c}]")).collect();
        println!("{} {}", s.text, marks.join(""));
    }
    println!();
    for c in &out.citations {
        let status = if c.valid {
            "verified".to_owned()
        } else {
            format!("NOT VERIFIED ({})", c.reason.as_deref().unwrap_or(""))
        };
        println!("[{}] p.{} bytes {}..{} {}: \"{}\"", c.id, c.page, c.start, c.end, status, c.quote.replace('\n', " "));
    }
    let valid = out.citations.iter().filter(|c| c.valid).count();
    println!(
        "\n{valid}/{} citations verified · {} prompt + {} answer tokens · prefill {} ms, decode {} ms, total {} ms · {}",
        out.citations.len(), out.usage.prompt_tokens, out.usage.completion_tokens,
        out.timings.prefill_ms, out.timings.decode_ms, out.timings.total_ms, out.model
    );
}
