//! The evaluation runs in a directory, for the Evaluations page: what each ran and its headline
//! figures, read from its `summary.json` (or, while it runs, its `results.jsonl`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult, ErrorCode};

/// The files of a run the server hands out, with their media types.
pub const RUN_FILES: &[(&str, &str)] = &[
    ("report.html", "text/html; charset=utf-8"),
    ("summary.json", "application/json"),
    ("results.jsonl", "application/x-ndjson"),
    ("run.json", "application/json"),
];

#[derive(Debug, Serialize)]
pub struct RunListing {
    pub name: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    pub command: Option<String>,
    pub model: Option<String>,
    /// Answers recorded so far (lines of results.jsonl).
    pub answers: usize,
    /// `suite · pipeline: metric value [low, high] n=…` for each suite's headline metric.
    pub headlines: Vec<String>,
    pub has_report: bool,
}

#[derive(Deserialize)]
struct SummaryFile {
    run: RunFile,
    finished: Option<String>,
    #[serde(default)]
    suites: Vec<SuiteFile>,
}

#[derive(Deserialize)]
struct RunFile {
    started: Option<String>,
    command: Option<String>,
    model: Option<ModelFile>,
}

#[derive(Deserialize)]
struct ModelFile {
    path: String,
}

#[derive(Deserialize)]
struct SuiteFile {
    suite: String,
    pipelines: Vec<PipelineFile>,
}

#[derive(Deserialize)]
struct PipelineFile {
    pipeline: String,
    metrics: Vec<MetricFile>,
}

#[derive(Deserialize)]
struct MetricFile {
    name: String,
    value: ValueFile,
}

#[derive(Deserialize)]
struct ValueFile {
    estimate: f64,
    low: f64,
    high: f64,
    n: usize,
}

/// A run's name is one directory level of plain characters: never a path.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Every run under `dir`, newest name first. A missing directory has no runs.
pub fn list(dir: &Path) -> AppResult<Vec<RunListing>> {
    let Ok(entries) = fs_err::read_dir(dir) else { return Ok(Vec::new()) };
    let mut runs: Vec<RunListing> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| valid_name(name))
        .map(|name| listing(dir, name))
        .collect();
    runs.sort_by(|a, b| b.name.cmp(&a.name));
    Ok(runs)
}

fn listing(dir: &Path, name: String) -> RunListing {
    let run = dir.join(&name);
    let answers = fs_err::read_to_string(run.join("results.jsonl")).map_or(0, |t| t.lines().count());
    let summary: Option<SummaryFile> =
        fs_err::read(run.join("summary.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let started_only: Option<RunFile> =
        fs_err::read(run.join("run.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let headlines = summary
        .as_ref()
        .map(|s| {
            s.suites
                .iter()
                .flat_map(|suite| {
                    suite.pipelines.iter().filter_map(move |p| {
                        p.metrics.first().map(|m| {
                            let v = &m.value;
                            format!(
                                "{} · {}: {} {:.3} [{:.3}, {:.3}] n={}",
                                suite.suite, p.pipeline, m.name, v.estimate, v.low, v.high, v.n
                            )
                        })
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let info = summary.as_ref().map(|s| &s.run).or(started_only.as_ref());
    RunListing {
        started: info.and_then(|r| r.started.clone()),
        finished: summary.as_ref().and_then(|s| s.finished.clone()),
        command: info.and_then(|r| r.command.clone()),
        model: info.and_then(|r| r.model.as_ref().map(|m| m.path.clone())),
        answers,
        headlines,
        has_report: run.join("report.html").is_file(),
        name,
    }
}

/// One of a run's files (`RUN_FILES`) and its media type.
pub fn file(dir: &Path, run: &str, file: &str) -> AppResult<(PathBuf, &'static str)> {
    let not_found = || AppError::new(ErrorCode::EvalNotFound, format!("no evaluation file {run}/{file}"));
    let mime = RUN_FILES.iter().find(|(name, _)| *name == file).map(|(_, mime)| *mime).ok_or_else(not_found)?;
    if !valid_name(run) {
        return Err(not_found());
    }
    let path = dir.join(run).join(file);
    if !path.is_file() {
        return Err(not_found());
    }
    Ok((path, mime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_files_are_served_only_by_plain_names() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join("r1")).unwrap();
        fs_err::write(dir.path().join("r1/report.html"), "<p>x</p>").unwrap();
        fs_err::write(dir.path().join("secret.txt"), "no").unwrap();
        assert!(file(dir.path(), "r1", "report.html").is_ok());
        for (run, name) in [
            ("..", "secret.txt"),
            ("r1", "../secret.txt"),
            ("r1/..", "report.html"),
            (".", "report.html"),
            ("r1", "other.html"),
        ] {
            let err = file(dir.path(), run, name).unwrap_err();
            assert_eq!(err.code, ErrorCode::EvalNotFound, "{run}/{name}");
        }
        let runs = list(dir.path()).unwrap();
        assert_eq!(runs.len(), 1);
        assert!(runs[0].has_report && runs[0].headlines.is_empty());
        assert!(list(&dir.path().join("missing")).unwrap().is_empty());
    }
}
