//! The evaluation's summary (every rate with its 95% interval and sample size, per suite and
//! pipeline) and its HTML report with charts.

use std::collections::BTreeMap;

use serde::Serialize;

use super::charts::{self, Series};
use super::items::{Gold, Suite};
use super::metrics::{mean_interval, wilson, Interval};
use super::run::{EvalPipeline, Outcome, RunInfo};
use super::score::Scores;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub run: RunInfo,
    pub finished: String,
    pub suites: Vec<SuiteSummary>,
}

#[derive(Debug, Serialize)]
pub struct SuiteSummary {
    pub suite: Suite,
    pub pipelines: Vec<PipelineSummary>,
}

#[derive(Debug, Serialize)]
pub struct Metric {
    pub name: &'static str,
    /// What is counted, and over what.
    pub about: &'static str,
    pub value: Interval,
}

#[derive(Debug, Serialize)]
pub struct PipelineSummary {
    pub pipeline: EvalPipeline,
    pub items: usize,
    /// Items without an answer, by error code; they count as wrong in every rate.
    pub errors: BTreeMap<String, usize>,
    pub metrics: Vec<Metric>,
    pub cost: Vec<Metric>,
    /// CUAD: span F1 by category (clause present and located).
    pub by_category: BTreeMap<String, Interval>,
    /// Needle: recall by (nominal tokens, depth).
    pub by_cell: Vec<NeedleCell>,
}

#[derive(Debug, Serialize)]
pub struct NeedleCell {
    pub tokens: usize,
    pub depth: u32,
    pub recall: Interval,
    pub cited: Interval,
    pub prompt_tokens: Option<usize>,
}

fn rate(name: &'static str, about: &'static str, flags: &[bool]) -> Metric {
    Metric { name, about, value: wilson(flags.iter().filter(|f| **f).count(), flags.len()) }
}

/// A mean score: its interval within [0, 1].
fn mean(name: &'static str, about: &'static str, values: &[f64]) -> Metric {
    Metric { name, about, value: mean_interval(values).within(0.0, 1.0) }
}

/// A mean cost (tokens, seconds): its interval not below 0.
fn mean_cost(name: &'static str, about: &'static str, values: &[f64]) -> Metric {
    Metric { name, about, value: mean_interval(values).within(0.0, f64::INFINITY) }
}

/// `finished`: when the last answer was recorded.
pub fn summarize(run: &RunInfo, outcomes: &[Outcome], finished: String) -> Summary {
    let mut suites = Vec::new();
    for suite in [Suite::Cuad, Suite::Needle, Suite::Summary] {
        let mut pipelines = Vec::new();
        for &pipeline in &run.pipelines {
            let mine: Vec<&Outcome> = outcomes.iter().filter(|o| o.suite == suite && o.pipeline == pipeline).collect();
            if !mine.is_empty() {
                pipelines.push(summarize_pipeline(suite, pipeline, &mine));
            }
        }
        if !pipelines.is_empty() {
            suites.push(SuiteSummary { suite, pipelines });
        }
    }
    Summary { run: run.clone(), finished, suites }
}

