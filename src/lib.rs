//! docent: long-context document analysis with verified cited spans.

pub mod bench;
pub mod cite;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod llm;
pub mod parse;
pub mod pipeline;
pub mod service;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::{middleware, web, App, HttpServer};

use crate::config::Settings;
use crate::http::AppState;
use crate::llm::{Engine, MistralEngine};
use crate::pipeline::FullContext;
use crate::service::Docent;
use crate::store::Store;

/// Assemble the service from settings and an engine (the real one, or a test double).
pub fn build_docent(settings: &Settings, engine: Arc<dyn Engine>) -> anyhow::Result<Docent> {
    let store = Store::open(&settings.data_dir)?;
    let full = Arc::new(FullContext::new(Arc::clone(&engine), settings.max_answer_tokens));
    Ok(Docent::new(store, engine, full, settings.max_queued))
}

/// Load the configured model.
pub async fn load_engine(settings: &Settings) -> anyhow::Result<Arc<dyn Engine>> {
    Ok(Arc::new(MistralEngine::load(&settings.engine).await?))
}

/// Bind the HTTP server; returns it (not yet awaited) and the bound address,
/// so tests can ask for port 0.
pub fn start_server(state: Arc<AppState>, addr: SocketAddr) -> anyhow::Result<(actix_web::dev::Server, SocketAddr)> {
    let data = web::Data::from(state);
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).wrap(middleware::Logger::new("%r %s %Dms")).configure(http::configure)
    })
    .workers(2)
    .bind(addr)?;
    let bound = server.addrs().first().copied().unwrap_or(addr);
    Ok((server.run(), bound))
}
