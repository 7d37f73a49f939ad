//! The production loading path for a safetensors download (Qwen3-4B-Instruct-2507
//! in production): a tiny Qwen3 checkpoint made here (random weights, the real
//! Qwen3 tokenizer and chat template, the layout and tensor names of the real
//! one) loads through `--model DIR` and runs the full-context pipeline.

use std::sync::Arc;

use docent::domain::{PageSpan, Task};
use docent::llm::{DTypeChoice, Engine, LocalSettings, MistralEngine};
use docent::models::checkpoint::{write_random_qwen3, Qwen3Shape};
use docent::pipeline::{DocInput, FullContext, Pipeline, TaskSpec};

#[actix_web::test]
async fn a_qwen3_safetensors_directory_loads_and_answers_through_the_pipeline() {
    let tokenizer_dir = crate::common::models_dir().join("qwen3-tokenizer");
    assert!(tokenizer_dir.join("tokenizer.json").is_file(), "run scripts/fetch-models.sh");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny-qwen3");
    write_random_qwen3(&dir, &Qwen3Shape::TINY, &tokenizer_dir, 1).unwrap();

    let engine = MistralEngine::load(&cpu_settings(&dir)).await.expect("the tiny Qwen3 directory loads");
    assert_eq!(engine.context_limit(), Qwen3Shape::TINY.max_positions, "the context comes from config.json");
    assert_eq!(engine.model_name(), "tiny-qwen3");
    // The real Qwen3 tokenizer: "Hello world" is two tokens.
    assert_eq!(engine.count_tokens("Hello world").await.unwrap(), 2);

    let text = "Docent reads the whole document. Every claim cites a span of the source.";
    let pages = [PageSpan { number: 1, start: 0, end: text.len() }];
    let pipeline = FullContext::new(Arc::new(engine), 48);
    // A question: its evidence step and its answer line both run the constrained decoder. Random
    // weights say nothing sensible (greedy, this checkpoint loops on one word to the token limit,
    // which a summary rightly reports as an empty answer); a question is then declined, and any
    // citation it makes must resolve into the text.
    let spec = TaskSpec { task: Task::Question, question: Some("What does every claim cite?".into()) };
    let out = pipeline.run(DocInput { id: "tiny", text, pages: &pages }, &spec).await.expect("the pipeline runs");
    assert!(out.usage.prompt_tokens > 20 && out.usage.completion_tokens > 2, "{:?}", out.usage);
    for c in &out.citations {
        assert_eq!(text.get(c.start..c.end), Some(c.quote.as_str()));
    }
    if out.citations.is_empty() {
        assert_eq!(out.answer.text, "The document does not say.");
    }
}

fn cpu_settings(dir: &std::path::Path) -> LocalSettings {
    crate::common::mistral_cpu_settings(dir, DTypeChoice::Auto)
}

/// Qwen's 151,936 logits outnumber its tokenizer's 151,669 tokens. A model that prefers one of the
/// ids past the tokenizer's end (a random checkpoint on the GPU did, for 8 of 13 batch items) must
/// still answer inside the grammar: such an id is resampled from the grammar's mask, where it
/// used to stop the constrained decoder ("token id … out of range") and fail the answer.
#[actix_web::test]
async fn a_constrained_answer_survives_a_model_that_prefers_ids_past_the_tokenizer() {
    let tokenizer_dir = crate::common::models_dir().join("qwen3-tokenizer");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny-qwen3");
    let weights = write_random_qwen3(&dir, &Qwen3Shape::TINY, &tokenizer_dir, 3).unwrap();
    // Tied embeddings: the rows past the tokenizer's 151,669 tokens, scaled up 100 times, give
    // those ids the largest logits at every step.
    let bytes = std::fs::read(&weights).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> =
        file.tensors().into_iter().map(|(n, t)| (n, t.shape().to_vec(), t.data().to_vec())).collect();
    let (_, shape, embed) = tensors.iter_mut().find(|t| t.0 == "model.embed_tokens.weight").unwrap();
    let row_bytes = shape[1] * 2;
    for value in embed[151_669 * row_bytes..].chunks_exact_mut(2) {
        let scaled = half::bf16::from_le_bytes([value[0], value[1]]).to_f32() * 100.0;
        value.copy_from_slice(&half::bf16::from_f32(scaled).to_le_bytes());
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, shape, data)| {
            (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::BF16, shape.clone(), data).unwrap())
        })
        .collect();
    safetensors::serialize_to_file(views, None, &weights).unwrap();

    let engine = MistralEngine::load(&cpu_settings(&dir)).await.expect("the tiny Qwen3 directory loads");
    let regex = "[a-z]{1,8}( [a-z]{1,8}){2,5}\\.".to_owned();
    let request = docent::llm::GenRequest {
        system: "Answer in one short sentence.".into(),
        user: "What does docent do?".into(),
        regex: Some(regex.clone()),
        max_tokens: 48,
        ..Default::default()
    };
    let out = engine.generate(request).await.expect("the constrained answer completes");
    let whole = regex::Regex::new(&format!("^(?:{regex})$")).unwrap();
    assert!(whole.is_match(&out.text), "{:?} is not inside the grammar", out.text);
}

