//! The pages in headless Chromium, as a person uses them: upload a real PDF
//! through the form, see its pages and counts, summarize, click a citation,
//! and find the exact cited span highlighted on its page; then compare both
//! pipelines and click through a citation of the chunked answer. The scripted engine
//! keeps this fast; e2e.rs runs the real model.

use std::time::Duration;

use serde_json::Value;

use crate::common::browser::Browser;
use crate::common::{client, corpus, read_corpus, TestServer};

async fn flow(b: &Browser, s: &TestServer) -> anyhow::Result<()> {
    b.goto(&s.url("/")).await?;
    b.type_into("#file", &corpus("bitcoin.pdf").display().to_string()).await?;
    b.click("form.upload button[type=submit]").await?;
    b.wait_for_path("/documents/", Duration::from_secs(60)).await?;
    let meta = b.eval("return document.querySelector('.meta').textContent").await?;
    let meta = meta.as_str().unwrap_or_default();
    anyhow::ensure!(meta.contains("9 pages") && meta.contains("tokens"), "document page shows {meta}");
    let page3 = b.eval("return document.getElementById('page-3').textContent").await?;
    anyhow::ensure!(page3.as_str().unwrap_or_default().contains("Proof-of-Work"), "page 3 text missing");

    b.click("#summarize").await?;
    let analysis_path = b.wait_for_path("/analyses/", Duration::from_secs(120)).await?;
    let id = analysis_path.rsplit('/').next().unwrap_or_default().to_owned();
    let analysis: Value = client().get(s.url(&format!("/api/v1/analyses/{id}"))).send().await?.json().await?;
    let first = &analysis["citations"][0];
    anyhow::ensure!(first["valid"] == true, "scripted first citation should verify: {first}");

    b.click(&format!("a.cite[data-cite=\"{}\"]", first["id"])).await?;
    let highlighted = b
        .eval("const m = document.querySelector('mark.span.active'); return m ? [m.textContent, m.dataset.page, location.hash] : null")
        .await?;
    anyhow::ensure!(
        highlighted[0] == first["quote"],
        "highlighted {highlighted} but the citation quotes {}",
        first["quote"]
    );
    anyhow::ensure!(
        highlighted[1].as_str() == Some(first["page"].to_string().as_str()),
        "highlighted on page {} not {}",
        highlighted[1],
        first["page"]
    );
    anyhow::ensure!(
        highlighted[2] == format!("#span-{}-{}", first["start"], first["end"]),
        "the URL does not point at the span: {}",
        highlighted[2]
    );
    let invalid = b.eval("return document.querySelectorAll('a.cite.invalid').length").await?;
    anyhow::ensure!(invalid.as_u64() == Some(1), "the unsupported citation is not marked invalid");
    // The claim of that citation is set apart as a whole line, as drawn: labelled, with a border
    // and a background of its own; the verified claims are not.
    let lines = b
        .eval(
            "const look = s => { const st = getComputedStyle(s); \
               return [!!s.querySelector('a.cite.invalid'), s.textContent.trim().startsWith('Not verified:'), \
                       st.borderLeftStyle, st.backgroundColor]; }; \
             return [...document.querySelectorAll('li.sentence')].map(look)",
        )
        .await?;
    let lines = lines.as_array().cloned().unwrap_or_default();
    let (failed, verified): (Vec<&Value>, Vec<&Value>) = lines.iter().partition(|l| l[0] == true);
    anyhow::ensure!(failed.len() == 1 && !verified.is_empty(), "claims as drawn: {lines:?}");
    let bad = failed[0];
    anyhow::ensure!(bad[1] == true && bad[2] == "solid", "the unverified claim is not set apart: {bad}");
    // (A verified claim's background may be the clicked citation's highlight, never this one.)
    anyhow::ensure!(
        verified.iter().all(|l| l[1] == false && l[2] == "none" && l[3] != bad[3]),
        "a verified claim is drawn as unverified: {lines:?}"
    );

    // Pointing at a sentence highlights all the spans it cites, and only while it is pointed at.
    let hover = b
        .eval(
            "const s = document.querySelectorAll('li.sentence')[0]; \
             s.dispatchEvent(new MouseEvent('mouseover', {bubbles: true})); \
             const want = [...new Set([...s.querySelectorAll('a.cite')].map(a => a.dataset.anchor))].sort(); \
             const got = [...document.querySelectorAll('mark.span.hover')].map(m => m.id).sort(); \
             s.dispatchEvent(new MouseEvent('mouseout', {bubbles: true})); \
             return [want, got, document.querySelectorAll('mark.span.hover').length]",
        )
        .await?;
    anyhow::ensure!(
        hover[0] == hover[1] && hover[0].as_array().is_some_and(|a| !a.is_empty()) && hover[2] == 0,
        "hovering the first sentence highlighted {} for its spans {} ({} left after)",
        hover[1],
        hover[0],
        hover[2]
    );

    // The original PDF page of the clicked citation, drawn by the vendored PDF.js.
    let doc_id = analysis["document_id"].as_str().unwrap_or_default();
    let original = client().get(s.url(&format!("/documents/{doc_id}/original"))).send().await?;
    anyhow::ensure!(original.headers()["content-type"] == "application/pdf", "{:?}", original.headers());
    anyhow::ensure!(original.headers()["content-security-policy"] == "sandbox", "{:?}", original.headers());
    anyhow::ensure!(
        original.bytes().await?.as_ref() == read_corpus("bitcoin.pdf").as_slice(),
        "not the uploaded bytes"
    );
    b.click("#original summary").await?;
    let want = first["page"].to_string();
    let started = std::time::Instant::now();
    let drawn = loop {
        let state = b
            .eval(
                "const c = document.getElementById('original-canvas'); \
                 if (!c.dataset.page) return [null, document.getElementById('original-page').textContent]; \
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let ink = 0; \
                 for (let i = 0; i < d.length; i += 4) if (d[i] < 128) ink++; \
                 return [c.dataset.page, ink]",
            )
            .await?;
        if !state[0].is_null() {
            break state;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(20), "the original page was not drawn: {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    anyhow::ensure!(drawn[0] == want.as_str(), "drew page {} for a citation on page {want}", drawn[0]);
    anyhow::ensure!(drawn[1].as_u64().unwrap_or(0) > 2000, "the drawn page has no text on it: {drawn}");
    Ok(())
}

/// The compare page: ask through the compare form, get both answers side by side, click a
/// citation of the chunked answer and land on its span in the shared source view.
async fn compare_flow(b: &Browser, s: &TestServer) -> anyhow::Result<()> {
    let docs: Value = client().get(s.url("/api/v1/documents")).send().await?.json().await?;
    let id = docs[0]["id"].as_str().unwrap_or_default().to_owned();
    b.goto(&s.url(&format!("/documents/{id}"))).await?;
    b.type_into("#compare-question", "How does proof-of-work order transactions?").await?;
    b.click("#compare").await?;
    let path = b.wait_for_path("/comparisons/", Duration::from_secs(120)).await?;
    let cid = path.rsplit('/').next().unwrap_or_default().to_owned();
    let c: Value = client().get(s.url(&format!("/api/v1/comparisons/{cid}"))).send().await?.json().await?;
    anyhow::ensure!(c["chunked"]["retrieval"]["method"] == "bm25_top_k", "{c}");
    let sides = b.eval("return [...document.querySelectorAll('section.side h2')].map(h => h.textContent)").await?;
    anyhow::ensure!(sides.as_array().map(Vec::len) == Some(2), "two answers side by side: {sides}");

    let cite = &c["chunked"]["citations"][0];
    b.click(&format!("#side-chunked a.cite[data-cite=\"C{}\"]", cite["id"])).await?;
    let active =
        b.eval("const m = document.querySelector('mark.span.active'); return m ? m.textContent : null").await?;
    anyhow::ensure!(active == cite["quote"], "highlighted {active} but the chunked citation quotes {}", cite["quote"]);
    Ok(())
}

#[actix_web::test]
async fn clicking_a_citation_highlights_the_exact_cited_span_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 100_000).await;
    let b = Browser::start().await.expect("headless Chromium starts");
    if let Err(e) = flow(&b, &s).await {
        let shot = b.screenshot("citation-click").await;
        panic!("{e:#}; screenshot: {shot:?}");
    }
    if let Err(e) = compare_flow(&b, &s).await {
        let shot = b.screenshot("compare-click").await;
        panic!("{e:#}; screenshot: {shot:?}");
    }
    b.quit().await;
    s.stop().await;
}

