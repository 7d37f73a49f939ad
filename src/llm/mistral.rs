//! The in-process engine: mistral.rs loading a local GGUF file or a local
//! safetensors directory (e.g. a Qwen3-4B-Instruct-2507 download).

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use async_trait::async_trait;
use either::Either;
use mistralrs::core::{
    AddModelConfig, AutoDeviceMapParams, DefaultSchedulerMethod, DeviceMapSetting, EngineConfig, GGUFLoaderBuilder,
    GGUFSpecificConfig, ModelDType, SchedulerConfig, TokenSource,
};
use mistralrs::{
    Constraint, MemoryGpuConfig, Model, NormalRequest, PagedAttentionConfig, PagedAttentionMetaBuilder, Request,
    RequestBuilder, RequestMessage, Response, SamplingParams, StopTokens, TextMessageRole, TextMessages,
    TextModelBuilder,
};

use super::{DTypeChoice, Engine, GenOutput, GenRequest, LocalSettings};

/// One 256K-token Qwen3-4B sequence (36 GiB of bf16 KV cache).
pub const DEFAULT_KV_CACHE_TOKENS: usize = 262_144;

pub struct MistralEngine {
    model: Model,
    name: String,
    context_limit: usize,
    /// End-of-text tokens the constrained decoder may force, to stop on (see `grammar_stop_ids`).
    grammar_stops: Vec<u32>,
    /// Held across each request when the model is split over GPUs: mistral.rs 0.8.1 copies every
    /// request to its worker processes, whose schedulers run on their own, and two sequences
    /// running at once left the two H200s waiting on each other for good (at 8K and at 254K
    /// tokens, benches/gpu-report-2gpu.md). One request at a time keeps them in step.
    serial: Option<tokio::sync::Mutex<()>>,
}

/// The end-of-text spellings llguidance takes as its EOS (toktrie_hf_tokenizers).
const GRAMMAR_EOS_SPELLINGS: &[&str] = &["</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>"];

/// Once an answer's grammar is complete, llguidance allows only its EOS
/// token, which it takes from the spellings above: `<|endoftext|>` for Qwen.
/// mistral.rs stops on the chat template's end of turn (`<|im_end|>`), so
/// without these ids as stop tokens the model would be forced to emit
/// invisible end-of-text tokens until the length limit (measured: 384 tokens
/// generated for a 180-token answer, doubling decode time).
async fn grammar_stop_ids(model: &Model) -> Vec<u32> {
    let mut ids = Vec::new();
    for spelling in GRAMMAR_EOS_SPELLINGS {
        if let Ok(toks) = model.tokenize(Either::Right((*spelling).to_owned()), None, false, false, None).await {
            if let [one] = toks.as_slice() {
                ids.push(*one);
            }
        }
    }
    ids
}

impl MistralEngine {
    pub async fn load(settings: &LocalSettings) -> anyhow::Result<Self> {
        let path = &settings.model;
        if !path.exists() {
            bail!("model not found at {} (run scripts/fetch-models.sh, or pass --model)", path.display());
        }
        let device = mistralrs::best_device(settings.force_cpu)?;
        if settings.tensor_parallel > 1 {
            if !cfg!(feature = "nccl") {
                bail!("--tensor-parallel {} needs a build with the `nccl` feature", settings.tensor_parallel);
            }
            if device.is_cpu() || !path.is_dir() {
                bail!("tensor parallelism runs a safetensors directory on GPUs, not a GGUF file or the CPU");
            }
        }
        let dtype = match (settings.dtype, device.is_cpu()) {
            (DTypeChoice::Auto, true) | (DTypeChoice::F32, _) => ModelDType::F32,
            (DTypeChoice::Auto, false) => ModelDType::Auto,
            (DTypeChoice::F16, _) => ModelDType::F16,
            (DTypeChoice::Bf16, _) => ModelDType::BF16,
        };
        // PagedAttention runs on GPUs only; on CPU mistral.rs keeps a contiguous cache per sequence.
        let paged =
            if device.is_cpu() { None } else { Some(paged_config(settings.kv_cache_tokens, settings.kv_cache_dtype)?) };
        tracing::info!(model = %path.display(), ?dtype, device = ?device.location(), paged = paged.is_some(), "loading model");
        let model = if path.is_file() {
            load_gguf(path, dtype, paged, settings).await?
        } else {
            let mut builder = TextModelBuilder::new(path.to_string_lossy())
                .with_dtype(dtype)
                .with_token_source(TokenSource::None)
                .with_max_num_seqs(settings.max_num_seqs);
            if !settings.prefix_cache {
                builder = builder.with_prefix_cache_n(None);
            }
            if let Some(paged) = paged {
                builder = builder.with_paged_attn(paged);
            }
            if settings.force_cpu {
                builder = builder.with_force_cpu();
            }
            builder.build().await?
        };
        let native = model.max_sequence_length().ok().flatten().unwrap_or(4096);
        // A prompt larger than the PagedAttention cache would be dropped with only a log
        // warning, so the cache size is part of the limit every pipeline checks first.
        let cache_cap = if paged.is_some() { settings.kv_cache_tokens } else { usize::MAX };
        let context_limit = settings.max_context.map_or(native, |m| m.min(native)).min(cache_cap);
        let name = super::model_name(path);
        let grammar_stops = grammar_stop_ids(&model).await;
        tracing::info!(%name, context_limit, native, ?grammar_stops, "model ready");
        let serial = (settings.tensor_parallel > 1).then(|| tokio::sync::Mutex::new(()));
        Ok(Self { model, name, context_limit, grammar_stops, serial })
    }

