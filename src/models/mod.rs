//! Model files rather than engines: random-weight checkpoints of the real architectures for tests
//! and benchmarks, and the Baichuan2 -> Llama conversion (SentencePiece -> tokenizer.json,
//! PyTorch and safetensors tensor I/O).

pub mod baichuan;
pub mod checkpoint;
pub mod sentencepiece;
pub mod tensors;
mod weights;
