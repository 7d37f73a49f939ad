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
    Constraint, MemoryGpuConfig, Model, NormalRequest, PagedAttentionConfig, PagedAttentionMetaBuilder,
    PrefillProgress, Request, RequestBuilder, RequestLike, RequestMessage, Response, SamplingParams, StopTokens,
    TextMessageRole, TextMessages, TextModelBuilder, Usage,
};

use super::{DTypeChoice, Engine, GenOutput, GenRequest, LocalSettings, Progress};

/// One 256K-token Qwen3-4B sequence (36 GiB of bf16 KV cache).
pub const DEFAULT_KV_CACHE_TOKENS: usize = 262_144;

/// Tokens per PagedAttention block (mistral.rs's default, set explicitly because admission counts
/// in blocks; the paged flash-attention kernel needs a multiple of 32).
const KV_BLOCK_TOKENS: usize = 32;

/// The most prompt tokens one engine step prefills together (a longer prompt runs alone), so that
/// many waiting prompts do not enter one step whose activations outgrow the memory beside the KV
/// cache. Not enough by itself: 64 prompts of 4K–64K tokens beside a 90 GiB cache still run the
/// H200 out of memory with it (benches/gpu-report.md, run 10).
const PROMPT_STEP_TOKENS: usize = 65_536;

/// Prompt tokens per prefill pass on the GPU, in a build with FlashAttention-3, unless
/// `--prefill-chunk-tokens` says otherwise.
const PREFILL_CHUNK_TOKENS: usize = 4096;

/// Prompt tokens per prefill pass, and per engine step before running sequences decode again.
pub fn prefill_steps(settings: &LocalSettings) -> (usize, usize) {
    let chunk = if cfg!(feature = "flash-attn-v3") { PREFILL_CHUNK_TOKENS } else { settings.kv_cache_tokens };
    let chunk = settings.prefill_chunk_tokens.unwrap_or(chunk);
    (chunk, settings.prefill_step_tokens.unwrap_or(chunk))
}

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
    /// PagedAttention's blocks, handed out before a request reaches mistral.rs: a request waits
    /// here until its prompt and its longest answer fit beside the running ones, so the engine
    /// never runs out of blocks (it would preempt a running sequence and prefill it again) and
    /// never drops a prompt larger than what is free. `None` on the CPU (no paged cache).
    kv_blocks: Option<KvBudget>,
}

/// The KV cache in blocks, as a semaphore of blocks.
struct KvBudget {
    blocks: tokio::sync::Semaphore,
    total: usize,
}

impl KvBudget {
    /// The blocks mistral.rs makes of a `tokens` cache, less two: it rounds the cache down to whole
    /// MiB, and keeps one block aside as the null block.
    fn new(tokens: usize) -> Self {
        let total = (tokens / KV_BLOCK_TOKENS).saturating_sub(2);
        Self { blocks: tokio::sync::Semaphore::new(total), total }
    }

    /// The longest sequence (prompt and answer) that fits in the cache alone.
    fn max_tokens(&self) -> usize {
        (self.total * KV_BLOCK_TOKENS).saturating_sub(1)
    }

    /// Waits until `tokens` (a prompt and its answer) fit in the free blocks, and holds them.
    async fn reserve(&self, tokens: usize) -> anyhow::Result<tokio::sync::SemaphorePermit<'_>> {
        // The slot of the token after the last is taken before it is sampled.
        let need = (tokens + 1).div_ceil(KV_BLOCK_TOKENS);
        if need > self.total {
            bail!("{tokens} tokens do not fit the {}-token KV cache", self.total * KV_BLOCK_TOKENS);
        }
        Ok(self.blocks.acquire_many(u32::try_from(need)?).await?)
    }
}

