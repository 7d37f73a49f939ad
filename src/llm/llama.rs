//! The CPU engine: llama.cpp in this process (crate `llama-cpp-2`, built from the llama.cpp
//! source it vendors) on a GGUF file. On CPU it prefills several times faster than mistral.rs
//! on the same file (`docent bench cpu`, README "CPU speed"), so GGUF models on CPU run here and
//! mistral.rs stays the GPU engine.
//!
//! One thread owns the llama.cpp context and runs one sequence at a time; a job's KV cache
//! stays after it, so the next prompt that starts with the same tokens (a second question on
//! the same document) decodes only what differs. Answers are constrained by llguidance, the
//! library mistral.rs uses, so a regex means the same on both engines.

use std::num::NonZeroU32;
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use async_trait::async_trait;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};

use super::{Engine, GenOutput, GenRequest, LocalSettings, Progress, ProgressSender, TimedCompletion};

/// Tokens decoded per llama.cpp call while prefilling: llama.cpp's own micro-batch, so progress is
/// reported every few seconds on a CPU at no cost in speed.
const BATCH: usize = 512;

/// The context (prompt and answer) when --max-context does not say: 32K tokens, the default
/// model's own, whose KV cache takes 384 MiB.
const CPU_CONTEXT: usize = 32_768;

/// llama.cpp's backend may be initialised once per process; every engine shares it.
fn backend() -> anyhow::Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| anyhow!("starting llama.cpp: {e}"))
}

/// Threads llama.cpp computes with: every core this process may use.
pub fn cpu_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What the decoding thread is asked to do: continue `prompt` greedily.
struct Job {
    prompt: Vec<LlamaToken>,
    max_tokens: usize,
    /// The answer's grammar; `None` decodes freely until an end-of-generation token.
    matcher: Option<Matcher>,
    /// Never end early (benchmarks): end-of-generation tokens are not chosen.
    ban_end: bool,
    /// Start from the cached keys and values of the prompt's first tokens, where they match.
    reuse_cache: bool,
    /// Where prefill progress and the answer's text go as they come.
    progress: Option<ProgressSender>,
    reply: tokio::sync::oneshot::Sender<anyhow::Result<Decoded>>,
}

struct Decoded {
    tokens: Vec<LlamaToken>,
    prompt_tokens: usize,
    /// Prompt tokens whose KV came from the previous job (not decoded again).
    reused: usize,
    /// Prefill and the choice of the first token (time to first token).
    prefill: Duration,
    /// From the first token to the last.
    decode: Duration,
}

pub struct LlamaEngine {
    model: Arc<LlamaModel>,
    template: LlamaChatTemplate,
    factory: Arc<ParserFactory>,
    name: String,
    context_limit: usize,
    prefix_cache: bool,
    jobs: mpsc::Sender<Job>,
}

impl LlamaEngine {
    pub async fn load(settings: &LocalSettings) -> anyhow::Result<Self> {
        let path = settings.model.clone();
        if !path.is_file() {
            bail!("model not found at {} (run scripts/fetch-models.sh, or pass --model)", path.display());
        }
        let prefix_cache = settings.prefix_cache;
        let max_context = settings.max_context;
        tokio::task::spawn_blocking(move || Self::load_blocking(&path, max_context, prefix_cache)).await?
    }

