//! An engine on a remote OpenAI-compatible server (llama.cpp's llama-server, vLLM, SGLang,
//! mistral.rs's server): what teams run on GPU clusters. The citation pipeline is unchanged: the
//! prompt carries the segment markers, the answer is constrained where the server can constrain
//! it (a grammar for llama.cpp, a regex for vLLM and SGLang), and citations are verified here.

use std::time::Duration;

use anyhow::{bail, Context};
use async_trait::async_trait;
use serde_json::{json, Value};

use super::{Engine, GenOutput, GenRequest};

/// How a server takes an output constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ConstraintDialect {
    /// Find out from the server (llama.cpp answers `GET /props`, vLLM `GET /version`).
    Auto,
    /// llama.cpp: a GBNF `grammar` rewritten from the regex.
    Gbnf,
    /// vLLM: `guided_regex`.
    GuidedRegex,
    /// SGLang: `regex`.
    Regex,
    /// No constraint: the output is parsed and verified as it comes.
    None,
}

#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// The API root, e.g. `http://gpu-node:8000/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    /// The context to assume; asked of the server when `None`.
    pub max_context: Option<usize>,
    pub constraint: ConstraintDialect,
}

pub struct OpenAiEngine {
    http: reqwest::Client,
    api: String,
    root: String,
    model: String,
    api_key: Option<String>,
    context_limit: usize,
    constraint: ConstraintDialect,
    /// Tokens the chat template adds around a system and a user message.
    template_tokens: usize,
}

/// Generous: a 256K-token prefill takes minutes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3600);

impl OpenAiEngine {
    /// Connect, and learn from the server what the pipelines need: its context, how it counts
    /// tokens, what its chat template adds, how it takes a constraint.
    pub async fn connect(settings: &OpenAiSettings) -> anyhow::Result<Self> {
        let api = settings.base_url.trim_end_matches('/').to_owned();
        let root = api.strip_suffix("/v1").unwrap_or(&api).to_owned();
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build()?;
        let mut engine = Self {
            http,
            api,
            root,
            model: settings.model.clone(),
            api_key: settings.api_key.clone(),
            context_limit: 0,
            constraint: settings.constraint,
            template_tokens: 0,
        };
        let props = engine.get_json(&format!("{}/props", engine.root)).await.ok();
        engine.context_limit = match settings.max_context {
            Some(n) => n,
            None => engine.server_context(props.as_ref()).await?,
        };
        if engine.constraint == ConstraintDialect::Auto {
            engine.constraint = engine.detect_dialect(props.is_some()).await;
        }
        // What the template adds: a probe's prompt tokens minus its two messages' own.
        let probe = GenRequest { system: "Hi".into(), user: "Hi".into(), max_tokens: 1, ..GenRequest::default() };
        let out = engine.chat(&probe).await.context("a one-token probe request failed")?;
        let own = 2 * engine.count_tokens("Hi").await?;
        engine.template_tokens = out.prompt_tokens.saturating_sub(own);
        tracing::info!(
            api = %engine.api, model = %engine.model, context = engine.context_limit,
            constraint = ?engine.constraint, template_tokens = engine.template_tokens, "remote engine ready"
        );
        Ok(engine)
    }

    async fn get_json(&self, url: &str) -> anyhow::Result<Value> {
        let resp = self.authorized(self.http.get(url)).send().await?;
        if !resp.status().is_success() {
            bail!("{url}: {}", resp.status());
        }
        Ok(resp.json().await?)
    }

    fn authorized(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }

    /// llama.cpp's per-slot context (`/props`), else vLLM's `max_model_len` (`/v1/models`).
    async fn server_context(&self, props: Option<&Value>) -> anyhow::Result<usize> {
        let from_props = props.and_then(|p| {
            p.pointer("/default_generation_settings/n_ctx").or_else(|| p.get("n_ctx")).and_then(Value::as_u64)
        });
        if let Some(n) = from_props {
            return Ok(usize::try_from(n)?);
        }
        let models = self.get_json(&format!("{}/models", self.api)).await?;
        let entry = at(&models, "/data")
            .as_array()
            .and_then(|d| d.iter().find(|m| at(m, "/id").as_str() == Some(self.model.as_str())));
        match entry.and_then(|m| at(m, "/max_model_len").as_u64()) {
            Some(n) => Ok(usize::try_from(n)?),
            None => bail!("{} does not say its context length; pass --max-context", self.api),
        }
    }

