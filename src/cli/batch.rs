//! `docent batch FILES_OR_DIRS...`: a batch on the local engine (the data dir's durable queue,
//! run by workers in this process) or on a running server (`--server URL`), with a progress
//! bar, results written as JSON Lines.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};

use docent::config::{EngineArgs, ServeArgs, Settings};
use docent::domain::{Batch, BatchOptions, ItemState, PipelineKind, Scope, Task};
use docent::service::{BatchFile, BatchSource, ChunkedModel};

#[derive(clap::Args)]
pub struct BatchArgs {
    /// Files, or directories whose PDF, text and Markdown files are all read (recursively).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Pipelines to run on every document (repeat or separate with commas).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "full")]
    pipeline: Vec<Pipeline>,
    /// Ask this question of every document instead of summarizing it.
    #[arg(long)]
    question: Option<String>,
    /// Model of the chunked pipeline.
    #[arg(long, value_enum, default_value = "baseline")]
    chunked_model: Model,
    /// Where the results go: one JSON line per item.
    #[arg(long, default_value = "results.jsonl")]
    out: PathBuf,
    /// A running docent server to submit to, e.g. http://127.0.0.1:8080; without it, the models
    /// load here and the batch runs on the data dir.
    #[arg(long)]
    server: Option<String>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Pipeline {
    Full,
    Chunked,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Model {
    Baseline,
    Same,
}

const EXTENSIONS: &[&str] = &["pdf", "txt", "text", "md", "markdown"];

/// Exit status when some items failed (every item still ended and is in the results).
pub const SOME_FAILED: i32 = 3;

pub async fn run(engine: &EngineArgs, args: BatchArgs) -> anyhow::Result<i32> {
    let files = collect(&args.paths)?;
    let options = BatchOptions {
        pipelines: args
            .pipeline
            .iter()
            .map(|p| match p {
                Pipeline::Full => PipelineKind::Full,
                Pipeline::Chunked => PipelineKind::Chunked,
            })
            .collect(),
        task: if args.question.is_some() { Task::Question } else { Task::Summary },
        question: args.question.clone(),
        chunked_model: match args.chunked_model {
            Model::Baseline => ChunkedModel::Baseline,
            Model::Same => ChunkedModel::Same,
        },
    };
    eprintln!("{} files, {} items", files.len(), files.len() * options.pipelines.len());
    let batch = match &args.server {
        Some(url) => remote(url.trim_end_matches('/'), &files, &options, &args.out).await?,
        None => local(engine, &args.serve, &files, options, &args.out).await?,
    };
    eprintln!(
        "{}: {} done, {} failed, {} cancelled; results in {}",
        batch.id,
        batch.done,
        batch.failed,
        batch.cancelled,
        args.out.display()
    );
    for item in batch.items.iter().filter(|i| i.state == ItemState::Failed) {
        if let Some(e) = &item.error {
            eprintln!("  {} ({}): {}: {}", item.filename, item.pipeline.as_str(), e.code, e.message);
        }
    }
    Ok(if batch.failed > 0 { SOME_FAILED } else { 0 })
}

/// The files named, and the readable documents under the directories named, in a stable order.
fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)?;
            found.sort();
            out.extend(found);
        } else if path.is_file() {
            out.push(path.clone());
        } else {
            bail!("{} is neither a file nor a directory", path.display());
        }
    }
    if out.is_empty() {
        bail!("no PDF, text or Markdown files found");
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in fs_err::read_dir(dir)? {
        let path = entry?.path();
        let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str())) {
            out.push(path);
        }
    }
    Ok(())
}

fn name_of(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn progress(total: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} items {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// Show where the batch stands; true when every item has ended.
fn show(bar: &ProgressBar, batch: &Batch) -> bool {
    bar.set_position((batch.done + batch.failed + batch.cancelled) as u64);
    let running: Vec<String> = batch
        .items
        .iter()
        .filter(|i| i.state == ItemState::Running)
        .map(|i| format!("{} ({})", i.filename, i.pipeline.as_str()))
        .collect();
    bar.set_message(if running.is_empty() { format!("{} failed", batch.failed) } else { running.join(", ") });
    batch.is_finished()
}

async fn local(
    engine: &EngineArgs,
    serve: &ServeArgs,
    files: &[PathBuf],
    options: BatchOptions,
    out: &Path,
) -> anyhow::Result<Batch> {
    let settings = Settings::resolve(engine, serve)?;
    let docent = Arc::new(docent::build_docent(&settings, docent::load_engines(&settings).await?)?);
    let uploads = files
        .iter()
        .map(|f| Ok(BatchFile { filename: name_of(f), bytes: fs_err::read(f)? }))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (batch, _) = docent.submit_batch(&Scope::Open, BatchSource::Uploads(uploads), options, None).await?;
    docent::jobs::start(Arc::clone(&docent), settings.batch_workers).await?;
    let bar = progress(batch.total);
    let batch = loop {
        let b = docent.batch(&Scope::Open, &batch.id).await?;
        if show(&bar, &b) {
            break b;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    bar.finish();
    let mut file = std::io::BufWriter::new(fs_err::File::create(out)?);
    for item in &batch.items {
        serde_json::to_writer(&mut file, &docent.result_line(item).await)?;
        file.write_all(b"\n")?;
    }
    file.flush()?;
    Ok(batch)
}

async fn remote(url: &str, files: &[PathBuf], options: &BatchOptions, out: &Path) -> anyhow::Result<Batch> {
    // A server with API keys needs one: read from the environment, never from a flag (shell history).
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = std::env::var("DOCENT_API_KEY").ok().filter(|k| !k.is_empty()) {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).context("DOCENT_API_KEY")?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let client = reqwest::Client::builder().default_headers(headers).build()?;
    let mut form = reqwest::multipart::Form::new().text("options", serde_json::to_string(options)?);
    for f in files {
        form = form.part("file", reqwest::multipart::Part::bytes(fs_err::read(f)?).file_name(name_of(f)));
    }
    let resp = client.post(format!("{url}/api/v1/batches")).multipart(form).send().await?;
    if !resp.status().is_success() {
        bail!("{url} refused the batch: {} {}", resp.status(), resp.text().await.unwrap_or_default());
    }
    let batch: Batch = resp.json().await.context("the server's batch")?;
    let bar = progress(batch.total);
    let batch = loop {
        let b: Batch = client.get(format!("{url}/api/v1/batches/{}", batch.id)).send().await?.json().await?;
        if show(&bar, &b) {
            break b;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    bar.finish();
    let mut resp = client.get(format!("{url}/api/v1/batches/{}/results", batch.id)).send().await?;
    let mut file = std::io::BufWriter::new(fs_err::File::create(out)?);
    while let Some(chunk) = resp.chunk().await? {
        file.write_all(&chunk)?;
    }
    file.flush()?;
    Ok(batch)
}
