//! Benchmarks that print their results next to a peer measured in the same run.

pub mod gpu;
mod report;

pub use gpu::GpuBenchArgs;