/// `decode_logprobs` (what the GPU check of the decode attention kernels compares with
/// transformers, `docent bench logits --decode-tokens`) gives, for each decoded token, the
/// log-probabilities of the token after it: step i must match the log-softmax of the logits that a
/// prefill of the prompt and the first i decoded tokens gives, which never goes through decode.
#[actix_web::test]
async fn decoded_log_probabilities_match_a_prefill_of_the_same_tokens() {
    let tokenizer_dir = crate::common::models_dir().join("qwen3-tokenizer");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny-qwen3");
    write_random_qwen3(&dir, &Qwen3Shape::TINY, &tokenizer_dir, 5).unwrap();
    let engine = MistralEngine::load(&cpu_settings(&dir)).await.expect("the tiny Qwen3 directory loads");

    let prompt: Vec<u32> = (0..40).map(|i| 1_000 + i * 37).collect();
    let steps = engine.decode_logprobs(prompt.clone(), 4, 16).await.expect("the decode completes");
    assert_eq!(steps.len(), 4);
    let mut ids = prompt;
    let mut worst = 0.0f32;
    for step in &steps {
        assert_eq!(step.len(), 16);
        assert!(step.windows(2).all(|w| w[0].1 >= w[1].1), "most likely first: {step:?}");
        let logits = engine.next_token_logits(ids.clone()).await.unwrap();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let log_z = max + logits.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
        for &(id, lp) in step {
            worst = worst.max((lp - (logits[id as usize] - log_z)).abs());
        }
        ids.push(step[0].0);
    }
    assert!(worst < 1e-3, "decoded log-probabilities differ from the prefill's by up to {worst}");
}

#[test]
fn the_checkpoint_generator_writes_safetensors_that_the_reference_reader_accepts() {
    let tokenizer_dir = crate::common::models_dir().join("qwen3-tokenizer");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    let shape = Qwen3Shape::TINY;
    write_random_qwen3(&dir, &shape, &tokenizer_dir, 5).unwrap();

    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).expect("a valid safetensors file");
    // Embedding, final norm, and 11 tensors per layer (tied embeddings: no lm_head).
    assert_eq!(tensors.len(), 2 + 11 * shape.layers);
    let q = tensors.tensor("model.layers.1.self_attn.q_proj.weight").unwrap();
    assert_eq!(q.dtype(), safetensors::Dtype::BF16);
    assert_eq!(q.shape(), [shape.heads * shape.head_dim, shape.hidden]);
    let down = tensors.tensor("model.layers.0.mlp.down_proj.weight").unwrap();
    assert_eq!(down.shape(), [shape.hidden, shape.intermediate]);
    assert!(down.data().chunks_exact(2).any(|b| b != [0, 0]), "weights are not all zero");
    let norm = tensors.tensor("model.norm.weight").unwrap();
    // bf16 1.0 is 0x3F80, little-endian.
    assert!(norm.data().chunks_exact(2).all(|b| b == [0x80, 0x3F]), "norm weights are ones");

    assert_eq!(Qwen3Shape::from_config(&dir.join("config.json")).unwrap(), shape);
    assert!(dir.join("tokenizer.json").is_file() && dir.join("tokenizer_config.json").is_file());
}

/// `--tensor-parallel` above 1: refused with its reason outside the GPU benchmark (analyses on a
/// split model did not finish on the GPU host), and by a build without NCCL in the benchmark.
#[actix_web::test]
async fn tensor_parallelism_is_refused_with_the_reason_where_it_cannot_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny-qwen3");
    write_random_qwen3(&dir, &Qwen3Shape::TINY, &crate::common::models_dir().join("qwen3-tokenizer"), 1).unwrap();
    let docent = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_docent")).args(args).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let model = dir.to_str().unwrap();
    let (ok, stderr) = docent(&["--tensor-parallel", "2", "--model", model, "serve"]);
    assert!(!ok && stderr.contains("runs only `docent bench gpu`"), "{stderr}");
    let (ok, stderr) = docent(&[
        "--tensor-parallel",
        "2",
        "bench",
        "gpu",
        "--model",
        model,
        "--lengths",
        "256",
        "--peer-python",
        "none",
    ]);
    assert!(!ok && stderr.contains("needs a build with the `nccl` feature"), "{stderr}");
    let (ok, stderr) = docent(&["--tensor-parallel", "0", "--model", model, "summarize", "README.md"]);
    assert!(!ok && stderr.contains("tensor_parallel must be between 1 and 16"), "{stderr}");
}
