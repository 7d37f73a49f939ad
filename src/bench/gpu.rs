//! `docent bench gpu`: the full-context engine (mistral.rs, PagedAttention) on long prompts,
//! against a peer measured in the same run on the same checkpoint and GPU (Hugging Face
//! transformers, `benches/peer_transformers.py`), and against the FLOP floor (the prefill's
//! FLOPs over the dense bf16 matmul rate the peer measured).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Deserialize;

use super::report::{gib, Report, Summary};
use super::{interleave, throughput};
use crate::llm::{DTypeChoice, LocalSettings, MistralEngine, Runtime, TimedCompletion};
use crate::models::checkpoint::Qwen3Shape;

#[derive(Debug, Clone, clap::Args)]
pub struct GpuBenchArgs {
    /// Safetensors checkpoint directory of a Qwen3 model (`docent checkpoint` writes one).
    #[arg(long)]
    pub model: PathBuf,
    /// Prompt lengths in tokens.
    #[arg(long, value_delimiter = ',', default_value = "8192,32768,131072,262144")]
    pub lengths: Vec<usize>,
    /// Tokens decoded after each prompt (the decode rate is measured at that prompt's depth).
    #[arg(long, default_value_t = 64)]
    pub decode_tokens: usize,
    /// Sequences of the longest length run at the same time with PagedAttention (0 skips this).
    #[arg(long, default_value_t = 2)]
    pub concurrent: usize,
    /// Concurrency test: tokens each earlier sequence decodes beyond --decode-tokens per later one,
    /// so that it is still running when the later ones join. Default: enough to go on decoding
    /// through a later prefill at the single-sequence rate (mistral.rs prefills in one step, so an
    /// earlier sequence in fact waits and then decodes the rest beside the later one).
    #[arg(long)]
    pub overlap_tokens: Option<usize>,
    /// Throughput scenario: this many prompts of 4K–64K tokens (median 16K, like a folder of
    /// contracts) submitted at once, then a sample of them one at a time (0 skips it).
    #[arg(long, default_value_t = 64)]
    pub throughput: usize,
    /// Interleaving scenario: a prompt of this many tokens is answering when the longest of
    /// --lengths arrives (0 skips it).
    #[arg(long, default_value_t = 16_384)]
    pub interleave_short: usize,
    /// Tokens the short prompt decodes when timed alone.
    #[arg(long, default_value_t = 256)]
    pub interleave_answer: usize,
    /// Tokens decoded for each throughput prompt.
    #[arg(long, default_value_t = 256)]
    pub throughput_answer: usize,
    /// The one-at-a-time runs of the throughput scenario (docent alone, the peer) take every k-th
    /// prompt by length: the peer decodes about 14 tokens a second, so all 64 would take 20 minutes.
    #[arg(long, default_value_t = 8)]
    pub throughput_sample: usize,
    /// KV cache to reserve, in tokens (default: what the concurrency test needs, at least 655,360
    /// with the throughput scenario).
    #[arg(long)]
    pub kv_cache_tokens: Option<usize>,
    /// What PagedAttention stores keys and values as: `auto` (bf16 here) or `f8e4m3`.
    #[arg(long, value_enum, default_value = "auto")]
    pub kv_cache_dtype: crate::llm::KvCacheDtype,
    /// Prompt tokens per prefill pass (default: the engine's; 4,096 with FlashAttention-3).
    #[arg(long)]
    pub prefill_chunk_tokens: Option<usize>,
    /// Prompt tokens per engine step before running sequences decode again (default: one chunk).
    #[arg(long)]
    pub prefill_step_tokens: Option<usize>,
    /// Python with torch and transformers for the peer; `none` skips the peer.
    #[arg(long, default_value = "python3")]
    pub peer_python: String,
    #[arg(long, default_value = "benches/peer_transformers.py")]
    pub peer_script: PathBuf,
    /// Also write the markdown report to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Also write the measured figures as JSON (for `--versus` in a later run).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The `--json` of an earlier run (e.g. the same build on one GPU): the report adds each
    /// figure as a ratio to that run's.
    #[arg(long)]
    pub versus: Option<PathBuf>,
}

