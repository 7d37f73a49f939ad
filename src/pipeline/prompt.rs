//! The prompts both pipelines send: the same system instruction, the text as numbered segments,
//! and an answer format constrained so that every line cites a segment that exists.

use crate::cite;
use crate::domain::Task;
use crate::llm::GenRequest;

use super::TaskSpec;

/// The one line a question may be answered with when the document does not say.
pub const REFUSAL: &str = "The document does not say.";

const SYSTEM: &str = "You are docent, a careful analyst of documents. You answer only from the \
document you are given. The document comes as numbered segments, one per line, each ending \
with its marker, such as [S12]. You answer in lines. Every line is one short sentence that says \
only what a segment of the document says, ending with that segment's marker (up to three \
markers when it combines segments). An example of the format, from an answer about another \
document:\n\
The agreement starts on 1 May 2020 and lasts two years. [S3]\n\
Either party may end it with 30 days' written notice. [S7][S8]";

/// What the model is asked to do with the segments it is shown.
pub enum Step<'a> {
    /// The user's task on the whole document.
    Task(&'a TaskSpec),
    /// The user's task on some excerpts (retrieved chunks, or one window of a long document).
    Excerpts(&'a TaskSpec),
    /// Summarising claims already drawn from the document (the reduce step of map-reduce).
    Claims,
}

pub fn request(numbered: &str, labels: &[u32], step: Step<'_>, max_tokens: usize) -> GenRequest {
    let question = |t: &TaskSpec| t.question.clone().filter(|_| t.task == Task::Question);
    let (instruction, lines, refusal) = match step {
        Step::Task(t) | Step::Excerpts(t) if question(t).is_some() => (
            format!(
                "Question: {}\nAnswer it from the {} in one to three lines, each ending with the marker \
                 of the segment that states it. If the {} does not answer it, write exactly: {REFUSAL}",
                question(t).unwrap_or_default(),
                if matches!(step, Step::Task(_)) { "document" } else { "excerpts" },
                if matches!(step, Step::Task(_)) { "document" } else { "excerpts" },
            ),
            3,
            Some(REFUSAL),
        ),
        Step::Task(_) => (
            "Summarize the document in three to five lines: its purpose, its main points and its \
             conclusion. Each line ends with the marker of the segment it restates."
                .to_owned(),
            5,
            None,
        ),
        Step::Excerpts(_) => (
            "These are consecutive excerpts of a longer document. Summarize their main points in \
             one to three lines. Each line ends with the marker of the segment it restates."
                .to_owned(),
            3,
            None,
        ),
        Step::Claims => (
            "These segments are points taken from all parts of a document, in order. Summarize the \
             document in three to five lines: its purpose, its main points and its conclusion. Each \
             line ends with the marker of the point it restates."
                .to_owned(),
            5,
            None,
        ),
    };
    GenRequest {
        system: SYSTEM.to_owned(),
        user: format!("<document>\n{numbered}</document>\n\n{instruction}"),
        regex: Some(cite::answer_regex(labels, lines, refusal)),
        max_tokens,
    }
}
