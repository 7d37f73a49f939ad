//! The chunked-retrieval baseline: a real tantivy index over real corpus documents (a CUAD
//! contract with its gold clause annotations, the Chinese Bitcoin whitepaper), the chunked
//! pipeline and the comparison through the HTTP API, and the index's consistency across deletes
//! and restarts. The scripted engine answers here; e2e.rs runs the comparison on real models.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::common::{
    analyze, client, get_html, get_json, read_corpus, settings, text_of, upload, ScriptedEngine, TestServer,
};

const CONTRACT: &str = "cuad_limeenergy_distributor_agreement.pdf";
const GOLD: &str = "cuad_limeenergy_distributor_agreement.gold.json";

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The gold clause text CUAD annotates for `category` (its first context).
fn gold_clause(category: &str) -> String {
    let gold: Value = serde_json::from_slice(&read_corpus(GOLD)).unwrap();
    let context = gold["categories"][category]["context"].as_str().unwrap().to_owned();
    // CUAD stores a Python list literal of strings: take the first one.
    let first = context.trim_start_matches("['").trim_start_matches("[\"");
    let end = first.find("', '").or_else(|| first.find("']")).or_else(|| first.find("\"]")).unwrap();
    squash(&first[..end])
}

async fn upload_id(s: &TestServer, name: &str) -> String {
    let resp = upload(s, name, read_corpus(name)).await;
    assert_eq!(resp.status(), 201);
    resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

async fn search(s: &TestServer, id: &str, q: &str, k: usize) -> (u16, Value) {
    let url = s.url(&format!("/api/v1/documents/{id}/search"));
    let resp = client().get(url).query(&[("q", q), ("k", &k.to_string())]).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[actix_web::test]
async fn bm25_finds_the_gold_clause_of_a_cuad_contract_for_a_question_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 100_000).await;
    let id = upload_id(&s, CONTRACT).await;
    let text = text_of(&s, &id).await;

    for (question, category) in [
        ("Which state's laws govern this agreement?", "Governing Law"),
        ("What product liability insurance must the company carry?", "Insurance"),
        ("For how many years is the term of the agreement?", "Expiration Date"),
    ] {
        let clause = gold_clause(category);
        let (status, body) = search(&s, &id, question, 5).await;
        assert_eq!(status, 200, "{body}");
        let results = body["results"].as_array().unwrap();
        assert!(!results.is_empty() && results.len() <= 5);
        let texts: Vec<String> = results
            .iter()
            .map(|r| squash(&text[r["start"].as_u64().unwrap() as usize..r["end"].as_u64().unwrap() as usize]))
            .collect();
        // The gold clause lies in one retrieved chunk (or straddles two neighbours).
        let head: String = clause.chars().take(60).collect();
        assert!(texts.iter().any(|t| t.contains(&head)), "{category}: «{head}» not in the top 5: {texts:#?}");
        // Scores descend; snippets highlight query words and stay HTML-escaped.
        let scores: Vec<f64> = results.iter().map(|r| r["score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        assert!(results.iter().any(|r| r["snippet_html"].as_str().unwrap().contains("<b>")));
        assert!(results.iter().all(|r| r["page"].as_u64().unwrap() >= 1 && r["tokens"].as_u64().unwrap() > 0));
        assert!(results.iter().all(|r| r["last_page"].as_u64().unwrap() >= r["page"].as_u64().unwrap()));
    }

    // A question through the chunked pipeline cites only segments inside the chunks it read.
    let resp = analyze(
        &s,
        &id,
        json!({"pipeline": "chunked", "task": "question", "question": "Which state's laws govern this agreement?"}),
    )
    .await;
    let a: Value = resp.json().await.unwrap();
    assert_eq!(a["pipeline"], "chunked", "{a}");
    assert_eq!(a["retrieval"]["method"], "bm25_top_k");
    let read: Vec<u64> = a["retrieval"]["chunks"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect();
    assert!(!read.is_empty() && read.len() <= 8);
    let (_, all) = search(&s, &id, "Which state's laws govern this agreement?", 50).await;
    let spans: Vec<(u64, u64)> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| read.contains(&r["id"].as_u64().unwrap()))
        .map(|r| (r["start"].as_u64().unwrap(), r["end"].as_u64().unwrap()))
        .collect();
    let cites = a["citations"].as_array().unwrap();
    assert!(!cites.is_empty());
    for c in cites {
        let (start, end) = (c["start"].as_u64().unwrap(), c["end"].as_u64().unwrap());
        assert!(spans.iter().any(|&(s, e)| s <= start && end <= e), "citation {c} outside the chunks read");
        assert_eq!(&text[start as usize..end as usize], c["quote"].as_str().unwrap());
    }
    s.stop().await;
}

#[actix_web::test]
async fn chinese_text_is_searchable_by_words_inside_unspaced_sentences() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 100_000).await;
    let id = upload_id(&s, "bitcoin_zh_cn.pdf").await;
    let text = text_of(&s, &id).await;
    for word in ["工作量证明", "时间戳服务器", "双重支付"] {
        assert!(text.contains(word), "the whitepaper mentions {word}");
        let (status, body) = search(&s, &id, word, 3).await;
        assert_eq!(status, 200, "{body}");
        let top = &body["results"][0];
        let chunk = &text[top["start"].as_u64().unwrap() as usize..top["end"].as_u64().unwrap() as usize];
        assert!(chunk.contains(word), "top hit for {word} lacks it: {chunk}");
        assert!(top["snippet_html"].as_str().unwrap().contains("<b>"), "{top}");
    }
    s.stop().await;
}

