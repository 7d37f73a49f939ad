//! The throughput scenario of `docent bench gpu`: a folder of contracts arriving at once. Many
//! prompts of mixed lengths, each with a fixed answer length, all submitted together to the one
//! engine (continuous batching under the KV-cache admission of `MistralEngine`), against the same
//! engine taking them one after another and the peer doing the same.

use std::time::Instant;

use crate::llm::{MistralEngine, TimedCompletion};

/// Shortest and longest prompt of the scenario, and its median (a folder of contracts: most
/// around 16K tokens, a few short letters, a few long agreements with schedules).
pub const MIN_TOKENS: usize = 4_096;
pub const MAX_TOKENS: usize = 65_536;
pub const MEDIAN_TOKENS: usize = 16_384;
/// Spread of the log-normal lengths: the 2.5% and 97.5% quantiles fall near 4K and 64K.
const LOG_SIGMA: f64 = 0.7;

/// What one way of running the prompts measured.
#[derive(Debug, Default, Clone)]
pub struct ThroughputRun {
    /// Prompt tokens of each prompt run, in the order given.
    pub tokens: Vec<usize>,
    /// From submission to the answer, seconds, for each completed prompt (queueing included).
    pub latencies_s: Vec<f64>,
    pub failures: Vec<String>,
    /// For each completed prompt, the engine's own split of its time: prompt steps (prefill and
    /// the first token) and decode steps, seconds. Alone, the two add up to its latency; in a
    /// batch each step is counted for every sequence in it.
    pub prefill_s: Vec<f64>,
    pub decode_s: Vec<f64>,
    /// For each completed prompt that reported its prefill, when the last chunk was read,
    /// seconds since the run started: the largest says when the batch had read every prompt.
    pub prompt_read_s: Vec<f64>,
    /// Wall clock of the whole run (all prompts submitted at once, or one after another).
    pub wall_s: f64,
    pub peak_used_gib: Option<f64>,
}

impl ThroughputRun {
    /// Documents finished per minute of wall clock.
    pub fn per_minute(&self) -> Option<f64> {
        (self.wall_s > 0.0 && !self.latencies_s.is_empty()).then(|| self.latencies_s.len() as f64 * 60.0 / self.wall_s)
    }

    /// Prompt tokens a second over the prompt steps of prompts run alone (their summed prefill).
    pub fn prefill_tokens_per_s(&self) -> Option<f64> {
        let secs: f64 = self.prefill_s.iter().sum();
        (secs > 0.0 && self.failures.is_empty()).then(|| self.tokens.iter().sum::<usize>() as f64 / secs)
    }

    /// When every prompt of a batch had been read, seconds since the run started.
    pub fn all_prompts_read_s(&self) -> Option<f64> {
        self.prompt_read_s.iter().copied().reduce(f64::max)
    }

    pub fn percentile(&self, p: f64) -> Option<f64> {
        let mut sorted = self.latencies_s.clone();
        sorted.sort_by(f64::total_cmp);
        let last = sorted.len().checked_sub(1)?;
        let rank = ((p / 100.0) * last as f64).round() as usize;
        sorted.get(rank.min(last)).copied()
    }
}