    async fn detect_dialect(&self, llama_cpp: bool) -> ConstraintDialect {
        if llama_cpp {
            return ConstraintDialect::Gbnf;
        }
        match self.get_json(&format!("{}/version", self.root)).await {
            Ok(v) if v.get("version").is_some() => ConstraintDialect::GuidedRegex,
            _ => {
                tracing::warn!(api = %self.api, "unknown server: answers are not constrained (see --openai-constraint)");
                ConstraintDialect::None
            }
        }
    }

    async fn chat(&self, req: &GenRequest) -> anyhow::Result<GenOutput> {
        let mut body = json!({
            "model": self.model,
            "messages": [{"role": "system", "content": req.system}, {"role": "user", "content": req.user}],
            "max_tokens": req.max_tokens, "temperature": 0.0, "seed": 0, "stream": false,
        });
        if let (Some(re), Some(fields)) = (&req.regex, body.as_object_mut()) {
            match self.constraint {
                ConstraintDialect::Gbnf => fields.insert("grammar".into(), json!(super::gbnf::regex_to_gbnf(re)?)),
                ConstraintDialect::GuidedRegex => fields.insert("guided_regex".into(), json!(re)),
                ConstraintDialect::Regex => fields.insert("regex".into(), json!(re)),
                ConstraintDialect::None | ConstraintDialect::Auto => None,
            };
        }
        let url = format!("{}/chat/completions", self.api);
        let start = std::time::Instant::now();
        let resp = self.authorized(self.http.post(&url)).json(&body).send().await?;
        let status = resp.status();
        let value: Value = resp.json().await.with_context(|| format!("{url} answered {status} without JSON"))?;
        if !status.is_success() {
            bail!("{url} answered {status}: {}", at(&value, "/error/message").as_str().unwrap_or("no message"));
        }
        let text = value.pointer("/choices/0/message/content").and_then(Value::as_str).unwrap_or_default();
        let count = |key: &str| at(&value, key).as_u64().and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
        let total_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        // llama.cpp reports its own prefill and decode times; other servers only the total.
        let (prefill, decode) = (at(&value, "/timings/prompt_ms"), at(&value, "/timings/predicted_ms"));
        let (prefill_ms, decode_ms) = match (prefill.as_f64(), decode.as_f64()) {
            (Some(p), Some(d)) => (p.round() as u64, d.round() as u64),
            _ => (0, total_ms),
        };
        Ok(GenOutput {
            text: text.to_owned(),
            prompt_tokens: count("/usage/prompt_tokens"),
            cached_tokens: at(&value, "/usage/prompt_tokens_details/cached_tokens")
                .as_u64()
                .and_then(|n| usize::try_from(n).ok()),
            completion_tokens: count("/usage/completion_tokens"),
            prefill_ms,
            decode_ms,
        })
    }
}

#[async_trait]
impl Engine for OpenAiEngine {
    fn model_name(&self) -> &str {
        &self.model
    }

    fn context_limit(&self) -> usize {
        self.context_limit
    }

    /// The server's own tokenizer (`POST /tokenize`: llama.cpp reads `content`, vLLM `prompt`).
    async fn count_tokens(&self, text: &str) -> anyhow::Result<usize> {
        let body = json!({"model": self.model, "content": text, "prompt": text, "add_special": false,
                          "add_special_tokens": false});
        let url = format!("{}/tokenize", self.root);
        let resp = self.authorized(self.http.post(&url)).json(&body).send().await?;
        if !resp.status().is_success() {
            bail!("{url} answered {}", resp.status());
        }
        let value: Value = resp.json().await?;
        match (at(&value, "/tokens").as_array(), at(&value, "/count").as_u64()) {
            (_, Some(n)) => Ok(usize::try_from(n)?),
            (Some(tokens), None) => Ok(tokens.len()),
            _ => bail!("{url} did not return tokens"),
        }
    }

    async fn count_prompt_tokens(&self, req: &GenRequest) -> anyhow::Result<usize> {
        Ok(self.count_tokens(&req.system).await? + self.count_tokens(&req.user).await? + self.template_tokens)
    }

    async fn generate(&self, req: GenRequest) -> anyhow::Result<GenOutput> {
        self.chat(&req).await
    }
}

/// The value at a JSON pointer, or null.
fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    value.pointer(pointer).unwrap_or(&Value::Null)
}
