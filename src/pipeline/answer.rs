//! From the model's constrained output to claims with the segments they cite: the lines
//! parsed, labels mapped to segments, degenerate lines dropped, and, for a question, the
//! decision to answer or decline taken from the evidence the model pointed at first.

use std::collections::HashSet;

use crate::cite::guard::guard;
use crate::cite::support::{content_words, support, MIN_SUPPORT};
use crate::cite::{self, narrow, Alphabet};
use crate::domain::Segment;

use super::prompt::{Step, REFUSAL};

/// Words of a contract question that say nothing about what it asks ("Does this agreement …
/// a party's …"), as `content_words` stems them.
const GENERIC: &[&str] = &["agreement", "contract", "document", "party", "part", "doe", "other"];

/// The claims of `output`, each with the ids of the segments it cites (`segments` are the ones
/// the prompt numbered with `labels`; `text` is what their spans index). A question is answered
/// only when its first line, the evidence the model pointed at before writing anything, holds:
/// the claim is supported by the span it cites (the check every citation gets) and the claim or
/// the span is about the question (shares a content word with it). Otherwise, and when no claim
/// is left once degenerate lines are dropped, the answer is the refusal alone, without
/// citations: the model is never offered the refusal, so it cannot take it before it looks.
pub fn claims(
    output: &str,
    labels: &[u32],
    segments: &[Segment],
    text: &str,
    step: &Step<'_>,
    alphabet: &Alphabet,
) -> Vec<(String, Vec<u32>)> {
    let parsed = cite::labels_to_segments(cite::parse_answer(output), labels, segments);
    let (kept, dropped) = guard(parsed, text, segments, &step.echoes(), alphabet);
    if !dropped.is_empty() {
        tracing::debug!(?dropped, "degenerate answer lines dropped");
    }
    match step.question() {
        Some(q) if !kept.first().is_some_and(|first| answers(q, first, segments, text)) => {
            vec![(REFUSAL.to_owned(), Vec::new())]
        }
        _ => kept,
    }
}

/// Whether the evidence line `(claim, ids)` answers `question`: its (narrowed) span supports
/// the claim, and the claim or the span shares a content word with the question.
fn answers(question: &str, (claim, ids): &(String, Vec<u32>), segments: &[Segment], text: &str) -> bool {
    let Some(at) = ids.first().and_then(|id| segments.iter().position(|s| s.id == *id)) else { return false };
    let (_, span) = narrow::narrow(text, segments, at, claim);
    let span = span.slice(text).unwrap_or_default();
    if support(claim, span) < MIN_SUPPORT {
        return false;
    }
    let asked: HashSet<String> =
        content_words(question).into_iter().filter(|w| !GENERIC.contains(&w.as_str())).collect();
    let said: HashSet<String> = content_words(claim).into_iter().chain(content_words(span)).collect();
    !asked.is_disjoint(&said)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PageSpan, Task};
    use crate::pipeline::TaskSpec;

    const TEXT: &str = "[***] = CONFIDENTIAL TREATMENT REQUESTED. The term is five years. \
                        This Agreement is governed by the laws of the State of Kentucky.";

    fn run(output: &str, task: &TaskSpec) -> Vec<(String, Vec<u32>)> {
        let segments = cite::segment(TEXT, &[PageSpan { number: 1, start: 0, end: TEXT.len() }]);
        let labels = cite::labels(segments.len());
        let numbered = cite::numbered_text(TEXT, &segments, &labels);
        let step = Step::Task(task);
        let mut out = output.to_owned();
        for (i, label) in labels.iter().enumerate() {
            out = out.replace(&format!("{{{}}}", i + 1), &label.to_string());
        }
        claims(&out, &labels, &segments, TEXT, &step, &step.alphabet(&numbered))
    }

    fn question(q: &str) -> TaskSpec {
        TaskSpec { task: Task::Question, question: Some(q.into()) }
    }

    const LAW: &str = "Which state's or country's law governs this agreement?";

    #[test]
    fn a_supported_claim_about_the_question_is_the_answer_and_its_repeat_is_dropped() {
        let got = run("[S{3}] The laws of Kentucky govern it.\n[S{3}] Kentucky law governs it.\n", &question(LAW));
        assert_eq!(got, vec![("The laws of Kentucky govern it.".to_owned(), vec![3])]);
    }

    #[test]
    fn a_claim_its_evidence_does_not_support_is_declined() {
        // Invented: nothing in the cited segment says so.
        let got = run("[S{2}] The laws of Delaware govern this agreement.\n", &question(LAW));
        assert_eq!(got, vec![(REFUSAL.to_owned(), vec![])]);
    }

    #[test]
    fn supported_evidence_about_something_else_is_declined() {
        // Copied faithfully, but from a segment that has nothing to do with competition.
        let q = "Does this agreement restrict a party from competing with the other?";
        let got = run("[S{1}] CONFIDENTIAL TREATMENT REQUESTED applies.\n", &question(q));
        assert_eq!(got, vec![(REFUSAL.to_owned(), vec![])]);
        // The same line answers a question about confidential treatment.
        let got = run("[S{1}] CONFIDENTIAL TREATMENT REQUESTED applies.\n", &question("Is confidential treatment requested?"));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, vec![1]);
    }

    #[test]
    fn the_refusal_written_after_a_marker_is_the_refusal_alone() {
        assert_eq!(run("[S{3}] The document does not say.\n", &question(LAW)), vec![(REFUSAL.to_owned(), vec![])]);
    }

    #[test]
    fn a_question_left_with_only_degenerate_lines_is_refused_but_a_summary_is_not() {
        let echo = "[S{1}] The bridge opened to traffic in 1932.\n";
        assert_eq!(run(echo, &question(LAW)), vec![(REFUSAL.to_owned(), vec![])]);
        assert!(run(echo, &TaskSpec { task: Task::Summary, question: None }).is_empty());
    }
}