/// Greedy decoding that the model's `generation_config.json` cannot change: mistral.rs fills every
/// sampling field a request leaves unset from it (a repetition penalty would move the argmax).
fn greedy(max_len: usize) -> SamplingParams {
    let mut params = SamplingParams::deterministic();
    params.max_len = Some(max_len);
    params.repetition_penalty = Some(1.0);
    params
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
        // With MISTRALRS_DEBUG=1 mistral.rs logs every engine step: the lengths of its sequences
        // and its milliseconds. It reads that variable only when it sets up logging itself;
        // docent's logging is set up already, so this call only turns the step log on.
        if std::env::var("MISTRALRS_DEBUG").is_ok_and(|v| v.contains('1')) {
            mistralrs::initialize_logging();
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
        if settings.kv_cache_dtype == super::KvCacheDtype::F8e4m3 && !device.is_cpu() {
            // mistral.rs v0.9.2's FlashInfer decode kernel reads f16/bf16/f32 caches only and
            // fails on an FP8 one at the first prompt; the PagedAttention v1/v2 kernels read FP8.
            // The switch is process-wide and read at each step, so it is set before any model
            // loads (benches/gpu-report.md: FP8 decodes slower this way).
            std::env::set_var("MISTRALRS_FLASHINFER_DECODE", "0");
        }
        // PagedAttention runs on GPUs only; on CPU mistral.rs keeps a contiguous cache per sequence.
        let paged =
            if device.is_cpu() { None } else { Some(paged_config(settings.kv_cache_tokens, settings.kv_cache_dtype)?) };
        if paged.is_some() {
            // Both settings are process-wide in mistral.rs and read at every step. In chunks, every
            // chunk after a prompt's first gathers the cached keys and values and runs through
            // FlashAttention-3 on Hopper like the first (vendor/mistral.rs/README.docent.md): a
            // 262,080-token prefill takes 39.8 s in 4,096-token chunks and 40.0 s in one pass, and
            // the chunks need 31 GiB less GPU memory (benches/gpu-report.md, run 9).
            // Without FA3 those chunks go through the paged FA2 kernel (91.9 s against 65.0 s in one
            // pass, runs 7 and 9), so a build without it prefills each prompt in one pass.
            let (chunk, step) = prefill_steps(settings);
            mistralrs::set_paged_prefill_chunk_size(chunk);
            mistralrs::set_prompt_step_token_budget(PROMPT_STEP_TOKENS);
            // Interleaved prefill (vendor patch): after this many prompt tokens the running
            // sequences decode a token before the prompt goes on, so that a long document arriving
            // holds each running answer up by one chunk's prefill, not by its whole prefill.
            mistralrs::set_prefill_step_tokens(step);
            // After each prompt chunk, the prompt tokens in the cache so far (vendor patch): the
            // analysis stream's `prefill` events on a GPU.
            mistralrs::set_prefill_progress(true);
        }
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
        // mistral.rs rejects a sequence larger than its PagedAttention cache only after it has
        // waited and preempted another, so the cache size is part of the limit every pipeline
        // checks first, and each request waits for its blocks before it is sent (`KvBudget`).
        let kv_blocks = paged.is_some().then(|| KvBudget::new(settings.kv_cache_tokens));
        let cache_cap = kv_blocks.as_ref().map_or(usize::MAX, KvBudget::max_tokens);
        let context_limit = settings.max_context.map_or(native, |m| m.min(native)).min(cache_cap);
        let name = super::model_name(path);
        let grammar_stops = grammar_stop_ids(&model).await;
        tracing::info!(%name, context_limit, native, ?grammar_stops, "model ready");
        let serial = (settings.tensor_parallel > 1).then(|| tokio::sync::Mutex::new(()));
        Ok(Self { model, name, context_limit, grammar_stops, serial, kv_blocks })
    }

    /// This request's turn: immediate on one GPU, one at a time under tensor parallelism.
    async fn turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.serial {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }

    /// The KV blocks of a request of `tokens` (prompt and answer), once they are free.
    async fn reserve(&self, tokens: usize) -> anyhow::Result<Option<tokio::sync::SemaphorePermit<'_>>> {
        match &self.kv_blocks {
            Some(budget) => Ok(Some(budget.reserve(tokens).await?)),
            None => Ok(None),
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
        .with_block_size(KV_BLOCK_TOKENS)
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
        GGUFLoaderBuilder::new(None, None, dir, vec![file], GGUFSpecificConfig::default(), false, None).build();
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
    let add = AddModelConfig::new(engine_config);
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
        let _blocks = match self.kv_blocks {
            Some(_) => {
                let prompt = self.model.tokenize(Either::Left(Self::messages(&req)), None, true, true, None).await?;
                self.reserve(prompt.len() + req.max_tokens).await?
            }
            None => None,
        };
        // set_sampling replaces every sampling setting, so it comes first.
        let mut builder = RequestBuilder::from(Self::messages(&req)).set_sampling(greedy(req.max_tokens));
        if let Some(re) = &req.regex {
            builder = builder.set_constraint(Constraint::Regex(re.clone()));
            if !self.grammar_stops.is_empty() {
                builder = builder.set_sampler_stop_toks(StopTokens::Ids(self.grammar_stops.clone()));
            }
        }
        let mut request = NormalRequest::new_simple(
            builder.take_messages(),
            builder.take_sampling_params(),
            tokio::sync::mpsc::channel(1).0,
            self.model.inner().next_request_id(),
            None,
            None,
        );
        request.constraint = builder.take_constraint();
        let progress = super::progress_sender();
        let finished = self
            .send(request, |p| {
                if let Some(tx) = &progress {
                    let _ = tx.send(Progress::Prefill { done: p.done, total: p.total });
                }
            })
            .await?;
        let usage = &finished.usage;
        // One line a request: a question's second request shows here whether it reused the
        // first one's cached prompt (its prompt time falls to a fraction of the first's).
        tracing::debug!(
            prompt_tokens = usage.prompt_tokens,
            prompt_s = usage.total_prompt_time_sec,
            completion_tokens = usage.completion_tokens,
            completion_s = usage.total_completion_time_sec,
            "request done"
        );
        Ok(GenOutput {
            text: finished.text,
            prompt_tokens: usage.prompt_tokens,
            // mistral.rs reuses cached prefixes without reporting how many tokens.
            cached_tokens: None,
            completion_tokens: usage.completion_tokens,
            prefill_ms: secs_to_ms(usage.total_prompt_time_sec),
            decode_ms: secs_to_ms(usage.total_completion_time_sec),
        })
    }
}

