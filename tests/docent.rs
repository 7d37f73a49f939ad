//! The one integration test binary: parsing real files, the HTTP API and
//! pages on a real server, and the end to end run on the real model.

// Tests may panic on what they did not expect: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::string_slice)]

#[path = "common/mod.rs"]
mod common;

#[path = "docent/parsing.rs"]
mod parsing;

#[path = "docent/api.rs"]
mod api;

#[path = "docent/e2e.rs"]
mod e2e;

#[path = "docent/browser.rs"]
mod browser;

#[path = "docent/qwen3.rs"]
mod qwen3;

#[path = "docent/chunked.rs"]
mod chunked;

#[path = "docent/baichuan2.rs"]
mod baichuan2;

#[path = "docent/batch.rs"]
mod batch;

#[path = "docent/batch_e2e.rs"]
mod batch_e2e;

#[path = "docent/openai.rs"]
mod openai;

#[path = "docent/eval.rs"]
mod eval;

#[path = "docent/cpu_engine.rs"]
mod cpu_engine;

#[path = "docent/streaming.rs"]
mod streaming;

#[path = "docent/hostile.rs"]
mod hostile;

#[path = "docent/access.rs"]
mod access;

#[path = "docent/crash.rs"]
mod crash;

#[path = "docent/operations.rs"]
mod operations;

#[path = "docent/shutdown.rs"]
mod shutdown;

#[path = "docent/openapi.rs"]
mod openapi;
