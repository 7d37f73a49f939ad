//! docent: long-context document analysis with verified cited spans.

pub mod bench;
pub mod cite;
pub mod config;
pub mod domain;
pub mod error;
pub mod eval;
pub mod http;
pub mod index;
pub mod jobs;
pub mod llm;
pub mod metrics;
pub mod models;
pub mod parse;
pub mod pipeline;
pub mod service;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::{middleware, web, App, HttpServer};

use crate::config::Settings;
use crate::http::AppState;
use crate::index::ChunkIndex;
use crate::llm::Engine;
use crate::pipeline::{Chunked, FullContext};
use crate::service::Docent;
use crate::store::Store;

/// The two model slots: the long-context model and the chunked baseline's short-context one
/// (the same engine in "same-model" set-ups).
#[derive(Clone)]
pub struct Engines {
    pub full: Arc<dyn Engine>,
    pub baseline: Arc<dyn Engine>,
}

impl Engines {
    /// One engine in both slots.
    pub fn same(engine: Arc<dyn Engine>) -> Self {
        Self { full: Arc::clone(&engine), baseline: engine }
    }
}

/// Assemble the service from settings and engines (the real ones, or test doubles).
pub fn build_docent(settings: &Settings, engines: Engines) -> anyhow::Result<Docent> {
    let store = Store::open(&settings.data_dir)?;
    let index = Arc::new(ChunkIndex::open(&settings.data_dir.join("index"))?);
    let answer = settings.max_answer_tokens;
    let budget = settings.baseline_context;
    let full = Arc::new(FullContext::new(Arc::clone(&engines.full), answer));
    let chunked = Arc::new(Chunked::new(Arc::clone(&engines.baseline), Arc::clone(&index), budget, answer));
    let chunked_same = Arc::new(Chunked::new(Arc::clone(&engines.full), Arc::clone(&index), budget, answer));
    Docent::new(store, index, engines, service::Pipelines { full, chunked, chunked_same }, settings)
}

/// Everything the HTTP server serves, ready: the service over the data dir, with stored documents
/// that have no chunks (from before the index, or after its rebuild) indexed first.
/// Batch workers start here too, after items a previous run left running are requeued.
pub async fn build_state(settings: &Settings, engines: Engines) -> anyhow::Result<Arc<AppState>> {
    // Only a starting server sweeps: a CLI command on the same data dir could otherwise remove the
    // files of an upload the server is committing at that moment.
    let swept = Store::open(&settings.data_dir)?.sweep_orphans()?;
    if swept > 0 {
        tracing::warn!(swept, "removed files of uploads that a crash interrupted before they were stored");
    }
    let docent = Arc::new(build_docent(settings, engines)?);
    let indexed = docent.reindex(false).await?;
    if indexed > 0 {
        tracing::info!(indexed, "indexed documents that had no chunks");
    }
    jobs::start(Arc::clone(&docent), settings.batch_workers).await?;
    AppState::new(docent, settings)
}

/// Serve until SIGTERM or SIGINT, then stop gracefully: no new connections, analyses or batch
/// items; those running get until the grace period ends to finish and be stored; queued items
/// stay queued for the next start. Items still running then are requeued at the next start.
pub async fn serve_until_signalled(state: Arc<AppState>, addr: SocketAddr) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let (docent, grace) = (Arc::clone(&state.docent), state.shutdown_grace);
    let (server, bound) = start_server(state, addr)?;
    tracing::info!("docent listening on http://{bound}");
    let handle = server.handle();
    let mut serving = tokio::spawn(server);
    let (mut term, mut int) = (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?);
    tokio::select! {
        ended = &mut serving => return Ok(ended??),
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    let deadline = tokio::time::Instant::now() + grace;
    tracing::info!(grace_s = grace.as_secs(), "stopping: no new requests or batch items, running ones may finish");
    docent.drain();
    let ((), idle) = tokio::join!(handle.stop(true), docent.wait_idle(deadline));
    serving.await??;
    if idle {
        tracing::info!("stopped: every running analysis and batch item finished");
    } else {
        let running = docent.working();
        tracing::warn!(running, "stopped at the end of the grace period; running batch items are requeued at the next start");
    }
    Ok(())
}

/// Load the configured full-context model, or connect to the server that runs it.
pub async fn load_engine(settings: &Settings) -> anyhow::Result<Arc<dyn Engine>> {
    Ok(match &settings.remote {
        Some(remote) => Arc::new(llm::OpenAiEngine::connect(remote).await?),
        None => llm::load_local(&settings.engine).await?,
    })
}

/// Load both configured models (one, when the baseline is "same").
pub async fn load_engines(settings: &Settings) -> anyhow::Result<Engines> {
    let full = load_engine(settings).await?;
    let baseline: Arc<dyn Engine> = match &settings.baseline {
        Some(b) => llm::load_local(b).await?,
        None => Arc::clone(&full),
    };
    Ok(Engines { full, baseline })
}

/// Bind the HTTP server; returns it (not yet awaited) and the bound address,
/// so tests can ask for port 0.
///
/// The server does not handle signals itself: `serve_until_signalled` does.
pub fn start_server(state: Arc<AppState>, addr: SocketAddr) -> anyhow::Result<(actix_web::dev::Server, SocketAddr)> {
    let grace = state.shutdown_grace;
    let data = web::Data::from(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            // Every request is authenticated (and CSRF-checked) before its handler reads a byte.
            .wrap(middleware::from_fn(http::auth::authenticate))
            // Outermost: the request id, its span and the access log cover everything inside.
            .wrap(middleware::from_fn(http::observe::observe))
            .configure(http::configure)
    })
    .workers(2)
    .disable_signals()
    // A graceful stop waits this long for requests in progress (analyses) to be answered.
    .shutdown_timeout(grace.as_secs().max(1))
    .bind(addr)?;
    let bound = server.addrs().first().copied().unwrap_or(addr);
    Ok((server.run(), bound))
}
