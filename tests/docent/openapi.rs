//! The OpenAPI document of API v1: valid OpenAPI 3.1 by a real validator, error responses with
//! the stable codes, and no drift: every route the server registers under /api/v1 is described,
//! and every described operation is routed, method by method.

use std::collections::BTreeSet;

use actix_web::{web, App, HttpRequest};
use serde_json::Value;

use crate::common::{client, get_html, get_json, run_tool, TestServer};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The resource patterns the app registers, read from actix's own resource map (its `Debug`
/// form: actix has no other way to list them), with their scopes' prefixes.
async fn registered_patterns() -> BTreeSet<String> {
    let app = actix_web::test::init_service(
        App::new()
            .route("/__routes", web::get().to(|req: HttpRequest| async move { format!("{:#?}", req.resource_map()) }))
            .configure(docent::http::configure),
    )
    .await;
    let req = actix_web::test::TestRequest::get().uri("/__routes").to_request();
    let dump = String::from_utf8(actix_web::test::call_and_read_body(&app, req).await.to_vec()).unwrap();
    // (indent, pattern, is_prefix) of the tree nodes enclosing the current line; the `named`
    // index repeats nodes under a key ("name": ResourceMap {), which is skipped.
    let mut stack: Vec<(usize, String, bool)> = Vec::new();
    let mut patterns = BTreeSet::new();
    let lines: Vec<&str> = dump.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if text == "ResourceMap {" {
            stack.push((indent, String::new(), false));
        } else if let Some(top) = stack.last_mut() {
            if indent == top.0 + 8 && text == "patterns: Single(" {
                top.1 = lines[i + 1].trim().trim_end_matches(',').trim_matches('"').to_owned();
            } else if indent == top.0 + 8 && text == "is_prefix: true," {
                top.2 = true;
            } else if indent == top.0 && text.starts_with('}') {
                let (_, _, prefix) = stack.last().cloned().unwrap();
                let full: String = stack.iter().map(|(_, p, _)| p.as_str()).collect();
                if !prefix {
                    patterns.insert(full);
                }
                stack.pop();
            }
        }
    }
    assert!(patterns.contains("/__routes"), "the resource map was not read: {patterns:?}");
    patterns.into_iter().filter(|p| p.starts_with("/api/v1/")).collect()
}

/// Whether `method path` reaches a handler: an unrouted request gets actix's empty 404 or 405,
/// every handler (errors included) answers with a body.
async fn routed(s: &TestServer, method: &str, path: &str) -> bool {
    let url = s.url(&path.replace("{id}", "nope"));
    let resp = client().request(method.parse().unwrap(), url).send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap();
    !(matches!(status, 404 | 405) && body.is_empty())
}

async fn document(s: &TestServer) -> (Value, BTreeSet<(String, String)>) {
    let resp = client().get(s.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let ops = run_tool("validate_openapi.py", text.as_bytes())
        .lines()
        .map(|l| {
            let (m, p) = l.split_once(' ').unwrap();
            (m.to_owned(), p.to_owned())
        })
        .collect();
    (serde_json::from_str(&text).unwrap(), ops)
}

#[actix_web::test]
async fn the_openapi_document_is_valid_3_1_and_describes_every_route_the_server_registers() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 100_000).await;
    let (doc, ops) = document(&s).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."), "{}", doc["openapi"]);

    // The same paths as the router's resources.
    let described: BTreeSet<String> = ops.iter().map(|(_, p)| p.clone()).collect();
    let registered = registered_patterns().await;
    assert_eq!(described, registered, "described paths against registered resources");
    // Method by method: described ones reach a handler, the others do not.
    for path in &registered {
        for method in METHODS {
            let is_described = ops.contains(&(method.to_owned(), path.clone()));
            assert_eq!(routed(&s, method, path).await, is_described, "{method} {path}");
        }
    }
    assert!(ops.len() >= 18, "{ops:?}");
    s.stop().await;
}