    /// This request's turn: immediate on one GPU, one at a time under tensor parallelism.
    async fn turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.serial {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }

    fn messages(req: &GenRequest) -> TextMessages {
        TextMessages::new()
            .add_message(TextMessageRole::System, &req.system)
            .add_message(TextMessageRole::User, &req.user)
    }
}

fn paged_config(kv_cache_tokens: usize, dtype: super::KvCacheDtype) -> anyhow::Result<PagedAttentionConfig> {
    let cache_type = match dtype {
        super::KvCacheDtype::Auto => mistralrs::PagedCacheType::Auto,
        super::KvCacheDtype::F8e4m3 => mistralrs::PagedCacheType::F8E4M3,
    };
    PagedAttentionMetaBuilder::default()
        .with_gpu_memory(MemoryGpuConfig::ContextSize(kv_cache_tokens))
        .with_paged_cache_type(cache_type)
        .build()
}

/// `GgufModelBuilder` always loads with `ModelDType::Auto`; this is its
/// pipeline construction with the dtype chosen above.
async fn load_gguf(
    path: &Path,
    dtype: ModelDType,
    paged: Option<PagedAttentionConfig>,
    settings: &LocalSettings,
) -> anyhow::Result<Model> {
    let dir = path.parent().map_or_else(|| ".".to_owned(), |d| d.to_string_lossy().into_owned());
    let file =
        path.file_name().ok_or_else(|| anyhow!("bad model path {}", path.display()))?.to_string_lossy().into_owned();
    let loader =
        GGUFLoaderBuilder::new(None, None, dir, vec![file], GGUFSpecificConfig { topology: None }, false, None).build();
    let device = mistralrs::best_device(settings.force_cpu)?;
    let pipeline = loader
        .load_model_from_hf(
            None,
            TokenSource::None,
            &dtype,
            &device,
            true,
            DeviceMapSetting::Auto(AutoDeviceMapParams::default_text()),
            None,
            paged,
        )
        .with_context(|| format!("loading {}", path.display()))?;
    let cache_config = pipeline.lock().await.get_metadata().cache_config.clone();
    let scheduler = match (paged, cache_config) {
        (Some(_), Some(config)) => SchedulerConfig::PagedAttentionMeta { max_num_seqs: settings.max_num_seqs, config },
        _ => SchedulerConfig::DefaultScheduler {
            method: DefaultSchedulerMethod::Fixed(settings.max_num_seqs.max(1).try_into()?),
        },
    };
    let engine_config = EngineConfig { no_prefix_cache: !settings.prefix_cache, ..EngineConfig::default() };
    let add = AddModelConfig { engine_config, mcp_client_config: None, loader_config: None };
    Ok(mistralrs::model_builder_trait::build_model_from_pipeline(pipeline, scheduler, add).await)
}

#[async_trait]
impl Engine for MistralEngine {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn context_limit(&self) -> usize {
        self.context_limit
    }

    async fn count_tokens(&self, text: &str) -> anyhow::Result<usize> {
        let _turn = self.turn().await;
        let ids = self.model.tokenize(Either::Right(text.to_owned()), None, false, false, None).await?;
        Ok(ids.len())
    }

    async fn count_prompt_tokens(&self, req: &GenRequest) -> anyhow::Result<usize> {
        let _turn = self.turn().await;
        let ids = self.model.tokenize(Either::Left(Self::messages(req)), None, true, true, None).await?;
        Ok(ids.len())
    }

    async fn generate(&self, req: GenRequest) -> anyhow::Result<GenOutput> {
        let _turn = self.turn().await;
        // set_deterministic_sampler resets every sampling setting, so it comes first.
        let mut builder =
            RequestBuilder::from(Self::messages(&req)).set_deterministic_sampler().set_sampler_max_len(req.max_tokens);
        if let Some(re) = &req.regex {
            builder = builder.set_constraint(Constraint::Regex(re.clone()));
            if !self.grammar_stops.is_empty() {
                builder = builder.set_sampler_stop_toks(StopTokens::Ids(self.grammar_stops.clone()));
            }
        }
        let response = self.model.send_chat_request(builder).await?;
        let text = response.choices.first().and_then(|c| c.message.content.clone()).unwrap_or_default();
        let usage = &response.usage;
        Ok(GenOutput {
            text,
            prompt_tokens: usage.prompt_tokens,
            // mistral.rs 0.8.1 reuses cached prefixes without reporting how many tokens.
            cached_tokens: None,
            completion_tokens: usage.completion_tokens,
            prefill_ms: secs_to_ms(usage.total_prompt_time_sec),
            decode_ms: secs_to_ms(usage.total_completion_time_sec),
        })
    }
}

