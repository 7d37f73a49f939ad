//! Scores of one answer against its item's gold: clause spans and answer correctness (CUAD), the
//! needle's value and whether a citation points at it, and a summary's citation quality.

use serde::{Deserialize, Serialize};

use super::items::{AnswerCheck, Gold};
use super::metrics::{answer_matches, locate, locate_clause, normalize_answer, overlap_scores, SpanScores};
use crate::cite::support::MIN_SUPPORT;
use crate::domain::{Analysis, PageSpan, Span};
use crate::pipeline::REFUSAL;

/// Scores every suite shares: the citations' checks.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct CitationCounts {
    pub citations: usize,
    /// Passed every check (span, quote, support).
    pub valid: usize,
    /// Share of the claim's content words found in the span is at least the documented minimum.
    pub supported: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Scores {
    Clause {
        /// The contract has the clause (CUAD lists it).
        present: bool,
        /// Every gold clause was found in docent's text of the contract; span scores need it.
        gold_located: bool,
        refused: bool,
        /// Character overlap of the cited spans with the gold clauses (present and located only).
        spans: Option<SpanScores>,
        correct: bool,
        counts: CitationCounts,
    },
    Needle {
        /// The answer states the needle's value.
        recalled: bool,
        /// A citation's span overlaps the needle sentence.
        cited_needle: bool,
        counts: CitationCounts,
    },
    Summary {
        counts: CitationCounts,
        sections: usize,
        /// Sections (pages, or tenths of a one-page text) holding at least one valid citation.
        sections_cited: usize,
    },
}

pub fn refused(a: &Analysis) -> bool {
    a.citations.is_empty() && crate::cite::is_refusal(&a.answer.text, REFUSAL)
}

fn counts(a: &Analysis) -> CitationCounts {
    CitationCounts {
        citations: a.citations.len(),
        valid: a.citations.iter().filter(|c| c.valid).count(),
        supported: a.citations.iter().filter(|c| c.support >= MIN_SUPPORT).count(),
    }
}

fn cited_spans(a: &Analysis) -> Vec<Span> {
    a.citations.iter().map(|c| Span { start: c.start, end: c.end }).collect()
}

/// Score `a`, the answer to an item with `gold`, on the document's normalised `text`.
pub fn score(gold: &Gold, a: &Analysis, text: &str, pages: &[PageSpan]) -> Scores {
    let counts = counts(a);
    match gold {
        Gold::Clause { clauses, answer, check, .. } => {
            let present = !clauses.is_empty();
            let located: Vec<Vec<Span>> = clauses.iter().map(|c| locate_clause(text, c)).collect();
            let gold_located = located.iter().all(|spans| !spans.is_empty());
            let gold_spans: Vec<Span> = located.concat();
            let refused = refused(a);
            let spans = (present && gold_located).then(|| overlap_scores(text, &cited_spans(a), &gold_spans));
            let correct = match (present, check) {
                (false, _) => refused,
                (true, AnswerCheck::Presence) => !refused,
                (true, AnswerCheck::Text) => !refused && answer_matches(&a.answer.text, answer),
            };
            Scores::Clause { present, gold_located, refused, spans, correct, counts }
        }
        Gold::Needle { sentence, value, .. } => {
            let answer = normalize_answer(&a.answer.text);
            let recalled = answer.split(' ').any(|w| w == normalize_answer(value));
            let needle = locate(text, sentence);
            let cited_needle = needle.is_some_and(|n| a.citations.iter().any(|c| c.start < n.end && n.start < c.end));
            Scores::Needle { recalled, cited_needle, counts }
        }
        Gold::Summary => {
            let sections = sections(text, pages);
            let sections_cited = sections
                .iter()
                .filter(|s| a.citations.iter().any(|c| c.valid && c.start < s.end && s.start < c.end))
                .count();
            Scores::Summary { counts, sections: sections.len(), sections_cited }
        }
    }
}

/// Claims of `a` that repeat an earlier one: at least 80% of their content words the same.
pub fn repeated_claims(a: &Analysis) -> usize {
    let mut seen: Vec<std::collections::HashSet<String>> = Vec::new();
    let mut repeated = 0;
    for s in &a.answer.sentences {
        let words = crate::cite::support::content_words(&s.text);
        let same = |w: &std::collections::HashSet<String>| {
            let union = w.union(&words).count().max(1);
            w.intersection(&words).count() * 5 >= union * 4
        };
        if seen.iter().any(same) {
            repeated += 1;
        }
        seen.push(words);
    }
    repeated
}