fn summarize_pipeline(suite: Suite, pipeline: EvalPipeline, mine: &[&Outcome]) -> PipelineSummary {
    let mut errors = BTreeMap::new();
    for o in mine {
        if let Some(e) = &o.error {
            *errors.entry(e.code.clone()).or_insert(0) += 1;
        }
    }
    let answered: Vec<_> = mine.iter().filter_map(|o| o.analysis.as_ref()).collect();
    let citations: Vec<bool> = answered.iter().flat_map(|a| a.citations.iter().map(|c| c.valid)).collect();
    let cost = vec![
        mean_cost(
            "prompt tokens",
            "per answered item (all calls)",
            &answered.iter().map(|a| a.usage.prompt_tokens as f64).collect::<Vec<_>>(),
        ),
        mean_cost(
            "cached prompt tokens",
            "per answered item: prompt tokens whose prefill an earlier answer left in the cache",
            &answered.iter().map(|a| a.usage.cached_tokens.unwrap_or(0) as f64).collect::<Vec<_>>(),
        ),
        mean_cost(
            "completion tokens",
            "per answered item",
            &answered.iter().map(|a| a.usage.completion_tokens as f64).collect::<Vec<_>>(),
        ),
        mean_cost(
            "prefill s",
            "per answered item",
            &answered.iter().map(|a| a.timings.prefill_ms as f64 / 1e3).collect::<Vec<_>>(),
        ),
        mean_cost(
            "decode s",
            "per answered item",
            &answered.iter().map(|a| a.timings.decode_ms as f64 / 1e3).collect::<Vec<_>>(),
        ),
        mean_cost("total s", "per item, errors included", &mine.iter().map(|o| o.seconds).collect::<Vec<_>>()),
    ];
    let mut summary = PipelineSummary {
        pipeline,
        items: mine.len(),
        errors,
        metrics: Vec::new(),
        cost,
        by_category: BTreeMap::new(),
        by_cell: Vec::new(),
    };
    let validity = rate("citation validity", "citations passing every check, over all citations", &citations);
    match suite {
        Suite::Cuad => cuad_metrics(&mut summary, mine, validity),
        Suite::Needle => needle_metrics(&mut summary, mine, validity),
        Suite::Summary => {
            let supported: Vec<bool> = answered
                .iter()
                .flat_map(|a| a.citations.iter().map(|c| c.support >= crate::cite::support::MIN_SUPPORT))
                .collect();
            let coverage: Vec<f64> = mine
                .iter()
                .map(|o| match &o.scores {
                    Some(Scores::Summary { sections, sections_cited, .. }) if *sections > 0 => {
                        *sections_cited as f64 / *sections as f64
                    }
                    _ => 0.0,
                })
                .collect();
            let unrepeated: Vec<bool> = answered.iter().map(|a| super::score::repeated_claims(a) == 0).collect();
            summary.metrics = vec![
                validity,
                rate("support rate", "citations whose span holds ≥25% of the claim's content words", &supported),
                mean("coverage", "share of sections (pages, or tenths) with a valid citation, per document", &coverage),
                rate("no repeated claim", "summaries in which no claim repeats another (≥80% same content words)", &unrepeated),
            ];
        }
    }
    summary
}

fn cuad_metrics(summary: &mut PipelineSummary, mine: &[&Outcome], validity: Metric) {
    let mut correct = Vec::new();
    let mut absent = Vec::new();
    let (mut f1, mut precision, mut recall, mut hit) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut by_category: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for o in mine {
        let Gold::Clause { category, clauses, .. } = &o.gold else { continue };
        let s = match &o.scores {
            Some(Scores::Clause { correct, spans, gold_located, .. }) => Some((*correct, *spans, *gold_located)),
            _ => None,
        };
        correct.push(s.is_some_and(|s| s.0));
        if clauses.is_empty() {
            absent.push(s.is_some_and(|s| s.0));
            continue;
        }
        // A clause CUAD quotes but docent's text does not hold cannot be scored by span.
        if s.is_some_and(|s| !s.2) {
            continue;
        }
        let spans = s.and_then(|s| s.1);
        let f = spans.map_or(0.0, |p| p.f1);
        f1.push(f);
        precision.push(spans.map_or(0.0, |p| p.precision));
        recall.push(spans.map_or(0.0, |p| p.recall));
        hit.push(spans.is_some_and(|p| p.hit));
        by_category.entry(category.clone()).or_default().push(f);
    }
    summary.by_category = by_category.into_iter().map(|(k, v)| (k, mean_interval(&v).within(0.0, 1.0))).collect();
    summary.metrics = vec![
        rate("answer correct", "all items: the clause's presence (and for Governing Law its answer) right", &correct),
        mean("span F1", "items with the clause: character F1 of cited spans against CUAD's clauses", &f1),
        mean("span precision", "items with the clause", &precision),
        mean("span recall", "items with the clause", &recall),
        rate("hit rate", "items with the clause: some cited character is in the clause", &hit),
        rate("no-clause correct", "items without the clause: said so and cited nothing", &absent),
        validity,
    ];
}

/// What one (length, depth) cell of the needle grid saw.
#[derive(Default)]
struct CellTally {
    recalled: Vec<bool>,
    cited: Vec<bool>,
    prompt_tokens: Option<usize>,
}

