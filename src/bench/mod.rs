//! Benchmarks that print their results next to a peer measured in the same run.

pub mod cpu;
pub mod gpu;
mod report;
mod throughput;

pub use cpu::CpuBenchArgs;
pub use gpu::GpuBenchArgs;