/// How a request sent straight to the engine ended.
struct Finished {
    text: String,
    usage: Usage,
    /// Per generated token, when the request asked for log-probabilities.
    logprobs: Option<Vec<mistralrs::core::ResponseLogprob>>,
}

impl MistralEngine {
    /// Sends `request` to the engine (its response channel replaced by one read here), passes each
    /// prefill report to `on_prefill`, and returns the answer.
    async fn send(
        &self,
        mut request: NormalRequest,
        mut on_prefill: impl FnMut(PrefillProgress),
    ) -> anyhow::Result<Finished> {
        // Room for the reports of a long prompt: the engine drops a report rather than wait.
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        request.response = tx;
        self.model.inner().get_sender(None)?.send(Request::Normal(Box::new(request))).await?;
        loop {
            match rx.recv().await {
                Some(Response::PrefillProgress(p)) => on_prefill(p),
                Some(Response::Done(done)) => {
                    let choice = done.choices.into_iter().next();
                    let logprobs = choice.as_ref().and_then(|c| c.logprobs.clone()).and_then(|l| l.content);
                    let text = choice.and_then(|c| c.message.content).unwrap_or_default();
                    return Ok(Finished { text, usage: done.usage, logprobs });
                }
                Some(Response::CompletionDone(done)) => {
                    let choice = done.choices.into_iter().next();
                    let logprobs = choice.as_ref().and_then(|c| c.logprobs.clone()).and_then(|l| l.content);
                    let text = choice.map(|c| c.text).unwrap_or_default();
                    return Ok(Finished { text, usage: done.usage, logprobs });
                }
                Some(Response::ModelError(msg, _) | Response::CompletionModelError(msg, _)) => {
                    bail!("model error: {msg}")
                }
                Some(Response::InternalError(e) | Response::ValidationError(e)) => bail!("engine error: {e}"),
                Some(_) => bail!("unexpected response from the engine"),
                None => bail!("the engine dropped the request (is the prompt larger than the KV cache?)"),
            }
        }
    }
}