/// The parts a summary's coverage counts: the pages, or for a one-page text its ten equal parts.
pub fn sections(text: &str, pages: &[PageSpan]) -> Vec<Span> {
    if pages.len() > 1 {
        return pages.iter().map(|p| Span { start: p.start, end: p.end }).collect();
    }
    let n = 10.min(text.len().max(1));
    (0..n).map(|i| Span { start: text.len() * i / n, end: text.len() * (i + 1) / n }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Answer, AnswerSentence, Citation, PipelineKind, Task, Timings, Usage};

    const TEXT: &str = "This Agreement is made today. It shall be governed by the laws of Texas. \
                        Either party may end it at will.";

    fn analysis(answer: &str, spans: &[(usize, usize, bool)]) -> Analysis {
        let citations: Vec<Citation> = spans
            .iter()
            .enumerate()
            .map(|(i, &(start, end, valid))| Citation {
                id: i as u32 + 1,
                segment: 0,
                start,
                end,
                page: 1,
                quote: TEXT.get(start..end).unwrap_or("").to_owned(),
                valid,
                support: if valid { 1.0 } else { 0.0 },
                reason: None,
            })
            .collect();
        Analysis {
            id: "a".into(),
            document_id: "d".into(),
            pipeline: PipelineKind::Full,
            model: "m".into(),
            task: Task::Question,
            question: None,
            answer: Answer {
                text: answer.into(),
                sentences: vec![AnswerSentence { text: answer.into(), citations: vec![] }],
            },
            citations,
            usage: Usage::default(),
            timings: Timings::default(),
            retrieval: None,
            created_at: String::new(),
        }
    }

    fn clause(clauses: &[&str], answer: &str, check: AnswerCheck) -> Gold {
        Gold::Clause {
            category: "c".into(),
            clauses: clauses.iter().map(|c| (*c).to_owned()).collect(),
            answer: answer.into(),
            check,
        }
    }

    fn span_of(needle: &str) -> (usize, usize) {
        let start = TEXT.find(needle).unwrap();
        (start, start + needle.len())
    }

    #[test]
    fn a_perfect_clause_answer_scores_one_and_a_wrong_span_zero() {
        let gold = clause(&["It shall be governed by the laws of Texas."], "Texas", AnswerCheck::Text);
        let (s, e) = span_of("It shall be governed by the laws of Texas.");
        let Scores::Clause { spans: Some(p), correct, .. } =
            score(&gold, &analysis("Texas law governs it.", &[(s, e, true)]), TEXT, &[])
        else {
            panic!("no span scores")
        };
        assert_eq!((p.precision, p.recall, p.f1, p.hit, correct), (1.0, 1.0, 1.0, true, true));
        let (s, e) = span_of("Either party may end it at will.");
        let Scores::Clause { spans: Some(p), correct, .. } =
            score(&gold, &analysis("Ohio law governs it.", &[(s, e, true)]), TEXT, &[])
        else {
            panic!("no span scores")
        };
        assert_eq!((p.f1, p.hit, correct), (0.0, false, false));
    }

    #[test]
    fn no_such_clause_is_right_only_as_the_refusal() {
        let gold = clause(&[], "No", AnswerCheck::Presence);
        let Scores::Clause { correct, spans, .. } = score(&gold, &analysis(REFUSAL, &[]), TEXT, &[]) else { panic!() };
        assert!(correct && spans.is_none());
        let (s, e) = span_of("Either party may end it at will.");
        let Scores::Clause { correct, .. } = score(&gold, &analysis("Yes.", &[(s, e, true)]), TEXT, &[]) else {
            panic!()
        };
        assert!(!correct);
    }

    #[test]
    fn a_clause_missing_from_the_text_gets_no_span_scores() {
        let gold = clause(&["Nothing like this is in the text."], "Yes", AnswerCheck::Presence);
        let Scores::Clause { gold_located, spans, .. } = score(&gold, &analysis("Yes.", &[]), TEXT, &[]) else {
            panic!()
        };
        assert!(!gold_located && spans.is_none());
    }

    #[test]
    fn a_needle_is_recalled_by_its_value_and_cited_by_its_span() {
        let gold = Gold::Needle {
            sentence: "Either party may end it at will.".into(),
            value: "will".into(),
            depth_percent: 100,
            nominal_tokens: 10,
            offset: 0,
        };
        let (s, e) = span_of("at will.");
        let Scores::Needle { recalled, cited_needle, .. } =
            score(&gold, &analysis("At will.", &[(s, e, true)]), TEXT, &[])
        else {
            panic!()
        };
        assert!(recalled && cited_needle);
        let Scores::Needle { recalled, cited_needle, .. } =
            score(&gold, &analysis("Willingly.", &[(0, 4, true)]), TEXT, &[])
        else {
            panic!()
        };
        assert!(!recalled && !cited_needle);
    }

    #[test]
    fn a_summary_repeating_a_claim_is_counted() {
        let mut a = analysis("x", &[]);
        let line = |t: &str| AnswerSentence { text: t.into(), citations: vec![] };
        a.answer.sentences = vec![
            line("Texas law governs the agreement."),
            line("Either party may end it."),
            line("The agreement is governed by Texas law."),
        ];
        assert_eq!(repeated_claims(&a), 1);
        a.answer.sentences.pop();
        assert_eq!(repeated_claims(&a), 0);
    }

    #[test]
    fn summary_coverage_counts_sections_with_a_valid_citation() {
        let (s, e) = span_of("It shall be governed");
        let a = analysis("x", &[(s, e, true), (0, 4, false)]);
        let Scores::Summary { counts, sections, sections_cited } = score(&Gold::Summary, &a, TEXT, &[]) else {
            panic!()
        };
        assert_eq!((counts.citations, counts.valid, counts.supported), (2, 1, 1));
        assert_eq!(sections, 10);
        assert_eq!(sections_cited, 3, "bytes 30..50 of 105 touch the third, fourth and fifth tenths");
        let pages = [PageSpan { number: 1, start: 0, end: 30 }, PageSpan { number: 2, start: 30, end: TEXT.len() }];
        let Scores::Summary { sections, sections_cited, .. } = score(&Gold::Summary, &a, TEXT, &pages) else {
            panic!()
        };
        assert_eq!((sections, sections_cited), (2, 1));
    }
}