    fn load_blocking(path: &std::path::Path, max_context: Option<usize>, prefix_cache: bool) -> anyhow::Result<Self> {
        let backend = backend()?;
        tracing::info!(model = %path.display(), threads = cpu_threads(), "loading model into llama.cpp");
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| anyhow!("loading {}: {e}", path.display()))?;
        let native = usize::try_from(model.n_ctx_train()).unwrap_or(4096);
        // llama.cpp allocates the whole KV cache up front: a 256K-token model would take tens of
        // GiB of RAM, so a larger context than CPU_CONTEXT is asked for with --max-context.
        let context_limit = max_context.unwrap_or(CPU_CONTEXT).min(native);
        let template = model
            .chat_template(None)
            .map_err(|e| anyhow!("{} has no chat template llama.cpp can apply: {e}", path.display()))?;
        let factory = Arc::new(ParserFactory::new_simple(&LlamaSampler::llguidance_tok_env(&model))?);
        let model = Arc::new(model);
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<anyhow::Result<()>>();
        let worker_model = Arc::clone(&model);
        let n_ctx = u32::try_from(context_limit)?;
        std::thread::Builder::new().name("llama.cpp".into()).spawn(move || {
            let ctx = match new_context(backend, &worker_model, n_ctx) {
                Ok(ctx) => {
                    let _ = ready_tx.send(Ok(()));
                    ctx
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            serve(ctx, &worker_model, &inbox);
        })?;
        ready_rx.recv().context("the llama.cpp thread ended while starting")??;
        let name = super::model_name(path);
        tracing::info!(%name, context_limit, native, "model ready (llama.cpp)");
        Ok(Self { model, template, factory, name, context_limit, prefix_cache, jobs })
    }

    /// The chat prompt `req` sends, as text: system and user turn through the model's template,
    /// ready for the assistant's answer.
    fn chat_prompt(&self, req: &GenRequest) -> anyhow::Result<String> {
        let messages = [
            LlamaChatMessage::new("system".into(), req.system.clone())?,
            LlamaChatMessage::new("user".into(), req.user.clone())?,
        ];
        Ok(self.model.apply_chat_template(&self.template, &messages, true)?)
    }

    /// Token ids of `text`; `chat` for a templated prompt (special tokens parsed, BOS added
    /// where the model wants one, as llama-server does), else the text alone.
    async fn tokens(&self, text: String, chat: bool) -> anyhow::Result<Vec<LlamaToken>> {
        let model = Arc::clone(&self.model);
        Ok(tokio::task::spawn_blocking(move || model.vocab().tokenize(text.as_bytes(), chat, chat)).await?)
    }

    async fn run(
        &self,
        prompt: Vec<LlamaToken>,
        max_tokens: usize,
        matcher: Option<Matcher>,
        // End-of-text banned (benchmarks); the prompt's prefix reused even with the cache off.
        (ban_end, reuse_prefix): (bool, bool),
        progress: Option<ProgressSender>,
    ) -> anyhow::Result<Decoded> {
        if prompt.is_empty() {
            bail!("empty prompt");
        }
        if prompt.len() + 1 > self.context_limit {
            bail!("prompt of {} tokens exceeds the context of {} tokens", prompt.len(), self.context_limit);
        }
        let max_tokens = max_tokens.min(self.context_limit - prompt.len());
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job {
                prompt,
                max_tokens,
                matcher,
                ban_end,
                reuse_cache: (self.prefix_cache || reuse_prefix) && !ban_end,
                progress,
                reply,
            })
            .map_err(|_| anyhow!("the llama.cpp thread has stopped"))?;
        answer.await.map_err(|_| anyhow!("the llama.cpp thread dropped the request"))?
    }

    fn text(&self, tokens: &[LlamaToken]) -> String {
        let vocab = self.model.vocab();
        let bytes: Vec<u8> = tokens.iter().flat_map(|t| vocab.token_to_piece(*t, false, None)).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The token ids of `text`, no special tokens added (benchmark prompts).
    pub async fn tokenize(&self, text: &str) -> anyhow::Result<Vec<u32>> {
        Ok(self.tokens(text.to_owned(), false).await?.into_iter().map(|t| t.0.cast_unsigned()).collect())
    }

    /// A greedy completion of raw token ids with no chat template, for benchmarks: the KV cache
    /// is not reused and end-of-generation tokens are banned, so all `max_tokens` are decoded.
    pub async fn timed_completion(&self, prompt: Vec<u32>, max_tokens: usize) -> anyhow::Result<TimedCompletion> {
        let prompt: Vec<LlamaToken> = prompt.into_iter().map(|t| LlamaToken(t.cast_signed())).collect();
        let start = Instant::now();
        let done = self.run(prompt, max_tokens, None, (true, false), None).await?;
        Ok(TimedCompletion {
            prompt_tokens: done.prompt_tokens,
            completion_tokens: done.tokens.len(),
            prefill_s: done.prefill.as_secs_f64(),
            decode_s: done.decode.as_secs_f64(),
            wall_s: start.elapsed().as_secs_f64(),
            ..TimedCompletion::default()
        })
    }
}

/// A context with llama.cpp's defaults but for its size and threads. Flash attention stays `auto`
/// (on, on CPUs): measured on 2 cores with the 0.5B model, turning it off decodes a 16K-token
/// prompt's answer 1.7x faster (15.7 against 9.4 tok/s) but prefills 17% slower (74.8 against 89.9
/// tok/s), and prefill is most of a long document's time.
fn new_context<'m>(backend: &LlamaBackend, model: &'m LlamaModel, n_ctx: u32) -> anyhow::Result<LlamaContext<'m>> {
    let threads = i32::try_from(cpu_threads())?;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(u32::try_from(BATCH)?)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    model.new_context(backend, params).map_err(|e| anyhow!("creating a llama.cpp context of {n_ctx} tokens: {e}"))
}