/// What one benchmark completion measured, as mistral.rs timed it.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct TimedCompletion {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Prompt step: prefill plus sampling the first token (time to first token).
    pub prefill_s: f64,
    /// From the first token to the last.
    pub decode_s: f64,
    /// Wall clock from sending the request to its response, queueing included.
    pub wall_s: f64,
    /// Prefill reports the engine sent (one per prompt chunk on a GPU), and the wall clock of the
    /// first and last since sending.
    pub prefill_reports: usize,
    pub first_report_s: Option<f64>,
    pub last_report_s: Option<f64>,
}

impl MistralEngine {
    /// A greedy completion of raw token ids with no chat template, for benchmarks. End-of-text
    /// tokens are banned so that a model (random weights included) decodes all `max_tokens`.
    pub async fn timed_completion(&self, prompt: Vec<u32>, max_tokens: usize) -> anyhow::Result<TimedCompletion> {
        let _turn = self.turn().await;
        let prompt_len = prompt.len();
        let request = self.bench_request(prompt, max_tokens).await;
        let start = std::time::Instant::now();
        let _blocks = self.reserve(prompt_len + max_tokens).await?;
        let mut reports = Vec::new();
        let finished = self.send(request, |_| reports.push(start.elapsed().as_secs_f64())).await?;
        let usage = finished.usage;
        Ok(TimedCompletion {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            prefill_s: f64::from(usage.total_prompt_time_sec),
            decode_s: f64::from(usage.total_completion_time_sec),
            wall_s: start.elapsed().as_secs_f64(),
            prefill_reports: reports.len(),
            first_report_s: reports.first().copied(),
            last_report_s: reports.last().copied(),
        })
    }
}

impl MistralEngine {
    /// A greedy request of raw token ids that decodes all `max_tokens`: end-of-text tokens banned.
    async fn bench_request(&self, prompt: Vec<u32>, max_tokens: usize) -> NormalRequest {
        let mut banned = self.grammar_stops.clone();
        for spelling in ["<|im_end|>", "<|eot_id|>", "<end_of_turn>"] {
            if let Ok(ids) = self.model.tokenize(Either::Right(spelling.to_owned()), None, false, false, None).await {
                if let [one] = ids.as_slice() {
                    banned.push(*one);
                }
            }
        }
        let mut params = greedy(max_tokens);
        params.logits_bias = Some(banned.into_iter().map(|id| (id, -1e9)).collect());
        NormalRequest::new_simple(
            RequestMessage::CompletionTokens(prompt),
            params,
            tokio::sync::mpsc::channel(1).0,
            self.model.inner().next_request_id(),
            None,
            None,
        )
    }

    /// A greedy completion of raw token ids (end-of-text banned, as `timed_completion`) that also
    /// returns, for each generated token, the `top` most likely tokens with their log-probabilities
    /// (the generated token first): what checks of the decode attention kernels compare.
    pub async fn decode_logprobs(&self, prompt: Vec<u32>, max_tokens: usize, top: usize) -> anyhow::Result<Vec<Vec<(u32, f32)>>> {
        let _turn = self.turn().await;
        let _blocks = self.reserve(prompt.len() + max_tokens).await?;
        let mut request = self.bench_request(prompt, max_tokens).await;
        request.return_logprobs = true;
        request.sampling_params.top_n_logprobs = top;
        let steps = self.send(request, |_| {}).await?.logprobs.context("the engine returned no log-probabilities")?;
        Ok(steps.into_iter().map(|step| step.top_logprobs.into_iter().map(|t| (t.token, t.logprob)).collect()).collect())
    }

