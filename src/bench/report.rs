//! The markdown report of `docent bench gpu`: every number measured in the run it prints, each
//! speed also given as a ratio to the peer and to the FLOP floor.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::gpu::{Concurrency, GpuBenchArgs, OurRun, PeerResults};
use super::interleave::{gap_stats, gaps_within, Interleave};
use super::throughput::ThroughputRun;
use crate::models::checkpoint::Qwen3Shape;

pub(super) struct Report<'a> {
    pub args: &'a GpuBenchArgs,
    pub tensor_parallel: usize,
    /// An earlier run's figures, to compare with (`--versus`).
    pub versus: Option<Summary>,
    pub shape: Qwen3Shape,
    pub kv_cache_gib: f64,
    pub gpu_total_gib: Option<f64>,
    pub load_s: f64,
    pub peer: PeerResults,
    pub ours: Vec<OurRun>,
    pub concurrency: Option<Concurrency>,
    /// The throughput scenario: all prompts at once, then the sample one at a time.
    pub throughput: Option<(ThroughputRun, ThroughputRun)>,
    /// The interleaving scenario and the GPU's peak during it.
    pub interleave: Option<(Interleave, Option<f64>)>,
}

/// The figures of a run, as `--json` writes them and `--versus` reads them.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Summary {
    pub tensor_parallel: usize,
    pub runs: Vec<SummaryRun>,
    pub concurrency: Option<SummaryConcurrency>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SummaryRun {
    pub tokens: usize,
    pub ttft_s: Option<f64>,
    pub decode_tok_s: Option<f64>,
    pub peak_gib: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SummaryConcurrency {
    pub sequences: usize,
    pub tokens: usize,
    pub completed: usize,
}

pub(super) fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

fn num(x: Option<f64>, digits: usize) -> String {
    x.filter(|v| v.is_finite()).map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

/// Tokens decoded per second after the first one (which the prompt step produces).
pub(super) fn decode_rate(r: &crate::llm::TimedCompletion) -> Option<f64> {
    (r.completion_tokens > 1 && r.decode_s > 0.0).then(|| (r.completion_tokens - 1) as f64 / r.decode_s)
}

impl Report<'_> {
    /// The command line that repeats this run: every flag that shapes the figures.
    fn command(&self) -> String {
        let a = self.args;
        let mut command = format!(
            "docent bench gpu --tensor-parallel {} --model {} --lengths {} --decode-tokens {} --concurrent {}",
            self.tensor_parallel,
            a.model.display(),
            a.lengths.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            a.decode_tokens,
            a.concurrent
        );
        if let Some(n) = a.overlap_tokens {
            let _ = write!(command, " --overlap-tokens {n}");
        }
        if let Some(n) = a.kv_cache_tokens {
            let _ = write!(command, " --kv-cache-tokens {n}");
        }
        if a.kv_cache_dtype == crate::llm::KvCacheDtype::F8e4m3 {
            command.push_str(" --kv-cache-dtype f8e4m3");
        }
        let _ = write!(
            command,
            " --throughput {} --throughput-answer {} --throughput-sample {}",
            a.throughput, a.throughput_answer, a.throughput_sample
        );
        if let Some(n) = a.prefill_chunk_tokens {
            let _ = write!(command, " --prefill-chunk-tokens {n}");
        }
        if let Some(n) = a.prefill_step_tokens {
            let _ = write!(command, " --prefill-step-tokens {n}");
        }
        let _ = write!(command, " --interleave-short {} --interleave-answer {}", a.interleave_short, a.interleave_answer);
        if a.peer_python == "none" {
            command.push_str(" --peer-python none");
        }
        command
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let s = &self.shape;
        let _ = writeln!(out, "# docent bench gpu\n");
        let _ = writeln!(out, "Command: `{}`\n", self.command());
        let _ = writeln!(out, "- GPU: {}", self.peer.gpu.as_deref().unwrap_or("(peer did not report)"));
        let _ = writeln!(
            out,
            "- Model: Qwen3, {} layers, hidden {}, {} query / {} KV heads of {}, intermediate {}, vocab {}; bf16",
            s.layers, s.hidden, s.heads, s.kv_heads, s.head_dim, s.intermediate, s.vocab
        );
        let _ = writeln!(
            out,
            "- docent: mistral.rs, PagedAttention, {} GPU(s) (tensor parallel), KV cache reserved {:.1} GiB \
             (all GPUs, {}); model load {:.1} s",
            self.tensor_parallel,
            self.kv_cache_gib,
            match self.args.kv_cache_dtype {
                crate::llm::KvCacheDtype::Auto => "bf16",
                crate::llm::KvCacheDtype::F8e4m3 => "FP8 E4M3",
            },
            self.load_s
        );
        let _ = writeln!(
            out,
            "- Dense bf16 matmul (8192³, torch, this run): {} TFLOP/s as a burst, {} TFLOP/s sustained (the last 3 s \
             of 10 s back to back); FLOP floor = prefill FLOPs / the burst rate, sustained floor = the same FLOPs / the \
             sustained rate",
            num(self.peer.matmul_tflops, 0),
            num(self.peer.matmul_sustained_tflops, 0)
        );
        if let Some(failure) = &self.peer.failure {
            let _ = writeln!(out, "- Peer failure: {failure}");
        }
        for (imp, tokens, message) in &self.peer.errors {
            let _ = writeln!(out, "- Peer {imp} at {tokens} tokens: {message}");
        }
        self.render_table(&mut out);
        if let Some(c) = &self.concurrency {
            self.render_concurrency(&mut out, c);
        }
        if let Some((together, alone)) = &self.throughput {
            self.render_throughput(&mut out, together, alone);
        }
        if let Some((run, peak)) = &self.interleave {
            render_interleave(&mut out, run, *peak);
        }
        if let Some(v) = &self.versus {
            self.render_versus(&mut out, v);
        }
        out
    }

    pub fn summary(&self) -> Summary {
        Summary {
            tensor_parallel: self.tensor_parallel,
            runs: self
                .ours
                .iter()
                .map(|r| SummaryRun {
                    tokens: r.tokens,
                    ttft_s: r.result.as_ref().ok().map(|c| c.prefill_s),
                    decode_tok_s: r.result.as_ref().ok().and_then(decode_rate),
                    peak_gib: r.peak_used_gib,
                })
                .collect(),
            concurrency: self.concurrency.as_ref().map(|c| SummaryConcurrency {
                sequences: c.sequences,
                tokens: c.tokens,
                completed: c.results.iter().filter(|r| r.is_ok()).count(),
            }),
        }
    }

    fn render_versus(&self, out: &mut String, v: &Summary) {
        let (n, m) = (self.tensor_parallel, v.tensor_parallel);
        let _ = writeln!(out, "\n## {n} GPU(s) against {m} GPU(s), same build\n");
        let _ = writeln!(
            out,
            "| prompt tokens | TTFT s, {m} GPU | TTFT s, {n} GPU | TTFT speed-up | decode tok/s, {m} GPU | \
             decode tok/s, {n} GPU | decode ratio | GPU peak GiB, {m} GPU | GPU peak GiB, {n} GPU (sum) |"
        );
        let _ = writeln!(out, "|{}", "---:|".repeat(9));
        let mine = self.summary();
        for r in &mine.runs {
            let theirs = v.runs.iter().find(|t| t.tokens == r.tokens);
            let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.tokens,
                num(theirs.and_then(|t| t.ttft_s), 2),
                num(r.ttft_s, 2),
                num(ratio(theirs.and_then(|t| t.ttft_s), r.ttft_s), 2),
                num(theirs.and_then(|t| t.decode_tok_s), 1),
                num(r.decode_tok_s, 1),
                num(ratio(r.decode_tok_s, theirs.and_then(|t| t.decode_tok_s)), 2),
                num(theirs.and_then(|t| t.peak_gib), 1),
                num(r.peak_gib, 1),
            );
        }
        for (who, c) in [(m, &v.concurrency), (n, &mine.concurrency)] {
            if let Some(c) = c {
                let _ = writeln!(
                    out,
                    "\n- {who} GPU(s): {} of {} concurrent sequences of {} tokens completed",
                    c.completed, c.sequences, c.tokens
                );
            }
        }
    }

    fn render_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n| prompt tokens | FLOP floor s | docent TTFT s | prefill tok/s | TTFT ÷ floor | TTFT ÷ sustained floor | \
             peer (sdpa) TTFT s | \
             speed-up vs peer | docent decode tok/s | peer decode tok/s | decode vs peer | docent GPU peak GiB | \
             peer peak GiB |"
        );
        let _ = writeln!(out, "|{}", "---:|".repeat(13));
        for run in &self.ours {
            let n = run.tokens;
            let floor = self.peer.matmul_tflops.map(|t| self.shape.prefill_flops(n) / (t * 1e12));
            let sustained_floor = self.peer.matmul_sustained_tflops.map(|t| self.shape.prefill_flops(n) / (t * 1e12));
            let peer = self.peer.runs.iter().find(|r| r.0 == "sdpa" && r.1 == n);
            let (ttft, decode) = match &run.result {
                Ok(r) => (Some(r.prefill_s), decode_rate(r)),
                Err(_) => (None, None),
            };
            let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
            let _ = writeln!(
                out,
                "| {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                num(floor, 1),
                num(ttft, 2),
                num(ttft.map(|t| n as f64 / t), 0),
                num(ratio(ttft, floor), 2),
                num(ratio(ttft, sustained_floor), 2),
                num(peer.map(|p| p.2), 2),
                num(ratio(peer.map(|p| p.2), ttft), 2),
                num(decode, 1),
                num(peer.map(|p| p.3), 1),
                num(ratio(decode, peer.map(|p| p.3)), 2),
                num(run.peak_used_gib, 1),
                num(peer.map(|p| p.4), 1),
            );
        }
        for run in &self.ours {
            match &run.result {
                Err(e) => {
                    let _ = writeln!(out, "\ndocent at {} tokens failed: {e}", run.tokens);
                }
                // What the analysis stream's `prefill` events would show of this prompt.
                Ok(r) => {
                    let _ = writeln!(
                        out,
                        "\nPrefill progress at {} tokens: {} reports, the first {} s and the last {} s after sending \
                         (TTFT {:.2} s).",
                        run.tokens,
                        r.prefill_reports,
                        num(r.first_report_s, 2),
                        num(r.last_report_s, 2),
                        r.prefill_s
                    );
                }
            }
        }
        for (imp, tokens, ttft, decode, peak) in self.peer.runs.iter().filter(|r| r.0 != "sdpa") {
            let _ = writeln!(
                out,
                "\nPeer {imp} at {tokens}: TTFT {ttft:.2} s, decode {decode:.1} tok/s, peak {peak:.1} GiB"
            );
        }
        let _ = writeln!(
            out,
            "\nTTFT is the prompt step (prefill and the first token) as mistral.rs times it; decode is the rate \
             after the first token at that depth, {} tokens, greedy, end-of-text banned. docent's peak is the \
             used memory of the GPUs in use, summed (nvidia-smi, 100 ms samples), the reserved KV cache included; the peer's \
             is torch's peak allocation.",
            self.args.decode_tokens
        );
    }

    fn render_concurrency(&self, out: &mut String, c: &Concurrency) {
        let done: Vec<_> = c.results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let _ =
            writeln!(out, "\n## {} sequences of {} tokens resident at once (PagedAttention)\n", c.sequences, c.tokens);
        let _ = writeln!(
            out,
            "Each request is sent once the one before has finished its prefill (one 256K prefill at a \
             time, as requests arriving apart would be) and decodes long enough to still be running \
             when the last one has finished its prefill.\n"
        );
        let _ = writeln!(out, "- Completed: {} of {}; wall {:.1} s", done.len(), c.sequences, c.wall_s);
        // (sent, prefill done, finished), seconds from the start of the test.
        let mut spans = Vec::new();
        for (i, (r, sent)) in c.results.iter().zip(&c.sent_s).enumerate() {
            match r {
                Ok(r) => {
                    let end = sent + r.wall_s;
                    // mistral.rs's decode time is not reliable when sequences share steps; the
                    // prefill is timed on its own step, and requests here do not queue.
                    spans.push((sent + r.prefill_s, end));
                    let _ = writeln!(
                        out,
                        "- Sequence {}: sent at {sent:.1} s, {} prompt tokens, TTFT {:.1} s, {} tokens decoded at {} tok/s, \
                         done at {end:.1} s",
                        i + 1,
                        r.prompt_tokens,
                        r.prefill_s,
                        r.completion_tokens,
                        num(decode_rate(r), 1)
                    );
                }
                Err(e) => {
                    let _ = writeln!(out, "- Sequence {}: failed: {e}", i + 1);
                }
            }
        }
        if spans.len() == c.sequences {
            let last_prefill = spans.iter().map(|s| s.0).fold(0.0, f64::max);
            let first_end = spans.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
            let together = first_end > last_prefill;
            let _ = writeln!(
                out,
                "- All {} resident together: {} (the last prefill ended at {last_prefill:.1} s, the first sequence \
                 to end did so at {first_end:.1} s)",
                c.sequences,
                if together { "yes" } else { "no" }
            );
        }
        let per_token = super::gpu::kv_bytes_per_token(&self.shape, self.args.kv_cache_dtype);
        let per_seq = gib((c.tokens + self.args.decode_tokens) as u64 * per_token);
        let _ = writeln!(out, "- KV cache per sequence: {per_seq:.1} GiB; GPU peak {} GiB", num(c.peak_used_gib, 1));
        if let (Some(peak), Some(total)) = (c.peak_used_gib, self.gpu_total_gib) {
            // Everything but the KV reservation (weights, activations, CUDA context) stays as measured.
            let other = peak - self.kv_cache_gib;
            let fit = ((total - other) / per_seq).floor().max(0.0);
            let _ = writeln!(
                out,
                "- Estimate: {total:.0} GiB GPU − {other:.1} GiB measured besides the KV cache leaves room for \
                 {fit:.0} sequences of {} tokens",
                c.tokens
            );
        }
    }
}

