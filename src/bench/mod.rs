//! Benchmarks that print their results next to a peer measured in the same run.

#[cfg(feature = "flash-attn-v3")]
pub mod attention;
pub mod cpu;
pub mod gpu;
pub mod logits;
mod interleave;
mod report;
mod throughput;

#[cfg(feature = "flash-attn-v3")]
pub use attention::AttentionBenchArgs;
pub use cpu::CpuBenchArgs;
pub use gpu::GpuBenchArgs;
pub use logits::LogitsArgs;
