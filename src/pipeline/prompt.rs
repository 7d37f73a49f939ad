//! The prompts both pipelines send: the same system instruction, the text as numbered segments,
//! and an answer format constrained so that every line opens with the marker of a segment that
//! exists (evidence first), then a claim drawn from that segment. Every task is asked in two
//! steps on the same prefix: first only the markers of the segments that hold the answer (one
//! for a question, up to five for a summary), then each line with its segment quoted right
//! before it. A question is never offered the refusal; whether it is answered is decided from
//! the evidence (pipeline::answer).

use crate::cite::guard::Echoes;
use crate::cite::{self, Alphabet};
use crate::domain::Task;
use crate::llm::GenRequest;

use super::TaskSpec;

/// Tokens a line of the answer may take: a marker (about 8 tokens) and a claim of at most
/// `cite::MAX_CLAIM_WORDS` words. Only a line of unusually long words reaches it; a question's
/// one-line answer then stops there, and the document is checked against this, not the
/// configured answer budget, when it must fit the context.
const LINE_TOKENS: usize = 96;

/// Tokens a summary's point may take: a marker and a claim of at most
/// `cite::MAX_SUMMARY_CLAIM_WORDS` words.
const POINT_TOKENS: usize = 160;

/// Bytes of evidence a question's second request quotes at most (a segment is at most 600).
pub const QUOTE_MAX_BYTES: usize = 700;

/// Tokens the first request may write for each marker ("[S", up to five digits, "]", a line
/// break).
const EVIDENCE_TOKENS: usize = 16;

/// Tokens a second request (a line with its evidence quoted) adds to the first one's prompt,
/// besides its line: the quoted evidence (at most `QUOTE_MAX_BYTES`, a token a byte in the
/// worst case of a script without spaces, about 4 bytes a token in English) and its instruction.
const QUOTE_TOKENS: usize = QUOTE_MAX_BYTES + 64;

/// Tokens to keep free beyond `request`'s prompt and `max_tokens` when checking that it fits a
/// context: a second request's. Picking among claims already written (`Step::Claims`) needs
/// none: the picked claims are the lines.
pub fn reserve(step: &Step<'_>) -> usize {
    match step {
        Step::Claims => 0,
        _ if step.question().is_some() => QUOTE_TOKENS + LINE_TOKENS,
        _ => QUOTE_TOKENS + POINT_TOKENS,
    }
}

/// The one line a question may be answered with when the document does not say.
pub const REFUSAL: &str = "The document does not say.";

/// The format example. About a bridge, so that a line copied from it is plainly no restatement
/// of a contract or a paper (an example about an agreement "that lasts two years" was copied into
/// contracts' summaries).
const EXAMPLE: &str = "[S31] The bridge opened to traffic in 1932.\n[S75] It carries six lanes over the river.";

fn system() -> String {
    format!(
        "You are docent, a careful analyst of documents. You answer only from the document you are \
         given. The document comes as numbered segments, one per line, each ending with its marker, \
         such as [S12]. You answer in lines. Each line starts with the marker of the one segment that \
         supports it, then one short sentence that says what that segment says. An example of the \
         format, from an answer about another document:\n{EXAMPLE}"
    )
}