/// The batch page: pick a folder, start the batch, watch the items end live (server-sent events
/// update the rows while the page stays loaded), follow a result, download the JSON Lines.
async fn batch_flow(b: &Browser, s: &TestServer, folder: &std::path::Path) -> anyhow::Result<()> {
    b.goto(&s.url("/batches")).await?;
    b.type_into("#folder", &folder.display().to_string()).await?;
    b.click("form.upload button[type=submit]").await?;
    let path = b.wait_for_path("/batches/", Duration::from_secs(60)).await?;
    b.eval("window.docentLoaded = true; return null").await?;
    let mut seen_running = false;
    let started = std::time::Instant::now();
    loop {
        let status = b.eval("return document.getElementById('batch-status').textContent").await?;
        let states =
            b.eval("return [...document.querySelectorAll('tr[data-state]')].map(r => r.dataset.state)").await?;
        seen_running |= states.as_array().is_some_and(|a| a.iter().any(|s| s == "running"));
        if status == "done" {
            break;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "batch page stuck at {status}: {states}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let same_page = b.eval("return window.docentLoaded === true").await?;
    anyhow::ensure!(same_page == true, "the page reloaded instead of updating live");
    anyhow::ensure!(seen_running, "no item was ever shown running");
    let done = b.eval("return document.getElementById('count-done').textContent").await?;
    anyhow::ensure!(done == "3", "three items done, page says {done}");
    let links = b.eval("return [...document.querySelectorAll('td.result a')].map(a => a.getAttribute('href'))").await?;
    anyhow::ensure!(links.as_array().map(Vec::len) == Some(3), "a result link per item: {links}");

    let download = b.eval("return document.querySelector('a[download]').getAttribute('href')").await?;
    let id = path.rsplit('/').next().unwrap_or_default();
    anyhow::ensure!(download == format!("/api/v1/batches/{id}/results"), "download link {download}");
    let body = client().get(s.url(download.as_str().unwrap_or_default())).send().await?.text().await?;
    let names: Vec<String> = body
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).map(|v| v["filename"].as_str().unwrap_or_default().to_owned()))
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(names.len() == 3 && names.iter().all(|n| n.ends_with(".txt")), "results for {names:?}");

    let first = links[0].as_str().unwrap_or_default().to_owned();
    b.click(&format!("td.result a[href=\"{first}\"]")).await?;
    b.wait_for_path("/analyses/", Duration::from_secs(10)).await?;
    Ok(())
}

#[actix_web::test]
async fn a_folder_submitted_on_the_batch_page_is_followed_live_to_its_results_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("contracts");
    std::fs::create_dir_all(&folder).unwrap();
    for name in ["bitcoin_intro.txt", "bitcoin_proof_of_work.txt", "cuad_limeenergy_termination.txt"] {
        std::fs::copy(corpus(name), folder.join(name)).unwrap();
    }
    let engine = crate::common::ScriptedEngine { context_limit: 100_000, delay: Duration::from_millis(1500) };
    let s = TestServer::start(&crate::common::settings(&dir.path().join("data")), std::sync::Arc::new(engine)).await;
    let b = Browser::start().await.expect("headless Chromium starts");
    if let Err(e) = batch_flow(&b, &s, &folder).await {
        let shot = b.screenshot("batch-page").await;
        panic!("{e:#}; screenshot: {shot:?}");
    }
    b.quit().await;
    s.stop().await;
}
