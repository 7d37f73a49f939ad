//! What an evaluation asks: CUAD clause questions from gold annotations, needles inserted at
//! controlled depths into real documents, and summaries. Built deterministically from the files
//! and a seed, so a run can be repeated item for item.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::metrics::python_str_list;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    Cuad,
    Needle,
    Summary,
}

impl Suite {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cuad => "cuad",
            Self::Needle => "needle",
            Self::Summary => "summary",
        }
    }
}

/// How a CUAD category's answer is judged besides its spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerCheck {
    /// Right when the model answers exactly when the contract has the clause, and says the
    /// document does not say when it has none.
    Presence,
    /// Also right only when the answer states CUAD's normalised answer (e.g. the governing law).
    Text,
}

/// The CUAD categories asked, each with its question and answer check. Questions name what the
/// clause does, not CUAD's label, as a user would ask.
pub const CUAD_QUESTIONS: &[(&str, &str, AnswerCheck)] = &[
    ("Governing Law", "Which state's or country's law governs this agreement?", AnswerCheck::Text),
    ("Expiration Date", "When does the initial term of this agreement end?", AnswerCheck::Presence),
    ("Renewal Term", "Does this agreement renew after its initial term, and for how long?", AnswerCheck::Presence),
    ("Termination For Convenience", "May a party terminate this agreement without cause?", AnswerCheck::Presence),
    ("Non-Compete", "Does this agreement restrict a party from competing with the other?", AnswerCheck::Presence),
    ("Exclusivity", "Does this agreement grant exclusive rights or require exclusive dealing?", AnswerCheck::Presence),
    ("Anti-Assignment", "Does assigning this agreement require the other party's consent?", AnswerCheck::Presence),
    ("Cap On Liability", "Does this agreement cap a party's liability?", AnswerCheck::Presence),
];

/// Where an item's document comes from.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DocSource {
    File {
        path: PathBuf,
    },
    /// Text made for the item (a haystack with its needle), uploaded as `name`.
    Text {
        name: String,
        #[serde(skip)]
        text: String,
    },
}

impl DocSource {
    pub fn name(&self) -> String {
        match self {
            Self::File { path } => path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            Self::Text { name, .. } => name.clone(),
        }
    }
}

/// What the right answer is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Gold {
    Clause {
        category: String,
        /// CUAD's clause texts; empty when the contract has no such clause.
        clauses: Vec<String>,
        answer: String,
        check: AnswerCheck,
    },
    Needle {
        /// The inserted sentence.
        sentence: String,
        /// The fact's value the answer must state.
        value: String,
        depth_percent: u32,
        nominal_tokens: usize,
        /// Byte offset of the sentence in the uploaded text.
        offset: usize,
    },
    Summary,
}

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub suite: Suite,
    /// Stable across runs with the same inputs: `cuad/<contract>/<category>`, ...
    pub id: String,
    pub doc: DocSource,
    /// `None` asks for a summary.
    pub question: Option<String>,
    pub gold: Gold,
}

#[derive(Deserialize)]
struct CuadGold {
    categories: std::collections::BTreeMap<String, CuadCategory>,
}

#[derive(Deserialize)]
struct CuadCategory {
    context: String,
    /// CUAD leaves the answer out (null) for some absent clauses.
    #[serde(default)]
    answer: Option<String>,
}

/// The documents of a directory that docent reads (`.txt`, `.md`, `.pdf`), by name.
pub fn documents_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs_err::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "txt" | "md" | "pdf"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// CUAD items: for each contract in `docs` with a `<stem>.gold.json` in `gold`, one question per
/// category of `CUAD_QUESTIONS`. A category CUAD marks absent (`[]`) is a "no such clause" item:
/// the right answer says so and cites nothing. The order is fixed, so that a `--limit` run takes a
/// spread rather than one contract: contracts shortest first (to fit a small model's context),
/// in rounds of one item per contract, contract `c` asking the categories rotated by `c`.
pub fn cuad_items(docs: &Path, gold: &Path) -> anyhow::Result<Vec<Item>> {
    let mut contracts = Vec::new();
    for path in documents_in(docs)? {
        let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else { continue };
        let gold_path = gold.join(format!("{stem}.gold.json"));
        if !gold_path.exists() {
            continue;
        }
        let size = fs_err::metadata(&path)?.len();
        contracts.push((size, path, gold_path));
    }
    contracts.sort();
    let mut per_contract = Vec::new();
    for (c, (_, path, gold_path)) in contracts.into_iter().enumerate() {
        let mut items = Vec::new();
        let parsed: CuadGold = serde_json::from_slice(&fs_err::read(&gold_path)?)
            .with_context(|| format!("reading CUAD gold {}", gold_path.display()))?;
        let contract = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        for (category, question, check) in CUAD_QUESTIONS {
            let Some(entry) = parsed.categories.get(*category) else { continue };
            let clauses = python_str_list(&entry.context)
                .with_context(|| format!("{}: `{category}` context is not a list", gold_path.display()))?;
            items.push(Item {
                suite: Suite::Cuad,
                id: format!("cuad/{contract}/{category}"),
                doc: DocSource::File { path: path.clone() },
                question: Some((*question).to_owned()),
                gold: Gold::Clause {
                    category: (*category).to_owned(),
                    clauses,
                    answer: entry.answer.clone().unwrap_or_default(),
                    check: *check,
                },
            });
        }
        let shift = c % items.len().max(1);
        items.rotate_left(shift);
        per_contract.push(items.into_iter());
    }
    let mut items = Vec::new();
    loop {
        let before = items.len();
        items.extend(per_contract.iter_mut().filter_map(Iterator::next));
        if items.len() == before {
            return Ok(items);
        }
    }
}

