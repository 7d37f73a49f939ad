//! Prometheus metrics of one service: a registry the service owns (no global recorder), counters
//! and histograms updated where things happen, and gauges read from the store at scrape time.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Seconds a prefill or a decode may take: from a cached short prompt to a 256K-token read.
const SECONDS_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// Batch item states, each always exported (0 when none), so a dashboard sees every series.
const ITEM_STATES: [&str; 5] = ["queued", "running", "done", "failed", "cancelled"];

/// A loaded model, for `docent_engine_info`.
pub struct EngineInfo {
    /// `full` or `baseline`.
    pub slot: &'static str,
    pub model: String,
    pub context: usize,
}

/// What the scrape reads from elsewhere: batch items by state, analyses admitted now.
pub struct Snapshot {
    pub batch_items: Vec<(String, i64)>,
    pub admitted: usize,
}

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    analyses: IntCounterVec,
    prompt_tokens: IntCounterVec,
    completion_tokens: IntCounterVec,
    prefill: HistogramVec,
    decode: HistogramVec,
    parses: IntCounterVec,
    running: IntGauge,
    admitted: IntGauge,
    batch_items: IntGaugeVec,
}

/// Counts an analysis as running until dropped.
pub struct Running(IntGauge);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// `admitted_limit` is `--max-queued`; `engines` are the loaded models.
    pub fn new(engines: &[EngineInfo], admitted_limit: usize) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let histogram = |name: &str, help: &str| -> prometheus::Result<HistogramVec> {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(SECONDS_BUCKETS.to_vec()), &["pipeline"])?;
            registry.register(Box::new(h.clone()))?;
            Ok(h)
        };
        let gauge = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let metrics = Self {
            requests: counter(
                "docent_http_requests_total",
                "HTTP requests answered, by route pattern, method and status.",
                &["route", "method", "status"],
            )?,
            analyses: counter(
                "docent_analyses_total",
                "Pipeline runs (API analyses, comparison sides, batch items) by pipeline and outcome: ok or the error code.",
                &["pipeline", "outcome"],
            )?,
            prompt_tokens: counter(
                "docent_prompt_tokens_total",
                "Prompt tokens of successful analyses.",
                &["pipeline"],
            )?,
            completion_tokens: counter(
                "docent_completion_tokens_total",
                "Completion tokens of successful analyses.",
                &["pipeline"],
            )?,
            prefill: histogram("docent_prefill_seconds", "Seconds the model took to read the prompt, per analysis.")?,
            decode: histogram("docent_decode_seconds", "Seconds the model took to write the answer, per analysis.")?,
            parses: counter("docent_parses_total", "Uploads parsed, by outcome: ok or the error code.", &["outcome"])?,
            running: gauge("docent_analyses_running", "Analyses in a pipeline now (API and batch items).")?,
            admitted: gauge(
                "docent_analyses_admitted",
                "API analyses and comparisons admitted now, running or waiting for the engine (the queue --max-queued bounds).",
            )?,
            batch_items: {
                let g = IntGaugeVec::new(Opts::new("docent_batch_items", "Batch items by state."), &["state"])?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            registry: registry.clone(),
        };
        let limit = gauge("docent_analyses_admitted_limit", "Most analyses admitted at once (--max-queued).")?;
        limit.set(i64::try_from(admitted_limit).unwrap_or(i64::MAX));
        let info = IntGaugeVec::new(
            Opts::new("docent_engine_info", "The loaded models: slot (full or baseline), name and context in tokens."),
            &["slot", "model", "context"],
        )?;
        metrics.registry.register(Box::new(info.clone()))?;
        for e in engines {
            info.with_label_values(&[e.slot, e.model.as_str(), e.context.to_string().as_str()]).set(1);
        }
        Ok(metrics)
    }

    /// One answered request; `route` is its pattern (`/api/v1/documents/{id}`), never its path,
    /// so that ids do not make a series each.
    pub fn request(&self, route: &str, method: &str, status: u16) {
        self.requests.with_label_values(&[route, method, status.to_string().as_str()]).inc();
    }

    /// An analysis entering a pipeline; it counts as running until the guard drops.
    pub fn running(&self) -> Running {
        self.running.inc();
        Running(self.running.clone())
    }

    /// A pipeline run's end: its outcome, and for a success its tokens and times.
    pub fn analysis(&self, pipeline: &str, outcome: Result<(&crate::domain::Usage, &crate::domain::Timings), &str>) {
        match outcome {
            Ok((usage, timings)) => {
                self.analyses.with_label_values(&[pipeline, "ok"]).inc();
                self.prompt_tokens.with_label_values(&[pipeline]).inc_by(u64::try_from(usage.prompt_tokens).unwrap_or(u64::MAX));
                self.completion_tokens.with_label_values(&[pipeline]).inc_by(u64::try_from(usage.completion_tokens).unwrap_or(u64::MAX));
                self.prefill.with_label_values(&[pipeline]).observe(seconds(timings.prefill_ms));
                self.decode.with_label_values(&[pipeline]).observe(seconds(timings.decode_ms));
            }
            Err(code) => self.analyses.with_label_values(&[pipeline, code]).inc(),
        }
    }

    /// An upload parsed: `ok` or the error code.
    pub fn parse(&self, outcome: &str) {
        self.parses.with_label_values(&[outcome]).inc();
    }

    /// Everything, in Prometheus' text format (version 0.0.4), with the gauges set from `now`.
    pub fn render(&self, now: &Snapshot) -> prometheus::Result<String> {
        for state in ITEM_STATES {
            let n = now.batch_items.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n);
            self.batch_items.with_label_values(&[state]).set(n);
        }
        self.admitted.set(i64::try_from(now.admitted).unwrap_or(i64::MAX));
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// The content type of `render`'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[allow(clippy::cast_precision_loss)]
fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Timings, Usage};

    #[test]
    fn renders_counts_histograms_and_every_item_state() {
        let engines = [EngineInfo { slot: "full", model: "m \"q\"".into(), context: 4096 }];
        let m = Metrics::new(&engines, 4).unwrap();
        m.request("/api/v1/documents/{id}", "GET", 404);
        let usage = Usage { prompt_tokens: 10, cached_tokens: None, completion_tokens: 5 };
        let timings = Timings { prefill_ms: 300, decode_ms: 1200, total_ms: 1500 };
        m.analysis("full", Ok((&usage, &timings)));
        m.analysis("full", Err("document_too_long"));
        let running = m.running();
        let text = m.render(&Snapshot { batch_items: vec![("done".into(), 3)], admitted: 1 }).unwrap();
        drop(running);
        for line in [
            "docent_http_requests_total{method=\"GET\",route=\"/api/v1/documents/{id}\",status=\"404\"} 1",
            "docent_analyses_total{outcome=\"ok\",pipeline=\"full\"} 1",
            "docent_analyses_total{outcome=\"document_too_long\",pipeline=\"full\"} 1",
            "docent_prompt_tokens_total{pipeline=\"full\"} 10",
            "docent_prefill_seconds_bucket{pipeline=\"full\",le=\"0.5\"} 1",
            "docent_decode_seconds_bucket{pipeline=\"full\",le=\"1\"} 0",
            "docent_decode_seconds_sum{pipeline=\"full\"} 1.2",
            "docent_batch_items{state=\"done\"} 3",
            "docent_batch_items{state=\"queued\"} 0",
            "docent_analyses_running 1",
            "docent_analyses_admitted 1",
            "docent_analyses_admitted_limit 4",
            "docent_engine_info{context=\"4096\",model=\"m \\\"q\\\"\",slot=\"full\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
