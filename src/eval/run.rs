//! `docent eval`: every item through every pipeline on a scratch service, one JSON line per
//! answer as it comes, then the summary and the report.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::items::{cuad_items, documents_in, needle_items, summary_items, DocSource, Gold, Item, Suite};
use super::report;
use super::score::{score, Scores};
use crate::config::{EngineArgs, ServeArgs, Settings};
use crate::domain::{Analysis, ChunkedModel, PipelineKind, Scope, Task};
use crate::pipeline::TaskSpec;
use crate::service::Docent;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EvalPipeline {
    /// The whole document in one prompt to the full-context model.
    Full,
    /// BM25 chunks into the short-context baseline model.
    Chunked,
    /// BM25 chunks into the full-context model (same model, retrieval's effect alone).
    ChunkedSame,
}

impl EvalPipeline {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Chunked => "chunked",
            Self::ChunkedSame => "chunked-same",
        }
    }

    fn route(self) -> (PipelineKind, ChunkedModel) {
        match self {
            Self::Full => (PipelineKind::Full, ChunkedModel::Baseline),
            Self::Chunked => (PipelineKind::Chunked, ChunkedModel::Baseline),
            Self::ChunkedSame => (PipelineKind::Chunked, ChunkedModel::Same),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SuiteArg {
    Cuad,
    Needle,
    Summary,
    All,
}

#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    #[arg(long, value_enum, default_value = "all")]
    pub suite: SuiteArg,
    /// Documents: CUAD contracts (`<name>.txt` or `.pdf`), needle haystacks, documents to summarise.
    #[arg(long, default_value = "corpora/eval/cuad")]
    pub docs: PathBuf,
    /// CUAD gold annotations (`<name>.gold.json`); default: --docs.
    #[arg(long)]
    pub gold: Option<PathBuf>,
    /// Where results.jsonl, summary.json and report.html go (must be new or empty); default:
    /// `<data-dir>/evals/<UTC time>`, which the server's Evaluations page lists.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Items per suite, taken in the suite's fixed order (no choosing).
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, value_enum, value_delimiter = ',', default_value = "full,chunked,chunked-same")]
    pub pipelines: Vec<EvalPipeline>,
    /// Nominal haystack lengths of the needle suite, in tokens (about 4 characters each).
    #[arg(long, value_delimiter = ',', default_value = "1024,4096,16384")]
    pub needle_tokens: Vec<usize>,
    /// Needle depths, in percent of the haystack.
    #[arg(long, value_delimiter = ',', default_value = "0,25,50,75,100")]
    pub needle_depths: Vec<u32>,
    /// Seed of the needles.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run nothing: rebuild summary.json and report.html of the run in --out from its run.json and
    /// results.jsonl (an interrupted run, or a report after a change to the summary).
    #[arg(long, requires = "out")]
    pub report_only: bool,
    /// Keep the model's cache of a document across the questions asked of it: each pipeline
    /// answers all of one document's items in a row, so the first answer reads the document cold
    /// and the later ones only their question (as a second question on the same document does
    /// in `docent serve`). Cheaper long runs; the report counts the cached prompt tokens, and an
    /// answer's cost is then no longer its own cold cost.
    #[arg(long)]
    pub keep_document_cache: bool,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// What was run, for the report: enough to run it again.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RunInfo {
    pub command: String,
    pub commit: String,
    pub started: String,
    pub model: ModelInfo,
    pub baseline: Option<ModelInfo>,
    pub max_answer_tokens: usize,
    pub baseline_context: usize,
    pub seed: u64,
    pub limit: Option<usize>,
    pub pipelines: Vec<EvalPipeline>,
    pub decoding: String,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ModelInfo {
    pub path: String,
    /// sha256 of the file, or of each file of a checkpoint directory.
    pub sha256: Vec<(String, String)>,
}

/// One answer's record: results.jsonl has one per item and pipeline.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Outcome {
    pub suite: Suite,
    pub item: String,
    pub pipeline: EvalPipeline,
    pub document: String,
    pub question: Option<String>,
    pub gold: Gold,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<OutcomeError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scores: Option<Scores>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct OutcomeError {
    pub code: String,
    pub message: String,
}

