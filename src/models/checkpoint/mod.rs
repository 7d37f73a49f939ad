//! Random-weight checkpoints in the layouts models are published in: tests load tiny ones on CPU,
//! benchmarks load full-size ones, which cost the same time as real weights.

pub mod baichuan2;
mod qwen3;

pub use qwen3::{write_random_qwen3, Qwen3Shape};
