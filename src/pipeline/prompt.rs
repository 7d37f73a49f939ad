//! The prompts both pipelines send: the same system instruction, the text as numbered segments,
//! and an answer format constrained so that every line opens with the marker of a segment that
//! exists (evidence first), then a claim drawn from that segment. A question is never offered
//! the refusal; whether it is answered is decided from the evidence (pipeline::answer).

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
            let source = self.source();
            // No refusal in the format or the instruction: offered one, the 0.5B model wrote it even
            // after pointing at the right segment. Whether the question is answered is decided
            // from the evidence it points at (pipeline::answer).
            return (
                format!(
                    "Question: {{q}}\nFind the segment of the {source} that answers the question and start \
                     your answer with its marker. Then answer in one line."
                ),
                // One line: the answer is decided from the first line's evidence, and further lines
                // (up to three before) tripled its tokens without changing a single decision.
                1,
                None,
            );
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

    /// What a degenerate line would repeat from this step's prompt (a question's answer may
    /// still write the refusal as a claim).
    pub fn echoes(&self) -> Echoes {
        let (instruction, _, _) = self.instruction();
        let refusal = self.question().map(|_| REFUSAL);
        Echoes::new(&[EXAMPLE, instruction.replace("{q}", "").as_str()], refusal)
    }

    /// The characters an answer may use: the segments' and the question's.
    pub fn alphabet(&self, numbered: &str) -> Alphabet {
        Alphabet::of(&[numbered, self.question().unwrap_or_default()])
    }
}

pub fn request(numbered: &str, labels: &[u32], step: &Step<'_>, max_tokens: usize) -> GenRequest {
    let (instruction, lines, refusal) = step.instruction();
    let instruction = instruction.replace("{q}", step.question().unwrap_or_default());
    GenRequest {
        system: system(),
        user: format!("<document>\n{numbered}</document>\n\n{instruction}"),
        regex: Some(cite::answer_regex_in(labels, lines, refusal, &step.alphabet(numbered))),
        max_tokens: max_tokens.min(lines * LINE_TOKENS),
    }
}