impl Report<'_> {
    fn render_throughput(&self, out: &mut String, together: &ThroughputRun, alone: &ThroughputRun) {
        let a = self.args;
        let _ = writeln!(
            out,
            "\n## Throughput: {} documents of {}–{} tokens (median {}) submitted at once, {} answer tokens each\n",
            together.tokens.len(),
            super::throughput::MIN_TOKENS,
            super::throughput::MAX_TOKENS,
            super::throughput::MEDIAN_TOKENS,
            a.throughput_answer
        );
        let _ = writeln!(
            out,
            "docent admits a request once its prompt and answer fit in the free KV blocks; the rest wait. The \
             one-at-a-time runs take every {}th prompt by length ({} prompts, their mean length near the whole \
             set's), so their documents per minute is that sample's count over its wall time.\n",
            a.throughput_sample,
            alone.tokens.len()
        );
        let _ = writeln!(
            out,
            "| run | documents | prompt tokens | failed | wall s | documents/min | p50 latency s | p95 latency s | GPU peak GiB |"
        );
        let _ = writeln!(out, "|---|{}", "---:|".repeat(8));
        let row = |out: &mut String, name: &str, r: &ThroughputRun| {
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {:.1} | {} | {} | {} | {} |",
                r.tokens.len(),
                r.tokens.iter().sum::<usize>(),
                r.failures.len(),
                r.wall_s,
                num(r.per_minute(), 1),
                num(r.percentile(50.0), 1),
                num(r.percentile(95.0), 1),
                num(r.peak_used_gib, 1)
            );
        };
        row(out, "docent, all at once", together);
        row(out, "docent, one at a time", alone);
        let peer = ThroughputRun {
            tokens: self.peer.throughput.iter().map(|t| t.0).collect(),
            latencies_s: self.peer.throughput.iter().map(|t| t.1).collect(),
            wall_s: self.peer.throughput.iter().map(|t| t.1).sum(),
            peak_used_gib: self.peer.throughput.iter().map(|t| t.2).reduce(f64::max),
            ..ThroughputRun::default()
        };
        if !peer.tokens.is_empty() {
            row(out, "peer (transformers), one at a time", &peer);
        }
        let ratio = |x: Option<f64>, y: Option<f64>| x.zip(y).map(|(x, y)| x / y);
        let _ = writeln!(
            out,
            "\n- Documents per minute, all at once ÷ peer: {}; ÷ docent one at a time: {}",
            num(ratio(together.per_minute(), peer.per_minute()), 1),
            num(ratio(together.per_minute(), alone.per_minute()), 1)
        );
        render_throughput_phases(out, together, alone);
        for e in together.failures.iter().chain(&alone.failures).take(3) {
            let _ = writeln!(out, "- Failure: {e}");
        }
    }
}