/// What the peer printed, one JSON object per line.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum PeerLine {
    Gpu { name: String, torch: String },
    Matmul {
        tflops: f64,
        #[serde(default)]
        sustained_tflops: Option<f64>,
    },
    Run { r#impl: String, tokens: usize, ttft_s: f64, decode_tok_s: f64, peak_gib: f64 },
    Tput { tokens: usize, seconds: f64, peak_gib: f64 },
    Error { r#impl: String, tokens: usize, message: String },
}

#[derive(Debug, Default)]
pub(super) struct PeerResults {
    pub gpu: Option<String>,
    pub matmul_tflops: Option<f64>,
    /// The same matmul's rate after 10 s back to back, once the GPU holds its power cap.
    pub matmul_sustained_tflops: Option<f64>,
    pub runs: Vec<(String, usize, f64, f64, f64)>,
    pub errors: Vec<(String, usize, String)>,
    pub failure: Option<String>,
    /// The throughput sample one prompt after another: (prompt tokens, seconds, peak GiB).
    pub throughput: Vec<(usize, f64, f64)>,
}

pub(super) struct OurRun {
    pub tokens: usize,
    pub result: Result<TimedCompletion, String>,
    pub peak_used_gib: Option<f64>,
}

pub(super) struct Concurrency {
    pub sequences: usize,
    pub tokens: usize,
    /// When each request was sent, seconds from the start of the test.
    pub sent_s: Vec<f64>,
    pub results: Vec<Result<TimedCompletion, String>>,
    pub wall_s: f64,
    pub peak_used_gib: Option<f64>,
}

/// KV cache of a run with the throughput scenario, unless `--kv-cache-tokens` says otherwise.
const THROUGHPUT_KV_TOKENS: usize = 655_360;

/// The prompt lengths that fit the model's context with the decoded tokens after them: a "256K"
/// prompt leaves room for its answer.
fn fitted_lengths(args: &GpuBenchArgs, shape: &Qwen3Shape) -> Vec<usize> {
    let room = shape.max_positions.saturating_sub(args.decode_tokens);
    args.lengths.iter().map(|&n| n.min(room)).collect()
}

/// Positions of the model's context the concurrency test leaves unused after a sequence's answer.
const CONTEXT_MARGIN: usize = 16;

/// The prompt length of the concurrency test: the longest prompt, shortened (to a multiple of
/// 1,024 tokens) where the model's context would leave the earlier sequences no room to decode on
/// through the later prefills. A 262,080-token prompt of a 262,144-token model leaves room for its 64
/// answer tokens only: the first sequence ends before the second is sent, and the two are never
/// resident together (run 18 of benches/gpu-report.md).
fn concurrent_prompt_tokens(
    longest: usize,
    max_positions: usize,
    decode_tokens: usize,
    overlap_tokens: usize,
) -> usize {
    let fits = max_positions.saturating_sub(decode_tokens + CONTEXT_MARGIN + overlap_tokens);
    if longest <= fits {
        longest
    } else {
        fits / 1024 * 1024
    }
}

/// Bytes of key and value cache per token as PagedAttention stores them.
pub(super) fn kv_bytes_per_token(shape: &Qwen3Shape, dtype: crate::llm::KvCacheDtype) -> u64 {
    match dtype {
        crate::llm::KvCacheDtype::Auto => shape.kv_bytes_per_token(),
        crate::llm::KvCacheDtype::F8e4m3 => shape.kv_bytes_per_token() / 2,
    }
}

/// The engine settings of a run; tensor-parallel workers load the model with the same ones.
pub fn engine_settings(args: &GpuBenchArgs, tensor_parallel: usize) -> anyhow::Result<LocalSettings> {
    let shape = Qwen3Shape::from_config(&args.model.join("config.json"))?;
    let Some(longest) = fitted_lengths(args, &shape).into_iter().max() else { bail!("--lengths is empty") };
    let sequences = args.concurrent.max(1);
    // Room for every concurrent sequence to reach the model's full context (the first ones decode on
    // while later ones prefill), or for the longest prompt and its answer alone.
    // (A few blocks over: mistral.rs keeps one block aside and rounds the cache down to whole MiB.)
    let needed =
        if args.concurrent > 0 { sequences * (shape.max_positions + 128) } else { longest + args.decode_tokens + 128 };
    // The interleaving scenario holds the short prompt, its answer and the longest prompt at once.
    let needed = if args.interleave_short > 0 {
        needed.max(longest + args.interleave_short + interleave::overlap_answer(args.interleave_answer, longest) + 256)
    } else {
        needed
    };
    // The throughput scenario gets 90 GiB of bf16 cache (room for about 30 of its prompts at once)
    // beside the 8 GB of weights and the activations of a prompt step on the 141 GiB H200.
    let kv_cache_tokens =
        args.kv_cache_tokens.unwrap_or(if args.throughput > 0 { needed.max(THROUGHPUT_KV_TOKENS) } else { needed });
    Ok(LocalSettings {
        runtime: Runtime::MistralRs,
        model: args.model.clone(),
        dtype: DTypeChoice::Auto,
        max_context: None,
        force_cpu: false,
        max_num_seqs: if args.throughput > 0 {
            sequences.max(crate::config::GPU_MAX_RUNNING)
        } else if args.interleave_short > 0 {
            sequences.max(2)
        } else {
            sequences
        },
        kv_cache_tokens,
        kv_cache_dtype: args.kv_cache_dtype,
        prefill_chunk_tokens: args.prefill_chunk_tokens,
        prefill_step_tokens: args.prefill_step_tokens,
        prefix_cache: false,
        tensor_parallel,
    })
}

pub async fn run(mut args: GpuBenchArgs, tensor_parallel: usize) -> anyhow::Result<()> {
    let shape = Qwen3Shape::from_config(&args.model.join("config.json"))?;
    let settings = engine_settings(&args, tensor_parallel)?;
    let fitted = fitted_lengths(&args, &shape);
    for (n, fitted) in args.lengths.iter_mut().zip(fitted) {
        if *n != fitted {
            eprintln!("a {n}-token prompt leaves no room for {} decoded tokens; using {fitted}", args.decode_tokens);
            *n = fitted;
        }
    }
    let Some(&longest) = args.lengths.iter().max() else { bail!("--lengths is empty") };
    let prompts = tempfile::tempdir()?;
    for &n in &args.lengths {
        write_prompt(&prompts.path().join(format!("prompt_{n}.u32")), &prompt_ids(n, n as u64, shape.vocab))?;
    }

    let tput_lengths = throughput::lengths(args.throughput);
    let tput_prompts: Vec<Vec<u32>> =
        tput_lengths.iter().enumerate().map(|(i, &n)| prompt_ids(n, 5000 + i as u64, shape.vocab)).collect();
    let tput_sample = throughput::sample(&tput_lengths, args.throughput_sample);
    for (j, &i) in tput_sample.iter().enumerate() {
        if let Some(ids) = tput_prompts.get(i) {
            write_prompt(&prompts.path().join(format!("tput_{j}.u32")), ids)?;
        }
    }

    let peer = if args.peer_python == "none" {
        PeerResults::default()
    } else {
        run_peer(&args, prompts.path(), tput_sample.len())
    };

    let poller = MemoryPoller::start();
    let load_start = Instant::now();
    let engine = MistralEngine::load(&settings).await.context("loading the model into mistral.rs")?;
    let load_s = load_start.elapsed().as_secs_f64();
    // The first request pays for kernel loading and cuBLAS set-up.
    engine.timed_completion(prompt_ids(256, 0, shape.vocab), 4).await.context("warm-up request")?;

    let mut ours = Vec::new();
    for &n in &args.lengths {
        poller.reset();
        let result = engine.timed_completion(prompt_ids(n, n as u64, shape.vocab), args.decode_tokens).await;
        eprintln!("docent {n} tokens: {result:?}");
        ours.push(OurRun { tokens: n, result: result.map_err(|e| format!("{e:#}")), peak_used_gib: poller.peak_gib() });
    }

    let interleave = if args.interleave_short > 0 {
        poller.reset();
        let (_, step_tokens) = crate::llm::prefill_steps(&settings);
        let run = interleave::run(
            &engine,
            prompt_ids(args.interleave_short, 7, shape.vocab),
            prompt_ids(longest, 8, shape.vocab),
            args.interleave_answer,
            step_tokens,
        )
        .await;
        eprintln!("docent interleave: {run:?}");
        Some((run, poller.peak_gib()))
    } else {
        None
    };

    let concurrency = if args.concurrent > 0 {
        // One prefill of the longest prompt at a time, as requests arriving apart would be: each
        // sequence starts once the one before has finished its prefill and keeps decoding until the
        // last one has finished its own, so all of them hold their KV cache together.
        let single = ours.iter().find(|r| r.tokens == longest).and_then(|r| r.result.as_ref().ok()).copied();
        let stagger_s = single.map_or(0.0, |r| r.prefill_s * 1.1 + 2.0);
        let rate = single.and_then(|r| super::report::decode_rate(&r)).unwrap_or(50.0);
        poller.reset();
        let start = Instant::now();
        let per_later = args.overlap_tokens.unwrap_or((stagger_s * rate * 1.3).ceil() as usize);
        let tokens = concurrent_prompt_tokens(
            longest,
            shape.max_positions,
            args.decode_tokens,
            (args.concurrent - 1) * per_later,
        );
        if tokens < longest {
            eprintln!(
                "concurrency: {tokens}-token prompts, so that the earlier sequences can decode on through the later prefills"
            );
        }
        let runs = (0..args.concurrent).map(|i| {
            let later = args.concurrent - 1 - i;
            let room = shape.max_positions.saturating_sub(tokens + args.decode_tokens + CONTEXT_MARGIN);
            let extra = (later * per_later).min(room);
            let delay = Duration::from_secs_f64(i as f64 * stagger_s);
            let engine = &engine;
            async move {
                tokio::time::sleep(delay).await;
                let sent = start.elapsed().as_secs_f64();
                let result = engine
                    .timed_completion(prompt_ids(tokens, 1000 + i as u64, shape.vocab), args.decode_tokens + extra)
                    .await;
                (sent, result.map_err(|e| format!("{e:#}")))
            }
        });
        let results = futures_util::future::join_all(runs).await;
        let wall_s = start.elapsed().as_secs_f64();
        eprintln!("docent {} x {tokens} tokens: {results:?}", args.concurrent);
        Some(Concurrency {
            sequences: args.concurrent,
            tokens,
            sent_s: results.iter().map(|r| r.0).collect(),
            results: results.into_iter().map(|r| r.1).collect(),
            wall_s,
            peak_used_gib: poller.peak_gib(),
        })
    } else {
        None
    };
    let throughput = if args.throughput > 0 {
        poller.reset();
        let mut together = throughput::all_at_once(&engine, &tput_prompts, args.throughput_answer).await;
        together.peak_used_gib = poller.peak_gib();
        eprintln!(
            "docent throughput, {} at once: {:.1} s, {} failed",
            tput_prompts.len(),
            together.wall_s,
            together.failures.len()
        );
        let picked: Vec<Vec<u32>> = tput_sample.iter().filter_map(|&i| tput_prompts.get(i).cloned()).collect();
        poller.reset();
        let mut alone = throughput::one_at_a_time(&engine, &picked, args.throughput_answer).await;
        alone.peak_used_gib = poller.peak_gib();
        eprintln!("docent throughput, {} one at a time: {:.1} s", picked.len(), alone.wall_s);
        Some((together, alone))
    } else {
        None
    };
    poller.stop();

    let versus = match &args.versus {
        Some(path) => Some(
            serde_json::from_slice::<Summary>(&fs_err::read(path)?)
                .with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    let report = Report {
        args: &args,
        tensor_parallel,
        versus,
        shape,
        kv_cache_gib: gib(settings.kv_cache_tokens as u64 * kv_bytes_per_token(&shape, args.kv_cache_dtype)),
        gpu_total_gib: gpu_memory().map(|(_, total)| total),
        load_s,
        peer,
        ours,
        concurrency,
        throughput,
        interleave,
    };
    let text = report.render();
    println!("{text}");
    if let Some(path) = &args.report {
        fs_err::write(path, &text)?;
    }
    if let Some(path) = &args.json {
        fs_err::write(path, serde_json::to_vec_pretty(&report.summary())?)?;
    }
    Ok(())
}

/// `n` token ids drawn from the ordinary vocabulary (no special tokens), the same for a seed.
pub(super) fn prompt_ids(n: usize, seed: u64, vocab: usize) -> Vec<u32> {
    // Qwen's special tokens start at 151643; keep below both that and the model's vocabulary.
    let ordinary = vocab.min(151_643) as u64;
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as u32 % ordinary as u32
        })
        .collect()
}

fn write_prompt(path: &Path, ids: &[u32]) -> anyhow::Result<()> {
    let bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_le_bytes()).collect();
    Ok(fs_err::write(path, bytes)?)
}