    /// Like `timed_completion`, streamed: when each piece of the answer arrived, in seconds since
    /// the request was sent (a piece is a token, or a few when the detokenizer holds bytes back),
    /// and the text of each piece.
    pub async fn timed_stream(&self, prompt: Vec<u32>, max_tokens: usize) -> anyhow::Result<(Vec<f64>, Vec<String>)> {
        let _turn = self.turn().await;
        let _blocks = self.reserve(prompt.len() + max_tokens).await?;
        let mut request = self.bench_request(prompt, max_tokens).await;
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        request.response = tx;
        request.is_streaming = true;
        let start = std::time::Instant::now();
        self.model.inner().get_sender(None)?.send(Request::Normal(Box::new(request))).await?;
        let mut arrivals = Vec::with_capacity(max_tokens);
        let mut pieces = Vec::with_capacity(max_tokens);
        loop {
            match rx.recv().await {
                Some(Response::PrefillProgress(_)) => {}
                Some(Response::CompletionChunk(chunk)) => {
                    arrivals.push(start.elapsed().as_secs_f64());
                    pieces.push(chunk.choices.iter().map(|c| c.text.as_str()).collect());
                    if chunk.choices.iter().any(|c| c.finish_reason.is_some()) {
                        return Ok((arrivals, pieces));
                    }
                }
                Some(Response::CompletionDone(_)) => return Ok((arrivals, pieces)),
                Some(Response::CompletionModelError(msg, _)) => bail!("model error: {msg}"),
                Some(Response::InternalError(e) | Response::ValidationError(e)) => bail!("engine error: {e}"),
                Some(_) => bail!("unexpected response from the engine"),
                None => bail!("the engine dropped the request"),
            }
        }
    }

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
            greedy(1),
            tx,
            mistral.next_request_id(),
            None,
            None,
        );
        request.return_raw_logits = true;
        mistral.get_sender(None)?.send(Request::Normal(Box::new(request))).await?;
        let mut response = rx.recv().await;
        while let Some(Response::PrefillProgress(_)) = response {
            response = rx.recv().await;
        }
        match response {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_request_waits_for_kv_blocks_until_a_running_one_frees_them() {
        // 64 blocks less the two mistral.rs keeps: 62 blocks, 1,983 tokens in one sequence.
        let budget = KvBudget::new(64 * KV_BLOCK_TOKENS);
        assert_eq!(budget.max_tokens(), 62 * KV_BLOCK_TOKENS - 1);
        let first = budget.reserve(40 * KV_BLOCK_TOKENS).await.expect("fits an empty cache");
        // 41 blocks taken (the slot after the last token included): 21 left, too few for 30.
        let second = budget.reserve(30 * KV_BLOCK_TOKENS);
        tokio::pin!(second);
        assert!(tokio::time::timeout(Duration::from_millis(50), &mut second).await.is_err(), "it must wait");
        drop(first);
        let second = tokio::time::timeout(Duration::from_millis(50), second).await.expect("admitted once freed");
        assert!(second.is_ok());
    }

    #[tokio::test]
    async fn a_request_larger_than_the_whole_cache_is_refused_not_queued() {
        let budget = KvBudget::new(64 * KV_BLOCK_TOKENS);
        let err = budget.reserve(budget.max_tokens() + 1).await.expect_err("never fits");
        assert!(err.to_string().contains("do not fit"), "{err}");
        assert!(budget.reserve(budget.max_tokens()).await.is_ok());
    }
}
