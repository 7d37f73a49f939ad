//! The prompts both pipelines send: the same system instruction, the text as numbered segments,
//! and an answer format constrained so that every line opens with the marker of a segment that
//! exists (evidence first), then a claim drawn from that segment. A question is asked in two
//! requests on the same prefix: first only the marker of the segment that answers it, then the
//! answer line with that segment quoted right before it. It is never offered the refusal;
//! whether it is answered is decided from the evidence (pipeline::answer).

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

/// Bytes of evidence a question's second request quotes at most (a segment is at most 600).
pub const QUOTE_MAX_BYTES: usize = 700;

/// Tokens a question's first request may write: one marker ("[S", up to five digits, "]").
const EVIDENCE_TOKENS: usize = 16;

/// Tokens a question's second request adds to the first one's prompt: the quoted evidence (at
/// most `QUOTE_MAX_BYTES`, a token a byte in the worst case of a script without spaces, about 4
/// bytes a token in English), its instruction and the answer line.
const QUESTION_TOKENS: usize = QUOTE_MAX_BYTES + 64 + LINE_TOKENS;

/// Tokens to keep free beyond `request`'s prompt and `max_tokens` when checking that it fits a
/// context: for a question, its second request's.
pub fn reserve(step: &Step<'_>) -> usize {
    if step.question().is_some() {
        QUESTION_TOKENS
    } else {
        0
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

    /// The instruction after the document, with `{q}` where the question goes; the number of
    /// lines allowed; the refusal when the format allows one (none does now: a question's
    /// refusal is decided from the evidence, not offered to the model).
    fn instruction(&self) -> (String, usize, Option<&'static str>) {
        if self.question().is_some() {
            // The first of a question's two requests: the marker alone. No refusal in the format
            // or the instruction: offered one, the 0.5B model wrote it even after pointing at the
            // right segment. Whether the question is answered is decided from the evidence it
            // points at (pipeline::answer).
            return (format!("{}Write only its marker.", self.question_head()), 1, None);
        }
        match self {
            Self::Task(_) => (
                "Summarize the document in three to five lines, from its purpose to its conclusion. Each \
                 line starts with the marker of the segment it restates."
                    .to_owned(),
                5,
                None,
            ),
            Self::Excerpts(_) => (
                "These are consecutive excerpts of a longer document. Summarize them in one to three lines. \
                 Each line starts with the marker of the segment it restates."
                    .to_owned(),
                3,
                None,
            ),
            Self::Claims => (
                "These segments are points taken from all parts of a document, in order. Summarize the \
                 document in three to five lines, from its purpose to its conclusion. Each line starts with \
                 the marker of the point it restates."
                    .to_owned(),
                5,
                None,
            ),
        }
    }

    /// The question and what the model looks for, as both of a question's requests open.
    fn question_head(&self) -> String {
        format!("Question: {{q}}\nFind the segment of the {} that answers the question. ", self.source())
    }

    /// The second request's instruction, after the quoted evidence.
    const CLAIM_INSTRUCTION: &'static str =
        "Answer the question in one line: the marker of the segment that answers it, then one short \
         sentence that says what that segment says.";

    /// What a degenerate line would repeat from this step's prompt (a question's answer may
    /// still write the refusal as a claim).
    pub fn echoes(&self) -> Echoes {
        let (instruction, _, _) = self.instruction();
        let refusal = self.question().map(|_| REFUSAL);
        let claim_instruction = if refusal.is_some() { Self::CLAIM_INSTRUCTION } else { "" };
        Echoes::new(&[EXAMPLE, instruction.replace("{q}", "").as_str(), claim_instruction], refusal)
    }

    /// The characters an answer may use: the segments' and the question's.
    pub fn alphabet(&self, numbered: &str) -> Alphabet {
        Alphabet::of(&[numbered, self.question().unwrap_or_default()])
    }
}

/// The request for `step` on the `numbered` segments labelled `labels`. For a question, the
/// first of its two requests (the marker of the segment that answers it); `reserve` says what
/// the second needs besides.
pub fn request(numbered: &str, labels: &[u32], step: &Step<'_>, max_tokens: usize) -> GenRequest {
    let (instruction, lines, refusal) = step.instruction();
    let instruction = instruction.replace("{q}", step.question().unwrap_or_default());
    let (regex, max_tokens) = match step.question() {
        Some(_) => (cite::marker_regex(labels), EVIDENCE_TOKENS),
        None => (
            cite::answer_regex_in(labels, lines, refusal, &step.alphabet(numbered)),
            max_tokens.min(lines * LINE_TOKENS),
        ),
    };
    GenRequest {
        system: system(),
        user: format!("<document>\n{numbered}</document>\n\n{instruction}"),
        regex: Some(regex),
        max_tokens,
        reuse_prefix: false,
    }
}

/// A question's second request: the same document and question, then `quote` (the evidence
/// `answer::ask` chose, as numbered lines labelled `quote_labels`), then the answer line, which
/// must cite one of them. It shares the first request's prompt up to the question,
/// so an engine with a prefix cache reads only the quote and the instruction.
pub fn claim_request(numbered: &str, quote: &str, quote_labels: &[u32], step: &Step<'_>) -> GenRequest {
    let head = step.question_head().replace("{q}", step.question().unwrap_or_default());
    GenRequest {
        system: system(),
        user: format!(
            "<document>\n{numbered}</document>\n\n{head}\nThe segment that answers it:\n{quote}\n{}",
            Step::CLAIM_INSTRUCTION
        ),
        regex: Some(cite::answer_regex_in(quote_labels, 1, None, &step.alphabet(numbered))),
        max_tokens: LINE_TOKENS,
        reuse_prefix: true,
    }
}