fn run_peer(args: &GpuBenchArgs, prompts: &Path, throughput_prompts: usize) -> PeerResults {
    let lengths: Vec<String> = args.lengths.iter().map(ToString::to_string).collect();
    let child = Command::new(&args.peer_python)
        .arg(&args.peer_script)
        .arg("--model")
        .arg(&args.model)
        .arg("--prompts")
        .arg(prompts)
        .arg("--lengths")
        .arg(lengths.join(","))
        .arg("--decode")
        .arg(args.decode_tokens.to_string())
        .arg("--throughput-count")
        .arg(throughput_prompts.to_string())
        .arg("--throughput-answer")
        .arg(args.throughput_answer.to_string())
        .stdout(Stdio::piped())
        .spawn();
    let mut results = PeerResults::default();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            results.failure = Some(format!("could not start {}: {e}", args.peer_python));
            return results;
        }
    };
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            match serde_json::from_str::<PeerLine>(&line) {
                Ok(PeerLine::Gpu { name, torch }) => results.gpu = Some(format!("{name} (torch {torch})")),
                Ok(PeerLine::Matmul { tflops, sustained_tflops }) => {
                    results.matmul_tflops = Some(tflops);
                    results.matmul_sustained_tflops = sustained_tflops;
                }
                Ok(PeerLine::Run { r#impl, tokens, ttft_s, decode_tok_s, peak_gib }) => {
                    results.runs.push((r#impl, tokens, ttft_s, decode_tok_s, peak_gib));
                }
                Ok(PeerLine::Error { r#impl, tokens, message }) => results.errors.push((r#impl, tokens, message)),
                Ok(PeerLine::Tput { tokens, seconds, peak_gib }) => {
                    results.throughput.push((tokens, seconds, peak_gib))
                }
                Err(_) => eprintln!("peer: {line}"),
            }
        }
    }
    match child.wait() {
        Ok(status) if status.success() => {}
        Ok(status) => results.failure = Some(format!("the peer exited with {status}")),
        Err(e) => results.failure = Some(format!("waiting for the peer: {e}")),
    }
    results
}

/// Used and total memory in GiB of the GPUs this process may use (`CUDA_VISIBLE_DEVICES`, else
/// all), summed, from nvidia-smi (whole devices, every process: tensor-parallel workers included).
fn gpu_memory() -> Option<(f64, f64)> {
    let mut query = Command::new("nvidia-smi");
    query.args(["--query-gpu=memory.used,memory.total", "--format=csv,noheader,nounits"]);
    if let Ok(ids) = std::env::var("CUDA_VISIBLE_DEVICES") {
        query.arg(format!("--id={ids}"));
    }
    let text = String::from_utf8(query.output().ok()?.stdout).ok()?;
    let mut sum = (0.0, 0.0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (used, total) = line.trim().split_once(',')?;
        sum.0 += used.trim().parse::<f64>().ok()? / 1024.0;
        sum.1 += total.trim().parse::<f64>().ok()? / 1024.0;
    }
    (sum.1 > 0.0).then_some(sum)
}

/// Samples nvidia-smi every 100 ms and keeps the peak of used memory since the last reset.
struct MemoryPoller {
    peak_mib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    seen: Arc<AtomicBool>,
}

impl MemoryPoller {
    fn start() -> Self {
        let (peak_mib, stop, seen) =
            (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (p, s, k) = (Arc::clone(&peak_mib), Arc::clone(&stop), Arc::clone(&seen));
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some((used, _)) = gpu_memory() {
                    k.store(true, Ordering::Relaxed);
                    p.fetch_max((used * 1024.0) as u64, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self { peak_mib, stop, seen }
    }

    fn reset(&self) {
        self.peak_mib.store(0, Ordering::Relaxed);
    }

    fn peak_gib(&self) -> Option<f64> {
        self.seen.load(Ordering::Relaxed).then(|| self.peak_mib.load(Ordering::Relaxed) as f64 / 1024.0)
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peers_matmul_line_gives_both_rates_and_older_peers_still_parse() {
        let line = r#"{"kind": "matmul", "tflops": 757.2, "sustained_tflops": 660.1}"#;
        let Ok(PeerLine::Matmul { tflops, sustained_tflops }) = serde_json::from_str::<PeerLine>(line) else {
            panic!("not a matmul line: {line}");
        };
        assert_eq!((tflops, sustained_tflops), (757.2, Some(660.1)));
        let older = r#"{"kind": "matmul", "tflops": 789.0}"#;
        let Ok(PeerLine::Matmul { sustained_tflops, .. }) = serde_json::from_str::<PeerLine>(older) else {
            panic!("not a matmul line: {older}");
        };
        assert_eq!(sustained_tflops, None);
    }

    #[test]
    fn concurrent_prompts_leave_the_earlier_sequences_room_to_decode_on() {
        // Run 18: 262,080 tokens, 64 decoded, about 4,240 more for the first sequence to decode
        // while the second one prefills.
        let tokens = concurrent_prompt_tokens(262_080, 262_144, 64, 4_240);
        assert_eq!(tokens, 257_024);
        assert!(tokens + 64 + 4_240 <= 262_144);
        // Run 12's 253,952 tokens had room already and are kept as asked.
        assert_eq!(concurrent_prompt_tokens(253_952, 262_144, 64, 4_240), 253_952);
    }

    #[test]
    fn prompts_are_repeatable_ordinary_tokens() {
        let a = prompt_ids(10_000, 3, 151_936);
        assert_eq!(a, prompt_ids(10_000, 3, 151_936));
        assert_ne!(a, prompt_ids(10_000, 4, 151_936));
        assert!(a.iter().all(|&id| id < 151_643));
        // Spread over the vocabulary, not stuck in a corner of it.
        assert!(a.iter().any(|&id| id < 1000) && a.iter().any(|&id| id > 150_000));
        assert!(prompt_ids(500, 1, 1000).iter().all(|&id| id < 1000));
    }
}