#[actix_web::test]
async fn search_rejects_bad_input_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 100_000).await;
    let id = upload_id(&s, "bitcoin_intro.txt").await;
    for (q, k, code) in [("", 5, "invalid_request"), ("proof", 0, "invalid_request"), ("proof", 51, "invalid_request")]
    {
        let (status, body) = search(&s, &id, q, k).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some(code)), "{body}");
    }
    let (status, body) = search(&s, "no-such-doc", "proof", 3).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("document_not_found")));
    // Query syntax in a question is text, not an error.
    let (status, _) = search(&s, &id, "what is \"proof-of-work\" (AND) OR: [x]?", 3).await;
    assert_eq!(status, 200);
    s.stop().await;
}

#[actix_web::test]
async fn deleting_a_document_removes_its_chunks_and_the_index_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    let s = TestServer::start(&settings, Arc::new(ScriptedEngine::new(100_000))).await;
    let keep = upload_id(&s, "bitcoin_intro.txt").await;
    let gone = upload_id(&s, CONTRACT).await;
    let (_, before) = search(&s, &gone, "insurance", 5).await;
    assert!(!before["results"].as_array().unwrap().is_empty());
    let resp = client().delete(s.url(&format!("/api/v1/documents/{gone}"))).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    s.stop().await;

    // The index on disk has no chunk of the deleted document, and still has the other one's.
    {
        let index = docent::index::ChunkIndex::open(&dir.path().join("index")).unwrap();
        assert_eq!(index.count(&gone).unwrap(), 0);
        assert!(index.count(&keep).unwrap() > 0);
    }

    let s = TestServer::start(&settings, Arc::new(ScriptedEngine::new(100_000))).await;
    let (status, body) = search(&s, &keep, "double-spending", 3).await;
    assert_eq!(status, 200);
    assert!(!body["results"].as_array().unwrap().is_empty(), "{body}");
    let (status, _) = search(&s, &gone, "insurance", 3).await;
    assert_eq!(status, 404);
    s.stop().await;
}

#[actix_web::test]
async fn compare_reports_a_document_too_long_for_the_full_model_while_the_chunked_side_answers() {
    let dir = tempfile::tempdir().unwrap();
    // A context too small for the whole contract, as a 256K model is for a longer one.
    let s = TestServer::scripted(dir.path(), 2_000).await;
    let id = upload_id(&s, CONTRACT).await;
    let resp = client()
        .post(s.url(&format!("/api/v1/documents/{id}/compare")))
        .json(&json!({"task": "summary"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let c: Value = resp.json().await.unwrap();
    assert_eq!(c["full"]["error"]["code"], "document_too_long", "{c}");
    assert_eq!(c["chunked"]["pipeline"], "chunked");
    assert_eq!(c["chunked"]["retrieval"]["method"], "map_reduce");
    let r = &c["chunked"]["retrieval"];
    assert_eq!(r["chunks"].as_array().unwrap().len() as u64, r["total_chunks"].as_u64().unwrap(), "reads every chunk");
    assert!(r["calls"].as_u64().unwrap() >= 2, "a long document takes several windows");
    assert!(c["overlap"]["full"].is_null() && c["overlap"]["chunked"]["citations"].as_u64().unwrap() > 0);
    assert_eq!(get_json(&s, &location).await, c, "the comparison is stored");

    let html = get_html(&s, &format!("/comparisons/{}", c["id"].as_str().unwrap())).await;
    assert!(html.contains("document_too_long"), "the full side says why it has no answer");
    assert!(html.contains("map-reduce over every chunk"));
    assert!(html.contains("<mark id=\"span-"));
    s.stop().await;
}

#[actix_web::test]
async fn an_index_left_with_another_schema_is_rebuilt_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    let s = TestServer::start(&settings, Arc::new(ScriptedEngine::new(100_000))).await;
    let id = upload_id(&s, "bitcoin_intro.txt").await;
    s.stop().await;

    // What an older docent could leave behind: an index with another schema and no chunks.
    let index_dir = dir.path().join("index");
    std::fs::remove_dir_all(&index_dir).unwrap();
    std::fs::create_dir(&index_dir).unwrap();
    let mut schema = tantivy::schema::Schema::builder();
    schema.add_text_field("body", tantivy::schema::TEXT);
    tantivy::Index::create_in_dir(&index_dir, schema.build()).unwrap();

    let s = TestServer::start(&settings, Arc::new(ScriptedEngine::new(100_000))).await;
    let (status, body) = search(&s, &id, "double-spending", 3).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body["results"].as_array().unwrap().is_empty(), "the document was indexed again: {body}");
    s.stop().await;
}