/// Where the time of the throughput runs went, from the engine's own step times: how fast prompts
/// were read alone and in the batch, and so how much batching, which hides decoding, can gain.
fn render_throughput_phases(out: &mut String, together: &ThroughputRun, alone: &ThroughputRun) {
    let prefill: f64 = alone.prefill_s.iter().sum();
    let decode: f64 = alone.decode_s.iter().sum();
    if let Some(rate) = alone.prefill_tokens_per_s() {
        let _ = writeln!(
            out,
            "- One at a time: prompt steps {prefill:.1} s ({rate:.0} prompt tokens/s), decode steps {decode:.1} s: \
             prefill is {:.0} % of the engine's time. A batch that read prompts at that rate and hid every \
             decode step would be at most {:.1}× one at a time (an estimate from these two measured figures)",
            100.0 * prefill / (prefill + decode),
            (prefill + decode) / prefill
        );
    }
    if let Some(read) = together.all_prompts_read_s() {
        let tokens: usize = together.tokens.iter().sum();
        let _ = writeln!(
            out,
            "- All at once: every prompt read {read:.1} s after the start ({:.0} prompt tokens/s over that span, \
             decodes included), the last answer {:.1} s after that",
            tokens as f64 / read,
            together.wall_s - read
        );
    }
}

/// A short answer's decoding while a long prompt prefills beside it, against each alone.
fn render_interleave(out: &mut String, run: &Interleave, peak: Option<f64>) {
    let _ = writeln!(
        out,
        "\n## A {}-token document arrives while a {}-token analysis answers\n",
        run.long_tokens, run.short_tokens
    );
    let alone_gaps = run.short_alone.as_ref().map(|a| gaps_within(&a.0, 0.0, f64::INFINITY)).unwrap_or_default();
    let alone = gap_stats(&alone_gaps);
    let stats = |s: Option<(f64, f64, f64)>| {
        s.map_or_else(|| "–".to_owned(), |(mean, median, max)| format!("{mean:.1} / {median:.1} / {max:.0}"))
    };
    let _ = writeln!(out, "The short answer alone: {} ms per step (mean / median / largest).\n", stats(alone));
    let _ = writeln!(
        out,
        "| prefill per step | short answer beside the long prefill: ms per step, mean / median / largest | \
         slowdown (mean) | steps during the long prefill | long TTFT alone s | long TTFT beside s | TTFT growth | \
         long's first token as alone |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|");
    let first = |r: &Result<super::interleave::Arrivals, String>| r.as_ref().ok().and_then(|a| a.0.first().copied());
    for t in &run.together {
        let gaps = t.short_gaps_during_prefill();
        let during = gap_stats(&gaps);
        let (ttft_alone, ttft) = (first(&t.long_alone), first(&t.long));
        let label = if t.step_tokens == usize::MAX {
            "whole prompt (upstream)".to_owned()
        } else {
            format!("{} tokens (interleaved)", t.step_tokens)
        };
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} | {} | {} | {} % | {} |",
            stats(during),
            num(during.zip(alone).map(|(d, a)| d.0 / a.0), 1),
            gaps.len(),
            num(ttft_alone, 2),
            num(ttft, 2),
            num(ttft.zip(ttft_alone).map(|(t, a)| (t / a - 1.0) * 100.0), 1),
            t.same_first_piece().map_or("–", |same| if same { "yes" } else { "NO" }),
        );
        for (who, r) in [("short", &t.short), ("long", &t.long), ("long alone", &t.long_alone)] {
            if let Err(e) = r {
                let _ = writeln!(out, "\n{who} request failed ({label}): {e}");
            }
        }
    }
    if let Err(e) = &run.short_alone {
        let _ = writeln!(out, "\nshort request alone failed: {e}");
    }
    let _ = writeln!(
        out,
        "\nThe short answer is streamed; a step is the gap between two pieces of it (a piece is one token, or a \
         few when the detokenizer holds bytes back). Alone it decodes {} tokens; beside the long prompt, which is \
         sent once it decodes, enough to outlast that prefill. Its steps during the long prefill are those that \
         end between the long request's sending and its first token. TTFT here is wall clock to the first \
         streamed piece. GPU peak during the scenario: {} GiB.",
        run.short_answer,
        num(peak, 1)
    );
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: GpuBenchArgs,
        #[arg(long)]
        tensor_parallel: usize,
    }

    fn parse(line: &str) -> Cli {
        let words = line.strip_prefix("docent bench gpu").expect("a bench command").split_whitespace();
        Cli::try_parse_from(std::iter::once("bench").chain(words)).expect("the printed command parses")
    }

    #[test]
    fn the_printed_command_repeats_every_flag_that_shapes_the_figures() {
        let given = "docent bench gpu --tensor-parallel 2 --model q4b --lengths 8192,253952 --decode-tokens 32 \
                     --concurrent 3 --overlap-tokens 256 --kv-cache-dtype f8e4m3 --throughput 16 \
                     --throughput-answer 128 --throughput-sample 4 --peer-python none";
        let cli = parse(given);
        let report = Report {
            args: &cli.bench,
            tensor_parallel: cli.tensor_parallel,
            versus: None,
            shape: Qwen3Shape::QWEN3_4B,
            kv_cache_gib: 0.0,
            gpu_total_gib: None,
            load_s: 0.0,
            peer: PeerResults::default(),
            ours: Vec::new(),
            concurrency: None,
            throughput: None,
            interleave: None,
        };
        let printed = report.command();
        assert!(report.render().contains(&format!("Command: `{printed}`")));
        let again = parse(&printed);
        assert_eq!(again.tensor_parallel, 2);
        let (a, b) = (&again.bench, &cli.bench);
        assert_eq!((&a.model, &a.lengths, a.decode_tokens, a.concurrent), (&b.model, &b.lengths, 32, 3));
        assert_eq!((a.overlap_tokens, a.kv_cache_dtype), (Some(256), crate::llm::KvCacheDtype::F8e4m3));
        assert_eq!(a.peer_python, "none");
        assert_eq!((a.throughput, a.throughput_answer, a.throughput_sample), (16, 128, 4));

        // Defaults stay out of the line.
        let plain =
            parse("docent bench gpu --tensor-parallel 1 --model q4b --lengths 8192 --decode-tokens 64 --concurrent 0");
        let report = Report { args: &plain.bench, tensor_parallel: 1, ..report };
        assert!(!report.command().contains("--kv-cache-dtype") && !report.command().contains("--overlap"));
        assert!(!report.command().contains("--peer-python"));
    }

    #[test]
    fn ttft_is_set_against_the_burst_and_the_sustained_floor() {
        let cli = parse("docent bench gpu --tensor-parallel 1 --model q4b --lengths 253952 --decode-tokens 128 --concurrent 0");
        let done = crate::llm::TimedCompletion {
            prompt_tokens: 253_952,
            completion_tokens: 128,
            prefill_s: 38.08,
            decode_s: 127.0 / 71.2,
            wall_s: 40.0,
            prefill_reports: 62,
            first_report_s: Some(0.16),
            last_report_s: Some(38.25),
        };
        let report = |sustained| Report {
            args: &cli.bench,
            tensor_parallel: 1,
            versus: None,
            shape: Qwen3Shape::QWEN3_4B,
            kv_cache_gib: 0.0,
            gpu_total_gib: None,
            load_s: 0.0,
            peer: PeerResults {
                matmul_tflops: Some(757.0),
                matmul_sustained_tflops: sustained,
                ..PeerResults::default()
            },
            ours: vec![OurRun { tokens: 253_952, result: Ok(done), peak_used_gib: None }],
            concurrency: None,
            throughput: None,
            interleave: None,
        };
        // Run 17 of benches/gpu-report.md: 1.38x the floor at the burst rate, 1.20x at the sustained one.
        let row = |text: String| text.lines().find(|l| l.starts_with("| 253952 |")).map(str::to_owned).unwrap_or_default();
        let both = row(report(Some(660.0)).render());
        assert!(both.starts_with("| 253952 | 27.6 | 38.08 | 6669 | 1.38 | 1.20 |"), "{both}");
        let burst_only = row(report(None).render());
        assert!(burst_only.starts_with("| 253952 | 27.6 | 38.08 | 6669 | 1.38 | – |"), "{burst_only}");
    }

    #[test]
    fn the_phases_of_the_throughput_runs_come_from_the_step_times() {
        let alone = ThroughputRun {
            tokens: vec![16_000, 4_000],
            prefill_s: vec![0.8, 0.2],
            decode_s: vec![1.5, 1.5],
            ..ThroughputRun::default()
        };
        let together = ThroughputRun { tokens: vec![16_000, 4_000], prompt_read_s: vec![0.4, 1.6], wall_s: 3.0, ..alone.clone() };
        let mut out = String::new();
        render_throughput_phases(&mut out, &together, &alone);
        assert!(out.contains("prompt steps 1.0 s (20000 prompt tokens/s), decode steps 3.0 s"), "{out}");
        assert!(out.contains("prefill is 25 % of the engine's time") && out.contains("at most 4.0× one at a time"), "{out}");
        assert!(out.contains("every prompt read 1.6 s after the start (12500 prompt tokens/s"), "{out}");
        assert!(out.contains("the last answer 1.4 s after that"), "{out}");
        // A run whose engine reported nothing prints nothing rather than zeros.
        let mut none = String::new();
        render_throughput_phases(&mut none, &ThroughputRun::default(), &ThroughputRun::default());
        assert!(none.is_empty(), "{none}");
    }
}
