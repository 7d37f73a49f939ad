//! Streamed analyses on the real default model (llama.cpp): the API's server-sent events carry the
//! prefill's progress and the answer as it is written, then the stored analysis; the document page
//! shows both in headless Chromium and ends on the answer, whose citations still click through to
//! their spans.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::browser::Browser;
use crate::common::{client, default_model, read_corpus, settings, text_of, upload, TestServer};

/// The events of one streamed analysis, in order: (name, data).
async fn stream(s: &TestServer, id: &str, body: Value) -> (reqwest::StatusCode, Vec<(String, Value)>) {
    let resp = client()
        .post(s.url(&format!("/api/v1/documents/{id}/analyses")))
        .header("accept", "text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let events = text
        .split("\n\n")
        // Events only: a keep-alive comment (every 15 s, when the model is slow) is not one.
        .filter(|f| f.lines().any(|l| l.starts_with("event: ")))
        .map(|frame| {
            let line = |p: &str| frame.lines().find_map(|l| l.strip_prefix(p)).unwrap_or_default().to_owned();
            (line("event: "), serde_json::from_str(&line("data: ")).unwrap_or(Value::Null))
        })
        .collect();
    (status, events)
}

async fn real_server(dir: &std::path::Path) -> TestServer {
    let mut settings = settings(dir);
    settings.engine.model = default_model();
    let engine = docent::load_engine(&settings).await.expect("the default model loads");
    TestServer::start(&settings, engine).await
}

#[actix_web::test]
async fn an_analysis_streams_its_prefill_and_its_answer_then_the_stored_analysis() {
    let dir = tempfile::tempdir().unwrap();
    let s = real_server(dir.path()).await;
    let doc: Value = upload(&s, "bitcoin_intro.txt", read_corpus("bitcoin_intro.txt")).await.json().await.unwrap();
    let id = doc["id"].as_str().unwrap();
    let text = text_of(&s, id).await;

    let (status, events) = stream(&s, id, json!({"task": "summary"})).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let (last, analysis) = events.last().unwrap();
    assert_eq!(last, "analysis", "{names:?}");
    // Prefill first, counting up to the whole prompt of the first request (the segments it
    // points at), then each point's request on that prefix: its prefill, counted up to its own
    // prompt, then its text. The usage counts every request.
    let first_text = names.iter().position(|n| *n == "text").expect("the answer streamed");
    assert!(names[..first_text].iter().all(|n| *n == "prefill") && first_text >= 2, "{names:?}");
    let prefill: Vec<(u64, u64)> = events
        .iter()
        .filter(|(n, d)| n == "prefill" && d["elapsed_ms"].is_u64())
        .map(|(_, d)| (d["done"].as_u64().unwrap(), d["total"].as_u64().unwrap()))
        .collect();
    assert_eq!(prefill.len(), names.iter().filter(|n| **n == "prefill").count());
    let total = prefill[0].1;
    let first: Vec<&(u64, u64)> = prefill.iter().take_while(|(_, t)| *t == total).collect();
    assert!(first.len() >= 2 && first.windows(2).all(|w| w[0].0 <= w[1].0), "{prefill:?}");
    assert_eq!(first.last().unwrap().0, total, "the first request's prefill counts up to its prompt");
    let prompt_tokens = analysis["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(prefill.iter().all(|&(done, t)| done <= t && t >= total && t <= prompt_tokens), "{prefill:?}");
    let (done, t) = events[..first_text].last().map(|(_, d)| (d["done"].as_u64(), d["total"].as_u64())).unwrap();
    assert_eq!(done, t, "the text starts after its request's whole prompt was read");
    // The streamed text is the answer the analysis was made from: every claim is in it.
    let streamed: String =
        events.iter().filter(|(n, _)| n == "text").map(|(_, d)| d["text"].as_str().unwrap()).collect();
    let sentences = analysis["answer"]["sentences"].as_array().unwrap();
    assert!(!sentences.is_empty());
    for sentence in sentences {
        assert!(streamed.contains(sentence["text"].as_str().unwrap()), "{sentence} not in {streamed:?}");
    }
    // It is stored like any other analysis, citations resolved against the text.
    let stored: Value = client()
        .get(s.url(&format!("/api/v1/analyses/{}", analysis["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(&stored, analysis);
    for c in stored["citations"].as_array().unwrap() {
        let (start, end) = (c["start"].as_u64().unwrap() as usize, c["end"].as_u64().unwrap() as usize);
        assert_eq!(text.get(start..end), c["quote"].as_str());
    }

    // A follow-up question on the same document starts from the cached document.
    let (_, events) = stream(&s, id, json!({"task": "question", "question": "Who controls the CPU power?"})).await;
    let (last, answer) = events.last().unwrap();
    assert_eq!(last, "analysis", "{events:?}");
    // A question is two requests on one prefix (the evidence's marker, then the answer line); its
    // usage counts both. The first starts from the document the summary left in the cache.
    let cached = answer["usage"]["cached_tokens"].as_u64().unwrap();
    let first_prefill = &events.iter().find(|(n, _)| n == "prefill").unwrap().1;
    let (done, total) = (first_prefill["done"].as_u64().unwrap(), first_prefill["total"].as_u64().unwrap());
    assert!(done * 2 > total && done < total, "progress starts at the cached document: {first_prefill}");
    let prompt_tokens = answer["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(cached * 2 > prompt_tokens && cached < prompt_tokens, "the document came from the cache: {answer}");

    // Errors: a bad request is an error event with its code; a missing document a plain 404.
    let (status, events) = stream(&s, id, json!({"task": "question"})).await;
    assert_eq!(status, 200);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "error");
    assert_eq!(events[0].1["code"], "invalid_request", "{events:?}");
    let (status, _) = stream(&s, "no-such-document", json!({"task": "summary"})).await;
    assert_eq!(status, 404);
    s.stop().await;
}

async fn page_flow(b: &Browser, s: &TestServer, id: &str) -> anyhow::Result<()> {
    b.goto(&s.url(&format!("/documents/{id}"))).await?;
    b.eval("window.docentLoaded = true; return null").await?;
    b.click("#summarize").await?;
    // Watch the page while the model works: the progress bar fills, then the answer appears.
    let (mut most_read, mut total, mut draft, mut same_page) = (0.0, 0.0, String::new(), false);
    let started = std::time::Instant::now();
    loop {
        let state = b
            .eval(
                "const p = document.getElementById('live-progress'); \
                 return p ? [p.value, p.max, document.getElementById('live-text').textContent, \
                 window.docentLoaded === true, location.pathname] : [0, 0, '', false, location.pathname]",
            )
            .await?;
        if state[4].as_str().is_some_and(|p| p.starts_with("/analyses/")) {
            break;
        }
        same_page |= state[3] == true;
        if state[1].as_f64().unwrap_or(0.0) > 1.0 {
            most_read = f64::max(most_read, state[0].as_f64().unwrap_or(0.0));
            total = state[1].as_f64().unwrap_or(0.0);
        }
        if let Some(t) = state[2].as_str().filter(|t| t.len() > draft.len()) {
            draft = t.to_owned();
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(180), "no answer after 3 minutes: {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::ensure!(same_page, "the page reloaded instead of streaming");
    anyhow::ensure!(
        total > 500.0 && most_read > 0.0,
        "the progress bar never showed the prompt: {most_read} of {total}"
    );
    anyhow::ensure!(!draft.trim().is_empty(), "the answer was never shown while written");
    anyhow::ensure!(!draft.contains("[S"), "citation markers shown in the draft: {draft}");

    // The finished answer: its first verified citation highlights its exact span.
    let path = b.eval("return location.pathname").await?;
    let aid = path.as_str().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_owned();
    let analysis: Value = client().get(s.url(&format!("/api/v1/analyses/{aid}"))).send().await?.json().await?;
    // The answer's first words were in the draft: the finished line may have lost what the guards
    // strip from its start (an instruction's label, a made-up outline number such as "Abstract.1.1").
    let answer = analysis["answer"]["sentences"].to_string();
    let first = analysis["answer"]["sentences"][0]["text"].as_str().unwrap_or_default();
    let first_words: String = first.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
    let drafted = draft.split_whitespace().collect::<Vec<_>>().join(" ");
    anyhow::ensure!(
        !first_words.is_empty() && drafted.contains(&first_words),
        "the draft {draft:?} is not the answer {answer}"
    );
    let Some(cite) = analysis["citations"].as_array().and_then(|c| c.first()).cloned() else {
        anyhow::bail!("the answer cites nothing: {analysis}")
    };
    b.click(&format!("a.cite[data-cite=\"{}\"]", cite["id"])).await?;
    let active =
        b.eval("const m = document.querySelector('mark.span.active'); return m ? m.textContent : null").await?;
    anyhow::ensure!(active == cite["quote"], "highlighted {active} but the citation quotes {}", cite["quote"]);

    // The document page keeps it in its history, answer included.
    b.goto(&s.url(&format!("/documents/{id}"))).await?;
    let history = b.eval("return [...document.querySelectorAll('.history-answer')].map(p => p.textContent)").await?;
    let first_sentence = analysis["answer"]["sentences"][0]["text"].as_str().unwrap_or("?");
    anyhow::ensure!(
        history.as_array().is_some_and(|h| h.len() == 1 && h[0].as_str().is_some_and(|t| t.contains(first_sentence))),
        "the history shows {history}, not {first_sentence:?}"
    );
    Ok(())
}

#[actix_web::test]
async fn the_document_page_shows_the_prefill_and_the_answer_as_they_stream_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let s = real_server(dir.path()).await;
    let doc: Value = upload(&s, "bitcoin_intro.txt", read_corpus("bitcoin_intro.txt")).await.json().await.unwrap();
    let b = Browser::start().await.expect("headless Chromium starts");
    if let Err(e) = page_flow(&b, &s, doc["id"].as_str().unwrap()).await {
        let shot = b.screenshot("streaming").await;
        panic!("{e:#}; screenshot: {shot:?}");
    }
    b.quit().await;
    s.stop().await;
}