/// A small deterministic generator (splitmix64), so needles depend on the seed alone.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        let n = options.len().max(1) as u64;
        options.get((self.next_u64() % n) as usize).copied().unwrap_or_default()
    }
}

const NEEDLE_THINGS: &[&str] =
    &["archive", "lighthouse", "observatory", "greenhouse", "foundry", "library", "harbour office"];
const NEEDLE_PLACES: &[&str] =
    &["Tromsø", "Valparaíso", "Kraków", "Hobart", "Nagasaki", "Windhoek", "Tallinn", "Cusco"];

/// A fact no document states, its question, and the value the answer must give.
pub fn needle(rng: &mut Rng) -> (String, String, String) {
    let thing = rng.pick(NEEDLE_THINGS);
    let place = rng.pick(NEEDLE_PLACES);
    let code = 1000 + rng.next_u64() % 9000;
    (
        format!("The door code of the {thing} in {place} is {code}."),
        format!("What is the door code of the {thing} in {place}?"),
        code.to_string(),
    )
}

/// Approximate characters per token of English prose, to cut a haystack of a nominal length;
/// each result records the prompt tokens the model actually read.
pub const CHARS_PER_TOKEN: usize = 4;

/// `text` cut to about `chars` bytes at a paragraph or sentence end, with `sentence` inserted at
/// the sentence boundary nearest `depth_percent` of it. Returns the text and the sentence's offset.
pub fn insert_needle(text: &str, chars: usize, depth_percent: u32, sentence: &str) -> (String, usize) {
    let cut = boundary_before(text, chars.min(text.len()));
    let hay = text.get(..cut).unwrap_or(text);
    let target = hay.len() * depth_percent.min(100) as usize / 100;
    let at = if target >= hay.len() { hay.len() } else { boundary_before(hay, target) };
    let (before, after) = (hay.get(..at).unwrap_or(""), hay.get(at..).unwrap_or(""));
    let sep = if before.is_empty() || before.ends_with(char::is_whitespace) { "" } else { " " };
    let tail = if after.is_empty() || after.starts_with(char::is_whitespace) { "" } else { " " };
    let offset = before.len() + sep.len();
    (format!("{before}{sep}{sentence}{tail}{after}"), offset)
}

/// The largest offset ≤ `at` just after a sentence end (`. `, `? `, `! `) or a line break; 0 if
/// none. Always a char boundary.
fn boundary_before(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let head = text.get(..at).unwrap_or("");
    let mut best = 0;
    for (i, c) in head.char_indices() {
        let next = i + c.len_utf8();
        // Look past the cut: "3." cut from "3.5" does not end a sentence; the text's end does.
        let ends = match c {
            '\n' => true,
            '.' | '?' | '!' => text.get(next..).is_some_and(|r| r.is_empty() || r.starts_with(char::is_whitespace)),
            _ => false,
        };
        if ends {
            best = next;
        }
    }
    best
}

/// The documents from the `first`, joined by blank lines (wrapping round) until `chars` long, so
/// that a haystack reaches its nominal length even when one document is shorter.
fn haystack(haystacks: &[(String, String)], first: usize, chars: usize) -> (String, String) {
    let mut text = String::new();
    let mut name = String::new();
    for k in 0..haystacks.len() {
        let Some((n, t)) = haystacks.get((first + k) % haystacks.len()) else { break };
        if name.is_empty() {
            name = n.clone();
        }
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(t);
        if text.len() >= chars {
            break;
        }
    }
    (name, text)
}