/// The decoding thread: jobs one at a time until every sender is gone.
fn serve(mut ctx: LlamaContext<'_>, model: &LlamaModel, inbox: &mpsc::Receiver<Job>) {
    // Tokens whose keys and values are in the context's cache, in order from position 0.
    let mut cached: Vec<LlamaToken> = Vec::new();
    while let Ok(mut job) = inbox.recv() {
        if job.reply.is_closed() {
            continue;
        }
        // llama-cpp-2 asserts in places; a panic fails this job, not every later one.
        let run =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode(&mut ctx, model, &mut cached, &mut job)));
        let result = run.unwrap_or_else(|_| Err(anyhow!("llama.cpp stopped on an internal error")));
        if result.is_err() {
            // The cache's contents are no longer known.
            ctx.clear_kv_cache();
            cached.clear();
        }
        let _ = job.reply.send(result);
    }
}

fn decode(
    ctx: &mut LlamaContext<'_>,
    model: &LlamaModel,
    cached: &mut Vec<LlamaToken>,
    job: &mut Job,
) -> anyhow::Result<Decoded> {
    let Job { prompt, max_tokens, matcher, ban_end, reuse_cache, progress, .. } = job;
    let (prompt, max_tokens, ban_end, progress) = (prompt.as_slice(), *max_tokens, *ban_end, progress.as_ref());
    let report = |p: Progress| {
        if let Some(tx) = progress {
            let _ = tx.send(p);
        }
    };
    let start = Instant::now();
    // At least the prompt's last token is decoded, for the logits of the first answer token.
    let reused = if *reuse_cache {
        cached.iter().zip(prompt).take_while(|(a, b)| a == b).count().min(prompt.len() - 1)
    } else {
        0
    };
    if reused == 0 {
        ctx.clear_kv_cache();
    } else {
        ctx.clear_kv_cache_seq(Some(0), Some(u32::try_from(reused)?), None)?;
    }
    cached.truncate(reused);
    report(Progress::Prefill { done: reused, total: prompt.len() });

    let mut batch = LlamaBatch::new(BATCH, 1);
    let rest = prompt.get(reused..).unwrap_or_default();
    let mut pos = reused;
    for part in rest.chunks(BATCH) {
        batch.clear();
        for (i, token) in part.iter().enumerate() {
            let last = pos + i + 1 == prompt.len();
            batch.add(*token, i32::try_from(pos + i)?, &[0], last)?;
        }
        ctx.decode(&mut batch).map_err(|e| anyhow!("llama.cpp prefill: {e}"))?;
        cached.extend_from_slice(part);
        pos += part.len();
        report(Progress::Prefill { done: pos, total: prompt.len() });
    }

    let vocab = model.vocab();
    let mut tokens = Vec::new();
    // Bytes of the answer not yet reported: a character may span tokens.
    let mut unsent: Vec<u8> = Vec::new();
    let mut first_token_at = None;
    loop {
        let logits = ctx.get_logits_ith(batch.n_tokens() - 1);
        let mask = match matcher.as_mut() {
            Some(m) => Some(m.compute_mask_or_eos().map_err(|e| anyhow!("answer grammar: {e}"))?),
            None => None,
        };
        let mut best: Option<(usize, f32)> = None;
        for (id, &logit) in logits.iter().enumerate() {
            let allowed = mask.as_ref().is_none_or(|m| m.is_allowed(u32::try_from(id).unwrap_or(u32::MAX)))
                && !(ban_end && vocab.is_eog(LlamaToken(i32::try_from(id).unwrap_or(i32::MAX))));
            if allowed && best.is_none_or(|(_, b)| logit > b) {
                best = Some((id, logit));
            }
        }
        let (id, _) = best.context("the answer grammar allows no token")?;
        let token = LlamaToken(i32::try_from(id)?);
        first_token_at.get_or_insert_with(Instant::now);
        if vocab.is_eog(token) {
            break;
        }
        if let Some(m) = matcher.as_mut() {
            m.consume_token(token.0.cast_unsigned()).map_err(|e| anyhow!("answer grammar: {e}"))?;
        }
        tokens.push(token);
        if progress.is_some() {
            unsent.extend(vocab.token_to_piece(token, false, None));
            if let Some(text) = complete_utf8(&mut unsent) {
                report(Progress::Text { text });
            }
        }
        if tokens.len() >= max_tokens {
            break;
        }
        batch.clear();
        batch.add(token, i32::try_from(pos)?, &[0], true)?;
        ctx.decode(&mut batch).map_err(|e| anyhow!("llama.cpp decode: {e}"))?;
        cached.push(token);
        pos += 1;
    }
    let first = first_token_at.unwrap_or_else(Instant::now);
    Ok(Decoded {
        tokens,
        prompt_tokens: prompt.len(),
        reused,
        prefill: first.duration_since(start),
        decode: first.elapsed(),
    })
}