pub fn default_out(serve: &ServeArgs, engine: &EngineArgs) -> anyhow::Result<PathBuf> {
    let settings = Settings::resolve(engine, serve)?;
    Ok(settings.data_dir.join("evals").join(chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string()))
}

/// The items of the chosen suites, each suite cut to `limit`.
fn plan(args: &EvalArgs, gold: &Path) -> anyhow::Result<Vec<Item>> {
    let wanted = |s: SuiteArg| args.suite == s || args.suite == SuiteArg::All;
    let limit = |mut v: Vec<Item>| {
        v.truncate(args.limit.unwrap_or(usize::MAX));
        v
    };
    let mut items = Vec::new();
    if wanted(SuiteArg::Cuad) {
        items.extend(limit(cuad_items(&args.docs, gold)?));
    }
    if wanted(SuiteArg::Needle) {
        let mut haystacks = Vec::new();
        for path in documents_in(&args.docs)? {
            let bytes = fs_err::read(&path)?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let media =
                crate::parse::sniff(&name, &bytes).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message))?;
            let parsed = crate::parse::parse(media, &bytes, None)
                .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message))?;
            haystacks.push((name, parsed.text));
        }
        // Longest first: the long-context curve needs haystacks that reach the longest length.
        haystacks.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
        items.extend(limit(needle_items(&haystacks, &args.needle_tokens, &args.needle_depths, args.seed)));
    }
    if wanted(SuiteArg::Summary) {
        items.extend(limit(summary_items(&args.docs)?));
    }
    Ok(items)
}

pub async fn run(engine: &EngineArgs, args: EvalArgs) -> anyhow::Result<PathBuf> {
    let gold = args.gold.clone().unwrap_or_else(|| args.docs.clone());
    let out = match &args.out {
        Some(out) => out.clone(),
        None => default_out(&args.serve, engine)?,
    };
    if args.report_only {
        rebuild_report(&out)?;
        return Ok(out);
    }
    if out.exists() && fs_err::read_dir(&out)?.next().is_some() {
        anyhow::bail!("{} is not empty; give a new --out", out.display());
    }
    let items = plan(&args, &gold)?;
    if items.is_empty() {
        anyhow::bail!("no items: check --docs {} and --gold {}", args.docs.display(), gold.display());
    }
    fs_err::create_dir_all(&out)?;

    let scratch = tempfile::tempdir()?;
    let serve = ServeArgs { data_dir: Some(scratch.path().to_owned()), ..args.serve.clone() };
    let mut settings = Settings::resolve(engine, &serve)?;
    // Every answer is computed cold: with the prefix cache on, a pipeline asked after another on
    // the same document would reuse that one's prefill (same system prompt and segments), and its
    // cost would not compare.
    settings.engine.prefix_cache = args.keep_document_cache;
    if let Some(baseline) = &mut settings.baseline {
        baseline.prefix_cache = args.keep_document_cache;
    }
    let info = run_info(&settings, &args)?;
    fs_err::write(out.join("run.json"), serde_json::to_vec_pretty(&info)?)?;
    let docent = crate::build_docent(&settings, crate::load_engines(&settings).await?)?;

    let total = (items.len() * args.pipelines.len()) as u64;
    let bar = indicatif::ProgressBar::new(total).with_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut lines = std::io::BufWriter::new(fs_err::File::create(out.join("results.jsonl"))?);
    let mut outcomes = Vec::new();
    // Items on the same file share one stored document; a file docent cannot read is an error
    // line for each of its items, with the ingestion's code, and the run goes on.
    let mut stored: HashMap<String, Result<String, OutcomeError>> = HashMap::new();
    for (item, pipeline) in order(&items, &args.pipelines, args.keep_document_cache) {
        let key = source_key(&item.doc);
        if !stored.contains_key(&key) {
            stored.insert(key.clone(), ingest(&docent, &item.doc).await);
        }
        let doc = match stored.get(&key) {
            Some(Ok(id)) => Ok((id.clone(), docent.text(&Scope::Open, id).await.map_err(anyhow::Error::from)?)),
            Some(Err(e)) => Err(e.clone()),
            None => continue,
        };
        bar.set_message(format!("{} · {}", item.id, pipeline.as_str()));
        let outcome = match &doc {
            Ok((doc_id, text)) => answer(&docent, item, doc_id, text, pipeline).await,
            Err(e) => unanswered(item, pipeline, e.clone()),
        };
        serde_json::to_writer(&mut lines, &outcome)?;
        lines.write_all(b"\n")?;
        lines.flush()?;
        outcomes.push(outcome);
        bar.inc(1);
    }
    bar.finish_with_message("done");
    write_report(&out, &info, &outcomes, chrono::Utc::now().to_rfc3339())?;
    Ok(out)
}

