//! The interleaving scenario of `docent bench gpu`: a short analysis is answering when a long
//! document arrives. How much slower does the short one's decoding get while the long prompt
//! prefills beside it, and how much later is the long one's first token, each against running
//! alone; once with interleaved prefill (the engine's setting) and once with a whole prefill per
//! step, as upstream mistral.rs runs it.

use std::time::Duration;

use crate::llm::MistralEngine;

/// When the pieces of one streamed answer arrived, seconds since its request was sent, and their text.
pub type Arrivals = (Vec<f64>, Vec<String>);

#[derive(Debug)]
pub struct Together {
    /// Prompt tokens per prefill step during this run (`usize::MAX`: the whole prompt in one).
    pub step_tokens: usize,
    /// The long prompt alone with this setting.
    pub long_alone: Result<Arrivals, String>,
    pub short: Result<Arrivals, String>,
    pub long: Result<Arrivals, String>,
    /// When the long request was sent, seconds after the short one.
    pub long_sent_s: f64,
}

#[derive(Debug)]
pub struct Interleave {
    pub short_tokens: usize,
    pub long_tokens: usize,
    pub short_answer: usize,
    pub short_alone: Result<Arrivals, String>,
    pub together: Vec<Together>,
}

/// Tokens the long request decodes: its first token is what is timed.
const LONG_ANSWER: usize = 4;

/// Tokens the short answer decodes beside the long prompt: enough to go on decoding through the
/// long prefill even at one token per prefill step.
pub fn overlap_answer(short_answer: usize, long_tokens: usize) -> usize {
    short_answer.max(long_tokens / 1024 + 512)
}

/// Runs the scenario. `step_tokens` is the engine's interleaving setting; the second run sets no
/// limit and the setting is put back afterwards.
pub async fn run(
    engine: &MistralEngine,
    short: Vec<u32>,
    long: Vec<u32>,
    short_answer: usize,
    step_tokens: usize,
) -> Interleave {
    let (short_tokens, long_tokens) = (short.len(), long.len());
    let short_alone = engine.timed_stream(short.clone(), short_answer).await.map_err(|e| format!("{e:#}"));
    // The long prompt is sent once the short one decodes.
    let wait = short_alone.as_ref().ok().and_then(|a| a.0.first()).map_or(1.0, |first| first * 2.0 + 0.5);
    let overlap_answer = overlap_answer(short_answer, long_tokens);
    let mut together = Vec::new();
    for steps in [step_tokens, usize::MAX] {
        mistralrs::set_prefill_step_tokens(steps);
        let long_alone = engine.timed_stream(long.clone(), LONG_ANSWER).await.map_err(|e| format!("{e:#}"));
        let start = std::time::Instant::now();
        let short_run = engine.timed_stream(short.clone(), overlap_answer);
        let long_run = async {
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            let sent = start.elapsed().as_secs_f64();
            (sent, engine.timed_stream(long.clone(), LONG_ANSWER).await)
        };
        let (short_result, (long_sent_s, long_result)) = tokio::join!(short_run, long_run);
        together.push(Together {
            step_tokens: steps,
            long_alone,
            short: short_result.map_err(|e| format!("{e:#}")),
            long: long_result.map_err(|e| format!("{e:#}")),
            long_sent_s,
        });
    }
    mistralrs::set_prefill_step_tokens(step_tokens);
    Interleave { short_tokens, long_tokens, short_answer, short_alone, together }
}

/// The gaps between consecutive pieces of an answer that overlap `[from, to]` (all of them when
/// the window is everything). A stall that starts inside the window and ends after it counts: a
/// prefill in one step holds the other answer's next token until after its own first one.
pub fn gaps_within(arrivals: &[f64], from: f64, to: f64) -> Vec<f64> {
    arrivals
        .windows(2)
        .filter_map(|w| match *w {
            [a, b] if b > from && a < to => Some(b - a),
            _ => None,
        })
        .collect()
}

/// Mean, median and largest of some gaps, in milliseconds.
pub fn gap_stats(gaps: &[f64]) -> Option<(f64, f64, f64)> {
    if gaps.is_empty() {
        return None;
    }
    let mut sorted = gaps.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
    Some((mean * 1e3, sorted.get(sorted.len() / 2)? * 1e3, sorted.last()? * 1e3))
}

impl Together {
    /// Whether the long prompt's first piece, which its prefill alone decides (greedy), came out as
    /// it did alone: a prefill cut into steps must leave the same cache. (Later tokens decode in a
    /// batch of two here, whose arithmetic may differ from one sequence's in the last bits.)
    pub fn same_first_piece(&self) -> Option<bool> {
        let first = |r: &Result<Arrivals, String>| r.as_ref().ok().and_then(|a| a.1.first().cloned());
        first(&self.long).zip(first(&self.long_alone)).map(|(a, b)| a == b)
    }

    /// The long prompt's prefill as the short answer saw it: from its sending to its first piece.
    pub fn window(&self) -> Option<(f64, f64)> {
        let first = *self.long.as_ref().ok()?.0.first()?;
        Some((self.long_sent_s, self.long_sent_s + first))
    }

    /// The short answer's gaps while the long prompt prefilled.
    pub fn short_gaps_during_prefill(&self) -> Vec<f64> {
        match (self.window(), &self.short) {
            (Some((from, to)), Ok((arrivals, _))) => gaps_within(arrivals, from, to),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_count_those_ending_inside_the_window() {
        let arrivals = [0.5, 0.6, 0.7, 2.7, 2.8];
        // A stall from 0.7 to 2.7 overlaps [1, 3]: it is the slowdown the window must show.
        assert_eq!(gaps_within(&arrivals, 1.0, 3.0).len(), 2);
        let (mean, median, max) = gap_stats(&gaps_within(&arrivals, 1.0, 3.0)).unwrap();
        assert!((mean - 1050.0).abs() < 1e-6 && (max - 2000.0).abs() < 1e-6 && median > 1000.0, "{mean} {median}");
        assert!(gap_stats(&gaps_within(&arrivals, 3.0, 4.0)).is_none());
        // It counts too when it ends after the window, as a prefill run in one step makes it.
        assert_eq!(gaps_within(&arrivals, 0.8, 1.5), vec![2.0]);
        let together = Together {
            step_tokens: 4096,
            long_alone: Err("not run".to_owned()),
            short: Ok((arrivals.to_vec(), Vec::new())),
            long: Ok((vec![1.9, 2.0], Vec::new())),
            long_sent_s: 0.8,
        };
        assert_eq!(together.window(), Some((0.8, 2.7)));
        assert_eq!(together.short_gaps_during_prefill().len(), 1);
    }
}