/// Needle items: for each nominal length and depth, a haystack from the documents in turn (their
/// normalised text, given here as `(name, text)`), and a fresh needle from the seeded generator.
pub fn needle_items(haystacks: &[(String, String)], lengths: &[usize], depths: &[u32], seed: u64) -> Vec<Item> {
    let mut rng = Rng::new(seed);
    let mut items = Vec::new();
    if haystacks.is_empty() {
        return items;
    }
    let mut which = 0usize;
    for &tokens in lengths {
        for &depth in depths {
            let (name, text) = haystack(haystacks, which, tokens * CHARS_PER_TOKEN);
            which += 1;
            let (sentence, question, value) = needle(&mut rng);
            let (hay, offset) = insert_needle(&text, tokens * CHARS_PER_TOKEN, depth, &sentence);
            let stem = Path::new(&name).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            items.push(Item {
                suite: Suite::Needle,
                id: format!("needle/{tokens}/{depth}"),
                doc: DocSource::Text { name: format!("{stem}-needle-{tokens}-{depth}.txt"), text: hay },
                question: Some(question),
                gold: Gold::Needle { sentence, value, depth_percent: depth, nominal_tokens: tokens, offset },
            });
        }
    }
    items
}

/// Summary items: every document, by name.
pub fn summary_items(docs: &Path) -> anyhow::Result<Vec<Item>> {
    Ok(documents_in(docs)?
        .into_iter()
        .map(|path| Item {
            suite: Suite::Summary,
            id: format!("summary/{}", path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()),
            doc: DocSource::File { path },
            question: None,
            gold: Gold::Summary,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needles_are_the_same_for_a_seed_and_differ_between_seeds() {
        let a = needle(&mut Rng::new(7));
        assert_eq!(a, needle(&mut Rng::new(7)));
        assert_ne!(a, needle(&mut Rng::new(8)));
        assert!(a.0.contains(&a.2), "the sentence states the value");
    }

    #[test]
    fn a_needle_goes_in_at_a_sentence_boundary_near_its_depth() {
        let text = "One fact here. Two facts here. Three facts here. Four facts here.";
        let (out, at) = insert_needle(text, text.len(), 50, "NEEDLE.");
        assert_eq!(out.get(at..at + 7), Some("NEEDLE."));
        assert!(out.starts_with("One fact here. Two facts here. NEEDLE. Three"), "{out}");
        let (start, at0) = insert_needle(text, text.len(), 0, "NEEDLE.");
        assert_eq!(at0, 0);
        assert!(start.starts_with("NEEDLE. One"));
        let (end, at100) = insert_needle(text, text.len(), 100, "NEEDLE.");
        assert!(end.ends_with("Four facts here. NEEDLE."), "{end}");
        assert_eq!(end.get(at100..), Some("NEEDLE."));
    }

    #[test]
    fn a_haystack_is_cut_at_a_sentence_end_and_never_inside_a_character() {
        let text = "Première phrase é. Deuxième phrase è. Troisième.";
        for chars in 0..text.len() {
            let (out, _) = insert_needle(text, chars, 50, "X.");
            assert!(out.len() <= chars + 3, "{chars}: {out}");
            assert!(out.trim_end().ends_with('.'), "{chars}: {out}");
        }
    }

    #[test]
    fn a_short_haystack_is_joined_with_the_next_documents() {
        let docs = vec![("a.txt".to_owned(), "Alpha one. ".repeat(10)), ("b.txt".to_owned(), "Beta two. ".repeat(10))];
        let items = needle_items(&docs, &[40], &[50], 3);
        let [item] = items.as_slice() else { panic!("one item") };
        let DocSource::Text { text, name } = &item.doc else { panic!("generated text") };
        assert!(name.starts_with("a-needle-40-50"));
        assert!(text.contains("Alpha") && text.contains("Beta") && text.len() <= 160 + 60, "{text}");
        let Gold::Needle { offset, sentence, .. } = &item.gold else { panic!("needle gold") };
        assert_eq!(text.get(*offset..offset + sentence.len()), Some(sentence.as_str()));
    }

    #[test]
    fn cuad_items_pair_contracts_with_gold_and_mark_absent_clauses() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("b.txt"), "a longer contract text").unwrap();
        fs_err::write(dir.path().join("a.txt"), "short").unwrap();
        fs_err::write(dir.path().join("c.txt"), "no gold for this one").unwrap();
        let gold = r#"{"categories": {"Governing Law": {"context": "['laws of Texas']", "answer": "Texas"},
            "Non-Compete": {"context": "[]", "answer": null}}}"#;
        fs_err::write(dir.path().join("a.gold.json"), gold).unwrap();
        fs_err::write(dir.path().join("b.gold.json"), gold).unwrap();
        let items = cuad_items(dir.path(), dir.path()).unwrap();
        let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
        // Shortest contract first, in rounds, the second contract's categories rotated by one.
        assert_eq!(ids, ["cuad/a/Governing Law", "cuad/b/Non-Compete", "cuad/a/Non-Compete", "cuad/b/Governing Law"]);
        let Gold::Clause { clauses, .. } = &items[1].gold else { panic!("not a clause item") };
        assert!(clauses.is_empty());
    }
}