fn needle_metrics(summary: &mut PipelineSummary, mine: &[&Outcome], validity: Metric) {
    let mut cells: BTreeMap<(usize, u32), CellTally> = BTreeMap::new();
    let (mut recalled, mut cited) = (Vec::new(), Vec::new());
    for o in mine {
        let Gold::Needle { nominal_tokens, depth_percent, .. } = &o.gold else { continue };
        let (r, c) = match &o.scores {
            Some(Scores::Needle { recalled, cited_needle, .. }) => (*recalled, *cited_needle),
            _ => (false, false),
        };
        recalled.push(r);
        cited.push(c);
        let cell = cells.entry((*nominal_tokens, *depth_percent)).or_default();
        cell.recalled.push(r);
        cell.cited.push(c);
        if let Some(a) = &o.analysis {
            cell.prompt_tokens = Some(a.usage.prompt_tokens);
        }
    }
    let rate_of = |flags: &[bool]| wilson(flags.iter().filter(|x| **x).count(), flags.len());
    summary.by_cell = cells
        .into_iter()
        .map(|((tokens, depth), t)| NeedleCell {
            tokens,
            depth,
            recall: rate_of(&t.recalled),
            cited: rate_of(&t.cited),
            prompt_tokens: t.prompt_tokens,
        })
        .collect();
    summary.metrics = vec![
        rate("recall", "the answer states the needle's value", &recalled),
        rate("needle cited", "a citation's span overlaps the needle sentence", &cited),
        validity,
    ];
}

/// The quality figure a suite is plotted by.
fn headline(suite: Suite) -> &'static str {
    match suite {
        Suite::Cuad => "span F1",
        Suite::Needle => "recall",
        Suite::Summary => "citation validity",
    }
}

fn charts(summary: &Summary) -> Vec<String> {
    let color_of = |p: EvalPipeline| summary.run.pipelines.iter().position(|q| *q == p).unwrap_or(0);
    let mut out = Vec::new();
    for s in &summary.suites {
        match s.suite {
            Suite::Needle => {
                let lengths: std::collections::BTreeSet<usize> =
                    s.pipelines.iter().flat_map(|p| p.by_cell.iter().map(|c| c.tokens)).collect();
                for tokens in lengths {
                    let series: Vec<Series> = s
                        .pipelines
                        .iter()
                        .map(|p| Series {
                            label: p.pipeline.as_str().to_owned(),
                            color: color_of(p.pipeline),
                            points: p
                                .by_cell
                                .iter()
                                .filter(|c| c.tokens == tokens)
                                .map(|c| (f64::from(c.depth), c.recall.estimate))
                                .collect(),
                        })
                        .collect();
                    out.push(charts::lines(
                        &format!("Needle recall by depth, ~{tokens} tokens"),
                        "depth (% of the document)",
                        "recall",
                        100.0,
                        &series,
                    ));
                }
            }
            Suite::Cuad => {
                let categories: Vec<String> = s
                    .pipelines
                    .iter()
                    .flat_map(|p| p.by_category.keys().cloned())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let series: Vec<_> = s
                    .pipelines
                    .iter()
                    .map(|p| {
                        let values = categories.iter().map(|c| p.by_category.get(c).map(|i| i.estimate)).collect();
                        (p.pipeline.as_str().to_owned(), color_of(p.pipeline), values)
                    })
                    .collect();
                out.push(charts::grouped_bars(
                    "CUAD: cited-span F1 by category (clause present)",
                    "mean F1",
                    &categories,
                    &series,
                ));
            }
            Suite::Summary => {}
        }
    }
    let mut points = Vec::new();
    for s in &summary.suites {
        for p in &s.pipelines {
            let quality = p.metrics.iter().find(|m| m.name == headline(s.suite)).map(|m| m.value.estimate);
            let seconds = p.cost.iter().find(|m| m.name == "total s").map(|m| m.value.estimate);
            if let (Some(q), Some(t)) = (quality, seconds) {
                points.push((
                    format!("{} {} ({})", s.suite.as_str(), p.pipeline.as_str(), headline(s.suite)),
                    color_of(p.pipeline),
                    t,
                    q,
                ));
            }
        }
    }
    if !points.is_empty() {
        out.push(charts::scatter("Cost against quality", "seconds per item", "quality", &points));
    }
    out
}

const TEMPLATE: &str = include_str!("../../templates/eval_report.html");

pub fn render_html(summary: &Summary) -> anyhow::Result<String> {
    let mut tera = tera::Tera::default();
    tera.add_raw_template("eval_report.html", TEMPLATE)?;
    let mut ctx = tera::Context::new();
    ctx.insert("summary", summary);
    ctx.insert("charts", &charts(summary));
    ctx.insert("suite_names", &summary.suites.iter().map(|s| s.suite.as_str()).collect::<Vec<_>>());
    Ok(tera.render("eval_report.html", &ctx)?)
}