/// The (item, pipeline) pairs in the order they run: item by item, every pipeline on each; or,
/// keeping a document's cache, document by document, each pipeline on all of its items in a row.
fn order<'a>(items: &'a [Item], pipelines: &[EvalPipeline], by_document: bool) -> Vec<(&'a Item, EvalPipeline)> {
    if !by_document {
        return items.iter().flat_map(|item| pipelines.iter().map(move |p| (item, *p))).collect();
    }
    let mut documents: Vec<String> = Vec::new();
    for item in items {
        let key = source_key(&item.doc);
        if !documents.contains(&key) {
            documents.push(key);
        }
    }
    let mut out = Vec::new();
    for document in &documents {
        for &pipeline in pipelines {
            out.extend(items.iter().filter(|i| source_key(&i.doc) == *document).map(|i| (i, pipeline)));
        }
    }
    out
}

fn write_report(out: &Path, info: &RunInfo, outcomes: &[Outcome], finished: String) -> anyhow::Result<()> {
    let summary = report::summarize(info, outcomes, finished);
    fs_err::write(out.join("summary.json"), serde_json::to_vec_pretty(&summary)?)?;
    fs_err::write(out.join("report.html"), report::render_html(&summary)?)?;
    Ok(())
}

/// summary.json and report.html again from what a run recorded.
fn rebuild_report(out: &Path) -> anyhow::Result<()> {
    let info: RunInfo = serde_json::from_slice(&fs_err::read(out.join("run.json"))?)
        .with_context(|| format!("reading {}", out.join("run.json").display()))?;
    let results = out.join("results.jsonl");
    let mut outcomes = Vec::new();
    for (i, line) in fs_err::read_to_string(&results)?.lines().enumerate() {
        outcomes.push(serde_json::from_str::<Outcome>(line).with_context(|| format!("results.jsonl line {}", i + 1))?);
    }
    // The run ended when its last answer was written, not now.
    let finished: chrono::DateTime<chrono::Utc> = fs_err::metadata(&results)?.modified()?.into();
    write_report(out, &info, &outcomes, finished.to_rfc3339())
}

fn source_key(doc: &DocSource) -> String {
    match doc {
        DocSource::File { path } => format!("file:{}", path.display()),
        DocSource::Text { name, .. } => format!("text:{name}"),
    }
}

async fn ingest(docent: &Docent, doc: &DocSource) -> Result<String, OutcomeError> {
    let bytes = match doc {
        DocSource::File { path } => fs_err::read(path)
            .map_err(|e| OutcomeError { code: "unreadable_file".to_owned(), message: e.to_string() })?,
        DocSource::Text { text, .. } => text.clone().into_bytes(),
    };
    match docent.ingest(&Scope::Open, &doc.name(), bytes, None).await {
        Ok(d) => Ok(d.id),
        Err(e) => Err(OutcomeError { code: e.code.as_str().to_owned(), message: e.message }),
    }
}

/// The record of an item that got no answer (its document could not be read).
fn unanswered(item: &Item, pipeline: EvalPipeline, error: OutcomeError) -> Outcome {
    Outcome::of(item, pipeline, 0.0, Err(error))
}

impl Outcome {
    fn of(item: &Item, pipeline: EvalPipeline, seconds: f64, result: Result<(Analysis, Scores), OutcomeError>) -> Self {
        let (error, scored) = match result {
            Ok(scored) => (None, Some(scored)),
            Err(e) => (Some(e), None),
        };
        let (analysis, scores) = scored.map_or((None, None), |(a, s)| (Some(a), Some(s)));
        Self {
            suite: item.suite,
            item: item.id.clone(),
            pipeline,
            document: item.doc.name(),
            question: item.question.clone(),
            gold: item.gold.clone(),
            seconds,
            error,
            scores,
            analysis,
        }
    }
}

