//! `docent bench attention`: the prefill attention kernels alone at long prompt lengths
//! (Qwen3-4B's 32 query and 8 KV heads of 128, bf16, causal, one sequence), FlashAttention-3 and
//! FlashAttention-2 as docent builds them, against torch's cuDNN and FlashAttention-2 backends
//! measured in the same run (`benches/attention_peer.py`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

#[derive(Debug, Clone, clap::Args)]
pub struct AttentionBenchArgs {
    /// Prompt lengths in tokens.
    #[arg(long, value_delimiter = ',', default_value = "32768,131072,262144")]
    pub lengths: Vec<usize>,
    /// Timed calls per kernel and length (after one untimed call).
    #[arg(long, default_value_t = 3)]
    pub iters: usize,
    /// Python with torch for the peer; `none` skips it.
    #[arg(long, default_value = "python3")]
    pub peer_python: String,
    #[arg(long, default_value = "benches/attention_peer.py")]
    pub peer_script: PathBuf,
    /// Also write the markdown report to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

const QUERY_HEADS: usize = 32;
const KV_HEADS: usize = 8;
const HEAD_DIM: usize = 128;

/// FLOPs of causal attention over `n` tokens: QK^T and PV, each 2·n²·heads·dim, half of it masked.
fn causal_flops(n: usize) -> f64 {
    2.0 * (n as f64).powi(2) * (QUERY_HEADS * HEAD_DIM) as f64
}

#[derive(Debug, Deserialize)]
struct PeerLine {
    r#impl: String,
    tokens: usize,
    ms: Option<f64>,
    error: Option<String>,
}

type Kernel = fn(&Tensor, &Tensor, &Tensor, &Tensor, usize) -> candle_core::Result<Tensor>;

fn fa3(q: &Tensor, k: &Tensor, v: &Tensor, seqlens: &Tensor, n: usize) -> candle_core::Result<Tensor> {
    let scale = 1.0 / (HEAD_DIM as f32).sqrt();
    candle_flash_attn_v3::flash_attn_varlen_windowed(q, k, v, seqlens, seqlens, n, n, scale, None, Some(0), true)
}

fn fa2(q: &Tensor, k: &Tensor, v: &Tensor, seqlens: &Tensor, n: usize) -> candle_core::Result<Tensor> {
    let scale = 1.0 / (HEAD_DIM as f32).sqrt();
    mistralrs_flash_attn::flash_attn_varlen_windowed(q, k, v, seqlens, seqlens, n, n, scale, None, Some(0))
}

/// Milliseconds per call of `kernel` on one `n`-token sequence, the mean of `iters` calls.
fn time_kernel(kernel: Kernel, device: &Device, n: usize, iters: usize) -> anyhow::Result<f64> {
    let q = Tensor::randn(0f32, 1.0, (n, QUERY_HEADS, HEAD_DIM), device)?.to_dtype(DType::BF16)?;
    let k = Tensor::randn(0f32, 1.0, (n, KV_HEADS, HEAD_DIM), device)?.to_dtype(DType::BF16)?;
    let v = Tensor::randn(0f32, 1.0, (n, KV_HEADS, HEAD_DIM), device)?.to_dtype(DType::BF16)?;
    let seqlens = Tensor::new(&[0u32, u32::try_from(n)?], device)?;
    kernel(&q, &k, &v, &seqlens, n)?;
    device.synchronize()?;
    let start = Instant::now();
    for _ in 0..iters.max(1) {
        kernel(&q, &k, &v, &seqlens, n)?;
    }
    device.synchronize()?;
    Ok(start.elapsed().as_secs_f64() * 1000.0 / iters.max(1) as f64)
}

pub fn run(args: &AttentionBenchArgs) -> anyhow::Result<()> {
    let device = Device::new_cuda(0).context("opening GPU 0")?;
    let mut rows: Vec<(String, usize, Result<f64, String>)> = Vec::new();
    for &n in &args.lengths {
        for (name, kernel) in [("docent FlashAttention-3", fa3 as Kernel), ("docent FlashAttention-2", fa2 as Kernel)] {
            let ms = time_kernel(kernel, &device, n, args.iters).map_err(|e| format!("{e:#}"));
            eprintln!("{name}, {n} tokens: {ms:?} ms");
            rows.push((name.to_owned(), n, ms));
        }
    }
    if args.peer_python != "none" {
        let lengths = args.lengths.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        let output = Command::new(&args.peer_python)
            .arg(&args.peer_script)
            .args(["--lengths", &lengths, "--iters", &args.iters.to_string()])
            .output()
            .with_context(|| format!("running {}", args.peer_script.display()))?;
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let Ok(peer) = serde_json::from_str::<PeerLine>(line) else { continue };
            let ms = match (peer.ms, peer.error) {
                (Some(ms), _) => Ok(ms),
                (None, error) => Err(error.unwrap_or_else(|| "no time".to_owned())),
            };
            rows.push((format!("torch {}", peer.r#impl), peer.tokens, ms));
        }
    }
    let text = render(&args.lengths, &rows);
    println!("{text}");
    if let Some(path) = &args.report {
        fs_err::write(path, &text)?;
    }
    Ok(())
}

fn render(lengths: &[usize], rows: &[(String, usize, Result<f64, String>)]) -> String {
    let mut text = String::from(
        "## Prefill attention kernels (32 query / 8 KV heads of 128, bf16, causal, one sequence)\n\n\
         | kernel | tokens | ms | TFLOP/s | vs docent FlashAttention-3 |\n|---|---:|---:|---:|---:|\n",
    );
    for &n in lengths {
        let fa3_ms = rows.iter().find(|r| r.0 == "docent FlashAttention-3" && r.1 == n).and_then(|r| r.2.clone().ok());
        for (name, _, ms) in rows.iter().filter(|r| r.1 == n) {
            match ms {
                Ok(ms) => {
                    let ratio = fa3_ms.map_or("—".to_owned(), |f| format!("{:.2}× the time", ms / f));
                    text += &format!(
                        "| {name} | {n} | {ms:.1} | {:.0} | {ratio} |\n",
                        causal_flops(n) / (ms / 1000.0) / 1e12
                    );
                }
                Err(e) => text += &format!("| {name} | {n} | failed: {} | — | — |\n", e.replace('|', "/")),
            }
        }
    }
    text
}