/// What one benchmark completion measured, as mistral.rs timed it.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct TimedCompletion {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Prompt step: prefill plus sampling the first token (time to first token).
    pub prefill_s: f64,
    /// From the first token to the last.
    pub decode_s: f64,
    /// Wall clock from sending the request to its response, queueing included.
    pub wall_s: f64,
}

impl MistralEngine {
    /// A greedy completion of raw token ids with no chat template, for benchmarks. End-of-text
    /// tokens are banned so that a model (random weights included) decodes all `max_tokens`.
    pub async fn timed_completion(&self, prompt: Vec<u32>, max_tokens: usize) -> anyhow::Result<TimedCompletion> {
        let _turn = self.turn().await;
        let mut banned = self.grammar_stops.clone();
        for spelling in ["<|im_end|>", "<|eot_id|>", "<end_of_turn>"] {
            if let Ok(ids) = self.model.tokenize(Either::Right(spelling.to_owned()), None, false, false, None).await {
                if let [one] = ids.as_slice() {
                    banned.push(*one);
                }
            }
        }
        let mut params = SamplingParams::deterministic();
        params.max_len = Some(max_tokens);
        params.logits_bias = Some(banned.into_iter().map(|id| (id, -1e9)).collect());
        let mistral = self.model.inner();
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let request = NormalRequest::new_simple(
            RequestMessage::CompletionTokens(prompt),
            params,
            tx,
            mistral.next_request_id(),
            None,
            None,
        );
        let start = std::time::Instant::now();
        mistral.get_sender(None)?.send(Request::Normal(Box::new(request))).await?;
        let usage = match rx.recv().await {
            Some(Response::CompletionDone(done)) => done.usage,
            Some(Response::CompletionModelError(msg, _)) => bail!("model error: {msg}"),
            Some(Response::InternalError(e) | Response::ValidationError(e)) => bail!("engine error: {e}"),
            Some(_) => bail!("unexpected response to a completion request"),
            None => bail!("the engine dropped the request (is the prompt larger than the KV cache?)"),
        };
        Ok(TimedCompletion {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            prefill_s: f64::from(usage.total_prompt_time_sec),
            decode_s: f64::from(usage.total_completion_time_sec),
            wall_s: start.elapsed().as_secs_f64(),
        })
    }
}

impl MistralEngine {
    /// The token ids of `text` with the model's tokenizer, no special tokens added.
    pub async fn tokenize(&self, text: &str) -> anyhow::Result<Vec<u32>> {
        let _turn = self.turn().await;
        Ok(self.model.tokenize(Either::Right(text.to_owned()), None, false, false, None).await?)
    }

    /// The text of `ids`, special tokens left out, as answers are decoded.
    pub async fn detokenize(&self, ids: Vec<u32>) -> anyhow::Result<String> {
        let _turn = self.turn().await;
        Ok(self.model.detokenize(ids, true).await?)
    }

    /// The token ids a chat request sends: system and user turn through the chat template,
    /// ready for the assistant's answer.
    pub async fn prompt_ids(&self, req: &GenRequest) -> anyhow::Result<Vec<u32>> {
        let _turn = self.turn().await;
        Ok(self.model.tokenize(Either::Left(Self::messages(req)), None, true, true, None).await?)
    }

    /// The logits the model gives the token after `prompt` (raw token ids, no chat template),
    /// one per vocabulary entry: what checks of a converted checkpoint compare.
    pub async fn next_token_logits(&self, prompt: Vec<u32>) -> anyhow::Result<Vec<f32>> {
        let _turn = self.turn().await;
        let mistral = self.model.inner();
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let mut request = NormalRequest::new_simple(
            RequestMessage::CompletionTokens(prompt),
            SamplingParams::deterministic(),
            tx,
            mistral.next_request_id(),
            None,
            None,
        );
        request.return_raw_logits = true;
        mistral.get_sender(None)?.send(Request::Normal(Box::new(request))).await?;
        match rx.recv().await {
            Some(Response::Raw { logits_chunks, .. }) => {
                let chunk = logits_chunks.last().context("no logits came back")?;
                let vocab = chunk.dims().last().copied().context("logits without dimensions")?;
                let all = chunk.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                // The last position's row, whether the model returned one row or all of them.
                Ok(all.get(all.len().saturating_sub(vocab)..).unwrap_or_default().to_vec())
            }
            Some(Response::InternalError(e) | Response::ValidationError(e)) => bail!("engine error: {e}"),
            Some(_) => bail!("unexpected response to a raw-logits request"),
            None => bail!("the engine dropped the request"),
        }
    }
}

fn secs_to_ms(s: f32) -> u64 {
    if s.is_finite() && s > 0.0 {
        (f64::from(s) * 1000.0).round() as u64
    } else {
        0
    }
}
