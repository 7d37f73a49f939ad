//! The CPU engine: llama.cpp in process on the real default GGUF model. It must see the same
//! prompts as mistral.rs (the budgets every pipeline checks are counted in its tokens), keep
//! answers inside their grammar, and give a follow-up question that reuses the cached document
//! prefix the same answer as a cold run. The benchmark that chose it runs on the real parts too.

use docent::llm::{Engine, GenRequest, LocalSettings, MistralEngine, Runtime};

use crate::common::{default_model, read_corpus, settings};

fn question(doc: &str, q: &str) -> GenRequest {
    GenRequest {
        system: "Answer from the document only. Start with Yes or No, then one sentence.".into(),
        user: format!("Document:\n{doc}\n\nQuestion: {q}"),
        regex: Some("(Yes|No)\\. [A-Za-z0-9 ,'-]{1,120}\\.".into()),
        max_tokens: 64,
        ..Default::default()
    }
}

#[actix_web::test]
async fn llama_cpp_reads_prompts_as_mistral_rs_does_and_a_cached_prefix_changes_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.engine.model = default_model();
    assert_eq!(s.engine.runtime, Runtime::LlamaCpp, "a GGUF file on the CPU runs on llama.cpp by default");
    let doc = String::from_utf8(read_corpus("bitcoin_intro.txt")).unwrap();
    let first = question(&doc, "Does the paper propose a peer-to-peer system?");
    let second = question(&doc, "Does the system need a trusted third party?");

    // Same template, same tokenizer: the same counts on both engines.
    let llama = docent::llm::load_local(&s.engine).await.expect("llama.cpp loads the default model");
    let mistral = MistralEngine::load(&LocalSettings { runtime: Runtime::MistralRs, ..s.engine.clone() })
        .await
        .expect("mistral.rs loads the default model");
    assert_eq!(llama.count_tokens(&doc).await.unwrap(), mistral.count_tokens(&doc).await.unwrap());
    assert_eq!(
        llama.count_prompt_tokens(&first).await.unwrap(),
        mistral.count_prompt_tokens(&first).await.unwrap(),
        "the chat template differs between the engines"
    );
    assert_eq!(llama.context_limit(), mistral.context_limit());
    drop(mistral);

    // The second question shares the document with the first: its prefill starts from the cache.
    let a = llama.generate(first.clone()).await.unwrap();
    let b = llama.generate(second.clone()).await.unwrap();
    let pattern = regex::Regex::new(&format!("^(?:{})$", first.regex.as_deref().unwrap())).unwrap();
    for out in [&a, &b] {
        assert!(pattern.is_match(&out.text), "an answer outside its grammar: {:?}", out.text);
    }
    assert_eq!(a.prompt_tokens, llama.count_prompt_tokens(&first).await.unwrap());
    assert_eq!(b.prompt_tokens, llama.count_prompt_tokens(&second).await.unwrap());
    assert_eq!(a.cached_tokens, Some(0), "the first request found an empty cache");
    // Everything up to the question's own words came from the cache.
    let shared = doc.len() / 8;
    let cached = b.cached_tokens.unwrap();
    assert!(cached > shared && cached < b.prompt_tokens, "{cached} of {} prompt tokens cached", b.prompt_tokens);
    let cold = docent::llm::load_local(&LocalSettings { prefix_cache: false, ..s.engine.clone() }).await.unwrap();
    let c = cold.generate(second).await.unwrap();
    assert_eq!(c.cached_tokens, Some(0), "prefix_cache off reads nothing from the cache");
    assert_eq!(b.text, c.text, "the answer from a cached prefix differs from the cold one");
}

#[actix_web::test]
async fn the_cpu_benchmark_measures_every_part_against_its_peer() {
    let Some(server) = std::env::var_os("DOCENT_LLAMA_SERVER") else {
        panic!("DOCENT_LLAMA_SERVER is unset: run the tests with scripts/test.sh, which builds llama-server");
    };
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.md");
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora");
    let pdfs = [corpus.join("bitcoin.pdf"), corpus.join("encrypted_rc4_userpw-openpassword.pdf")];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_docent"))
            .args(["bench", "cpu", "--lengths", "256", "--decode-tokens", "4", "--mistralrs-lengths", "256"])
            .arg("--corpus")
            .arg(corpus.join("bitcoin_intro.txt"))
            .arg("--pdfs")
            .arg(pdfs.iter().map(|p| p.to_string_lossy().into_owned()).collect::<Vec<_>>().join(","))
            .arg("--report")
            .arg(&report)
            .env("DOCENT_LLAMA_SERVER", server)
            .env("DOCENT_MODELS_DIR", crate::common::models_dir())
            .output()
            .map(|o| (o, std::fs::read_to_string(&report)))
    })
    .await
    .unwrap()
    .unwrap();
    let (output, report) = out;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report = report.unwrap();
    eprintln!("{report}");
    // One row per length: docent's rates, the peer's, their ratios, and mistral.rs's.
    let row = report.lines().find(|l| l.starts_with("| 256 |")).expect("the 256-token row");
    let cells: Vec<&str> = row.split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
    let num = |i: usize| cells[i].split(' ').next().unwrap().parse::<f64>().unwrap_or_else(|_| panic!("{row}"));
    for i in [1, 2, 3, 4, 5, 6, 7, 8] {
        assert!(num(i) > 0.0, "column {i} of {row}");
    }
    assert!((num(3) - num(1) / num(2)).abs() < 0.01, "the prefill ratio is docent / peer: {row}");
    // The parsed PDF agrees with poppler's text; the encrypted one is an error row with its code.
    let bitcoin = report.lines().find(|l| l.starts_with("| bitcoin.pdf |")).expect("the bitcoin.pdf row");
    assert!(bitcoin.contains("| 9 / 9 |"), "{bitcoin}");
    let f1: f64 = bitcoin.split('|').map(str::trim).nth(6).unwrap().parse().unwrap();
    assert!(f1 > 0.9, "{bitcoin}");
    assert!(report.contains("| encrypted_rc4_userpw-openpassword.pdf | docent: pdf_encrypted"), "{report}");
    // The index and its peer answered every query.
    assert!(report.contains("| query p99, ms |"), "{report}");
}