#[actix_web::test]
async fn every_error_response_in_the_openapi_document_names_codes_of_the_error_table() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 100_000).await;
    let (doc, ops) = document(&s).await;
    let table: BTreeSet<&str> = docent::error::ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let schema: BTreeSet<&str> = doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(schema, table);
    for (method, path) in &ops {
        let responses = doc["paths"][path][method.to_lowercase()]["responses"].as_object().unwrap();
        let errors: Vec<(&String, &Value)> = responses.iter().filter(|(status, _)| status.as_str() >= "400").collect();
        assert!(errors.iter().any(|(st, _)| st.as_str() == "401"), "{method} {path} lacks 401");
        for (status, r) in errors {
            let description = r["description"].as_str().unwrap();
            let codes: Vec<&str> = description.split('`').skip(1).step_by(2).collect();
            assert!(!codes.is_empty(), "{method} {path} {status}: {description}");
            for code in codes {
                assert!(table.contains(code), "{method} {path} {status}: unknown code {code}");
                let (_, http) = docent::error::ErrorCode::ALL.iter().map(|c| c.info()).find(|(c, _)| *c == code).unwrap();
                assert_eq!(http.to_string(), *status, "{method} {path}: {code} is not a {status}");
            }
            assert_eq!(r["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody");
        }
    }
    // The errors each operation can really give, e.g. a missing document.
    let get_doc = &doc["paths"]["/api/v1/documents/{id}"]["get"]["responses"]["404"]["description"];
    assert!(get_doc.as_str().unwrap().contains("`document_not_found`"), "{get_doc}");
    let too_long = &doc["paths"]["/api/v1/documents/{id}/analyses"]["post"]["responses"]["422"]["description"];
    assert!(too_long.as_str().unwrap().contains("`document_too_long`"), "{too_long}");
    s.stop().await;
}

#[actix_web::test]
async fn the_api_reference_page_lists_every_operation_from_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 100_000).await;
    let doc = get_json(&s, "/api/v1/openapi.json").await;
    // Tera escapes `/` in text.
    let page = get_html(&s, "/api").await.replace("&#x2F;", "/");
    let mut count = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let shown = format!("<code>{} {}</code>", method.to_uppercase(), path);
            assert!(page.contains(&shown), "{shown} missing");
            count += 1;
        }
    }
    assert!(count >= 18);
    assert!(page.contains("`document_not_found`") || page.contains("document_not_found"));
    // Bundled: nothing is loaded from another host.
    assert!(!page.contains("https://") && !page.contains("http://"), "the page loads something remote");
    s.stop().await;
}

/// A client generated from the document by a generator from PyPI (openapi-python-client) uploads a
/// corpus PDF and asks for its summary, as a client program of a team would.
#[actix_web::test]
async fn a_client_generated_from_the_document_uploads_a_pdf_and_summarizes_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::scripted(dir.path(), 100_000).await;
    let spec = client().get(s.url("/api/v1/openapi.json")).send().await.unwrap().text().await.unwrap();
    let spec_path = dir.path().join("openapi.json");
    std::fs::write(&spec_path, &spec).unwrap();
    let pdf = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpora/bitcoin.pdf");
    let input = serde_json::json!({
        "spec": spec_path, "out": dir.path(), "base_url": s.url(""), "pdf": pdf,
    })
    .to_string();
    // Blocking, off the test's thread: the server answers the tool's requests meanwhile.
    let out = actix_web::rt::task::spawn_blocking(move || run_tool("generated_client.py", input.as_bytes()))
        .await
        .unwrap();
    let got: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["filename"], "bitcoin.pdf", "{got}");
    assert_eq!(got["task"], "summary", "{got}");
    assert_eq!(got["analysis_document_id"], got["document_id"], "{got}");
    // Both are stored: the server serves them back by the ids the generated client read.
    let id = got["document_id"].as_str().unwrap();
    let doc = get_json(&s, &format!("/api/v1/documents/{id}")).await;
    assert!(doc["pages"].as_u64().unwrap() >= 9, "{doc}");
    let analysis = get_json(&s, &format!("/api/v1/analyses/{}", got["analysis_id"].as_str().unwrap())).await;
    assert_eq!(analysis["task"], "summary", "{analysis}");
    s.stop().await;
}