async fn answer(
    docent: &Docent,
    item: &Item,
    doc_id: &str,
    text: &crate::service::DocText,
    pipeline: EvalPipeline,
) -> Outcome {
    let (kind, model) = pipeline.route();
    let task = if item.question.is_some() { Task::Question } else { Task::Summary };
    let started = Instant::now();
    let result =
        docent.analyze(&Scope::Open, doc_id, kind, TaskSpec { task, question: item.question.clone() }, model).await;
    let seconds = started.elapsed().as_secs_f64();
    let result = match result {
        Ok(a) => {
            let scores = score(&item.gold, &a, &text.text, &text.pages);
            Ok((a, scores))
        }
        Err(e) => Err(OutcomeError { code: e.code.as_str().to_owned(), message: e.message }),
    };
    Outcome::of(item, pipeline, seconds, result)
}

fn run_info(settings: &Settings, args: &EvalArgs) -> anyhow::Result<RunInfo> {
    let model = match &settings.remote {
        Some(remote) => ModelInfo { path: format!("{} at {}", remote.model, remote.base_url), sha256: Vec::new() },
        None => model_info(&settings.engine.model)?,
    };
    let baseline = settings.baseline.as_ref().map(|b| model_info(&b.model)).transpose()?;
    Ok(RunInfo {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        commit: commit(),
        started: chrono::Utc::now().to_rfc3339(),
        model,
        baseline,
        max_answer_tokens: settings.max_answer_tokens,
        baseline_context: settings.baseline_context,
        seed: args.seed,
        limit: args.limit,
        pipelines: args.pipelines.clone(),
        decoding: if args.keep_document_cache {
            "greedy, answers constrained to cite segments, document cache kept across the questions of \
             one document (each pipeline's first answer on a document cold, the later ones reuse its prefill)"
        } else {
            "greedy, answers constrained to cite segments, prefix cache off (every answer computed cold)"
        }
        .to_owned(),
    })
}

fn model_info(path: &Path) -> anyhow::Result<ModelInfo> {
    let mut files = if path.is_dir() {
        fs_err::read_dir(path)?.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect()
    } else {
        vec![path.to_owned()]
    };
    files.sort();
    let mut sha256 = Vec::new();
    for file in files {
        let mut hasher = Sha256::new();
        std::io::copy(&mut fs_err::File::open(&file)?, &mut hasher)?;
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        sha256.push((name, hex::encode(hasher.finalize())));
    }
    Ok(ModelInfo { path: path.display().to_string(), sha256 })
}

/// The source commit, marked `-dirty` when the work tree has changes; `unknown` outside git.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(head) if git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty()) => {
            format!("{head}-dirty")
        }
        Some(head) => head,
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(doc: &str, n: usize) -> Item {
        Item {
            suite: Suite::Cuad,
            id: format!("{doc}/{n}"),
            doc: DocSource::File { path: PathBuf::from(doc) },
            question: Some("q".into()),
            gold: Gold::Summary,
        }
    }

    #[test]
    fn keeping_the_document_cache_runs_each_pipeline_on_one_documents_items_in_a_row() {
        let items = [item("a", 1), item("b", 1), item("a", 2), item("b", 2)];
        let pipelines = [EvalPipeline::Full, EvalPipeline::ChunkedSame];
        let ids = |by_document| {
            order(&items, &pipelines, by_document)
                .into_iter()
                .map(|(i, p)| format!("{} {}", i.id, p.as_str()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(false),
            ["a/1 full", "a/1 chunked-same", "b/1 full", "b/1 chunked-same", "a/2 full", "a/2 chunked-same", "b/2 full", "b/2 chunked-same"]
        );
        assert_eq!(
            ids(true),
            ["a/1 full", "a/2 full", "a/1 chunked-same", "a/2 chunked-same", "b/1 full", "b/2 full", "b/1 chunked-same", "b/2 chunked-same"]
        );
    }
}