/// What the model is asked to do with the segments it is shown.
pub enum Step<'a> {
    /// The user's task on the whole document.
    Task(&'a TaskSpec),
    /// The user's task on some excerpts (retrieved chunks, or one window of a long document).
    Excerpts(&'a TaskSpec),
    /// Summarising claims already drawn from the document (the reduce step of map-reduce).
    Claims,
}

impl Step<'_> {
    /// The question, when the step answers one.
    pub fn question(&self) -> Option<&str> {
        match self {
            Self::Task(t) | Self::Excerpts(t) if t.task == Task::Question => t.question.as_deref(),
            _ => None,
        }
    }

    fn source(&self) -> &'static str {
        if matches!(self, Self::Task(_)) {
            "document"
        } else {
            "excerpts"
        }
    }

    /// What the first request asks for after the text, with `{q}` where the question goes, and
    /// the fewest and most markers it may write. No refusal in the format or the instruction:
    /// offered one, the 0.5B model wrote it even after pointing at the right segment. Whether a
    /// question is answered is decided from the evidence it points at (pipeline::answer).
    fn instruction(&self) -> (String, usize, usize) {
        if self.question().is_some() {
            return (format!("{}Write only its marker.", self.head()), 1, 1);
        }
        let (min, max) = self.points();
        (format!("{}Write only their markers, one per line.", self.head()), min, max)
    }

    /// The fewest and most points of a summary.
    fn points(&self) -> (usize, usize) {
        match self {
            Self::Excerpts(_) => (1, 3),
            _ => (3, 5),
        }
    }

    /// The most points of a summary: the parts its text is cut into, one point from each.
    pub fn parts(&self) -> usize {
        self.points().1
    }

    /// What both requests of a task open with after the text: the question and what the model
    /// looks for, or the summary it writes and the segments it looks for.
    fn head(&self) -> String {
        if self.question().is_some() {
            return format!("Question: {{q}}\nFind the segment of the {} that answers the question. ", self.source());
        }
        match self {
            Self::Excerpts(_) => "These are consecutive excerpts of a longer document. Summarize them in a few \
                                  points, in order: find the segments that state them, one in each part of the \
                                  excerpts. "
                .to_owned(),
            Self::Claims => "These segments are points taken from all parts of a document, in order. Summarize the \
                             document in a few of them, from its purpose to its conclusion: find them, one in each \
                             part of the list. "
                .to_owned(),
            Self::Task(_) => "Summarize the document in a few points, from its purpose to its conclusion: find the \
                              segments of the document that state them, one in each part of the document. "
                .to_owned(),
        }
    }

    /// The second request's words before the quoted evidence, and its instruction after it.
    fn quote_frame(&self) -> (&'static str, &'static str) {
        if self.question().is_some() {
            (
                "The segment that answers it:",
                "Answer the question in one line: the marker of the segment that answers it, then one short \
                 sentence that says what that segment says.",
            )
        } else {
            (
                "One of those segments:",
                "Write its point in one line: the marker of the segment, then one short sentence that says what \
                 that segment says.",
            )
        }
    }

    /// What a degenerate line would repeat from this step's prompt (a question's answer may
    /// still write the refusal as a claim).
    pub fn echoes(&self) -> Echoes {
        let (instruction, _, _) = self.instruction();
        let refusal = self.question().map(|_| REFUSAL);
        let (before, after) = self.quote_frame();
        Echoes::new(&[EXAMPLE, instruction.replace("{q}", "").as_str(), before, after], refusal)
    }

    /// The characters an answer may use: the segments' and the question's.
    pub fn alphabet(&self, numbered: &str) -> Alphabet {
        Alphabet::of(&[numbered, self.question().unwrap_or_default()])
    }
}

/// The first request for `step` on the `numbered` segments labelled `labels`: the markers of
/// the segments that hold the answer, nothing else, in at most `max_tokens`. `reserve` says
/// what a second request needs besides.
pub fn request(numbered: &str, labels: &[u32], step: &Step<'_>, max_tokens: usize) -> GenRequest {
    let (instruction, min, max) = step.instruction();
    let instruction = instruction.replace("{q}", step.question().unwrap_or_default());
    let min = min.min(labels.len()).max(1);
    GenRequest {
        system: system(),
        user: format!("<document>\n{numbered}</document>\n\n{instruction}"),
        regex: Some(cite::markers_regex(labels, min, max.max(min))),
        max_tokens: (max * EVIDENCE_TOKENS).min(max_tokens),
        reuse_prefix: false,
    }
}

/// A summary's first request (from `request`) with one marker from each of `parts` (labels of
/// the segments of each part of the text, in order), one a line: a summary's points are spread
/// over the whole text. Free to pick, the 0.5B model named the first segments of a contract (its
/// title, its parties).
pub fn one_from_each(mut first: GenRequest, parts: &[Vec<u32>]) -> GenRequest {
    let lines: Vec<String> = parts.iter().filter(|p| !p.is_empty()).map(|p| cite::marker_regex(p)).collect();
    first.max_tokens = first.max_tokens.min(lines.len() * EVIDENCE_TOKENS);
    first.regex = Some(format!("{}\\n?", lines.join("\\n")));
    first
}

/// A second request: the same text and head as the first, then `quote` (evidence the first
/// request pointed at, as numbered lines labelled `quote_labels`), then one line, which must
/// cite one of them. It shares the first request's prompt up to the head, so an engine with a
/// prefix cache reads only the quote and the instruction. The line takes at most `max_tokens`.
pub fn quoted_request(
    numbered: &str,
    quote: &str,
    quote_labels: &[u32],
    step: &Step<'_>,
    max_tokens: usize,
) -> GenRequest {
    let head = step.head().replace("{q}", step.question().unwrap_or_default());
    let (before, after) = step.quote_frame();
    let (words, line_tokens) = match step.question() {
        Some(_) => (cite::MAX_CLAIM_WORDS, LINE_TOKENS),
        None => (cite::MAX_SUMMARY_CLAIM_WORDS, POINT_TOKENS),
    };
    GenRequest {
        system: system(),
        user: format!("<document>\n{numbered}</document>\n\n{head}\n{before}\n{quote}\n{after}"),
        regex: Some(cite::line_regex_in(quote_labels, words, &step.alphabet(numbered))),
        max_tokens: line_tokens.min(max_tokens),
        reuse_prefix: true,
    }
}