/// The longest start of `bytes` that is whole UTF-8, taken out of it; bytes that can never be
/// UTF-8 go out replaced, so nothing waits for good.
fn complete_utf8(bytes: &mut Vec<u8>) -> Option<String> {
    let valid = match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(e) if e.error_len().is_some() => bytes.len(),
        Err(e) => e.valid_up_to(),
    };
    if valid == 0 {
        return None;
    }
    let text = String::from_utf8_lossy(bytes.get(..valid).unwrap_or_default()).into_owned();
    bytes.drain(..valid);
    Some(text)
}

#[async_trait]
impl Engine for LlamaEngine {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn context_limit(&self) -> usize {
        self.context_limit
    }

    async fn count_tokens(&self, text: &str) -> anyhow::Result<usize> {
        Ok(self.tokens(text.to_owned(), false).await?.len())
    }

    async fn count_prompt_tokens(&self, req: &GenRequest) -> anyhow::Result<usize> {
        Ok(self.tokens(self.chat_prompt(req)?, true).await?.len())
    }

    async fn generate(&self, req: GenRequest) -> anyhow::Result<GenOutput> {
        let prompt = self.tokens(self.chat_prompt(&req)?, true).await?;
        let matcher =
            req.regex.as_ref().map(|re| Matcher::new(self.factory.create_parser(TopLevelGrammar::from_regex(re))));
        let done =
            self.run(prompt, req.max_tokens, matcher, (false, req.reuse_prefix), super::progress_sender()).await?;
        Ok(GenOutput {
            text: self.text(&done.tokens),
            prompt_tokens: done.prompt_tokens,
            cached_tokens: Some(done.reused),
            completion_tokens: done.tokens.len(),
            prefill_ms: u64::try_from(done.prefill.as_millis())?,
            decode_ms: u64::try_from(done.decode.as_millis())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::complete_utf8;

    #[test]
    fn a_character_split_over_tokens_is_reported_whole() {
        let mut bytes = "é".as_bytes()[..1].to_vec();
        assert_eq!(complete_utf8(&mut bytes), None);
        bytes.extend(&"é".as_bytes()[1..]);
        bytes.extend(b"t\xe2");
        assert_eq!(complete_utf8(&mut bytes).as_deref(), Some("ét"));
        assert_eq!(bytes, b"\xe2");
        bytes.push(b'x');
        assert_eq!(complete_utf8(&mut bytes).as_deref(), Some("\u{fffd}x"), "bytes that never make UTF-8 go out");
        assert!(bytes.is_empty());
    }
}