/// The scenario's prompt lengths: `n` log-normal quantiles around the median, clipped to
/// [MIN_TOKENS, MAX_TOKENS], in a fixed shuffled order (long and short prompts interleaved, as
/// files of a folder would arrive).
pub fn lengths(n: usize) -> Vec<usize> {
    let mut out: Vec<usize> = (0..n)
        .map(|i| {
            let p = (i as f64 + 0.5) / n as f64;
            let len = (MEDIAN_TOKENS as f64).ln() + LOG_SIGMA * normal_quantile(p);
            (len.exp().round() as usize).clamp(MIN_TOKENS, MAX_TOKENS)
        })
        .collect();
    // A fixed permutation: a stride coprime with n walks every index once.
    let stride = (1..=n).rev().find(|s| gcd(*s, n) == 1 && *s <= n * 5 / 8).unwrap_or(1);
    let sorted = out.clone();
    for (k, slot) in out.iter_mut().enumerate() {
        if let Some(&len) = sorted.get(k * stride % n.max(1)) {
            *slot = len;
        }
    }
    out
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The standard normal quantile (Acklam's rational approximation, relative error below 1.2e-9).
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -39.696_830_286_653_76,
        220.946_098_424_520_5,
        -275.928_510_446_968_7,
        138.357_751_867_269,
        -30.664_798_066_147_16,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -54.476_098_798_224_06,
        161.585_836_858_040_9,
        -155.698_979_859_886_6,
        66.801_311_887_719_72,
        -13.280_681_552_885_72,
    ];
    const C: [f64; 6] = [
        -0.007_784_894_002_430_293,
        -0.322_396_458_041_136_5,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [0.007_784_695_709_041_462, 0.322_467_129_070_039_8, 2.445_134_137_142_996, 3.754_408_661_907_416];
    let low = 0.024_25;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < low {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - low {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Every `k`-th prompt by length (from the middle of each stratum of `k`): the sample the
/// one-at-a-time runs take, whose mean length follows the whole set's.
pub fn sample(lengths: &[usize], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths.get(i).copied().unwrap_or(0));
    let k = k.max(1);
    order.into_iter().skip(k / 2).step_by(k).collect()
}

/// All prompts submitted at once; each waits in the engine for its KV blocks.
pub async fn all_at_once(engine: &MistralEngine, prompts: &[Vec<u32>], answer: usize) -> ThroughputRun {
    let start = Instant::now();
    let runs = prompts.iter().map(|p| engine.timed_completion(p.clone(), answer));
    let results = futures_util::future::join_all(runs).await;
    let results = results.into_iter().map(|r| r.map(|done| (0.0, done))).collect();
    collect(prompts, results, start.elapsed().as_secs_f64())
}

/// The same prompts one after another.
pub async fn one_at_a_time(engine: &MistralEngine, prompts: &[Vec<u32>], answer: usize) -> ThroughputRun {
    let start = Instant::now();
    let mut results = Vec::new();
    for p in prompts {
        let sent = start.elapsed().as_secs_f64();
        results.push(engine.timed_completion(p.clone(), answer).await.map(|done| (sent, done)));
    }
    collect(prompts, results, start.elapsed().as_secs_f64())
}

/// Each result with the time its request was sent, seconds since the run started.
fn collect(prompts: &[Vec<u32>], results: Vec<anyhow::Result<(f64, TimedCompletion)>>, wall_s: f64) -> ThroughputRun {
    let mut run = ThroughputRun { tokens: prompts.iter().map(Vec::len).collect(), wall_s, ..ThroughputRun::default() };
    for r in results {
        match r {
            Ok((sent, done)) => {
                run.latencies_s.push(done.wall_s);
                run.prefill_s.push(done.prefill_s);
                run.decode_s.push(done.decode_s);
                run.prompt_read_s.extend(done.last_report_s.map(|s| sent + s));
            }
            Err(e) => run.failures.push(format!("{e:#}")),
        }
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_span_the_range_around_the_median_in_a_mixed_order() {
        let l = lengths(64);
        assert_eq!(l.len(), 64);
        let mut sorted = l.clone();
        sorted.sort_unstable();
        let median = (sorted[31] + sorted[32]) / 2;
        assert!((15_000..18_000).contains(&median), "median {median}");
        assert!(sorted[0] >= MIN_TOKENS && sorted[0] < 6_000, "shortest {}", sorted[0]);
        assert!(sorted[63] <= MAX_TOKENS && sorted[63] > 45_000, "longest {}", sorted[63]);
        // Every quantile once: the order is a permutation of the sorted lengths, not sorted.
        let mut again = lengths(64);
        again.sort_unstable();
        assert_eq!(again, sorted);
        assert_ne!(l, sorted);
        assert_eq!(l, lengths(64));
    }

    #[test]
    fn a_sample_takes_one_prompt_from_each_stratum() {
        let l = lengths(64);
        let s = sample(&l, 8);
        assert_eq!(s.len(), 8);
        let mean = |ix: &[usize]| ix.iter().map(|&i| l[i] as f64).sum::<f64>() / ix.len() as f64;
        let all: Vec<usize> = (0..64).collect();
        let ratio = mean(&s) / mean(&all);
        assert!((0.8..1.2).contains(&ratio), "sample mean / mean = {ratio}");
        assert_eq!(sample(&l, 1).len(), 64);
    }

    #[test]
    fn percentiles_and_rate_of_a_run() {
        let run = ThroughputRun { latencies_s: vec![4.0, 1.0, 3.0, 2.0], wall_s: 30.0, ..ThroughputRun::default() };
        assert_eq!(run.percentile(50.0), Some(3.0));
        assert_eq!(run.percentile(95.0), Some(4.0));
        assert_eq!(run.per_minute(), Some(8.0));
        assert_eq!(ThroughputRun::default().per_minute(), None);
    }

    #[test]
    fn prefill_rate_and_the_time_every_prompt_was_read() {
        let run = ThroughputRun {
            tokens: vec![3_000, 1_000],
            prefill_s: vec![0.5, 0.5],
            decode_s: vec![2.0, 2.0],
            prompt_read_s: vec![0.6, 3.1],
            ..ThroughputRun::default()
        };
        assert_eq!(run.prefill_tokens_per_s(), Some(4_000.0));
        assert_eq!(run.all_prompts_read_s(), Some(3.1));
        // A failed prompt's tokens were never read: no rate rather than a wrong one.
        let failed = ThroughputRun { failures: vec!["x".into()], ..run };
        assert_eq!(failed.prefill_tokens_per_s(), None);
        assert_eq!(ThroughputRun::default().all_prompts_read_s(), None);
    }
}
