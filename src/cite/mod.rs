//! Cited spans: splitting the text into labelled segments, constraining the
//! model to cite only labels that exist, and resolving and verifying what it cited.

mod format;
pub mod guard;
pub mod narrow;
mod segment;
pub mod support;

pub use format::{line_regex_in, marker, marker_regex, markers_regex, Alphabet, MAX_CLAIM_WORDS, MAX_SUMMARY_CLAIM_WORDS};
pub use segment::segment;
#[cfg(test)]
pub use segment::one_page;

use std::collections::HashMap;

use crate::domain::{Answer, AnswerSentence, Citation, Segment};

/// Labels the model sees for segments 1..=n: distinct numbers below a power
/// of ten at least ten times n, in scrambled order (an affine permutation
/// modulo that power). Counted labels (1, 2, 3…) invite a small model to cite
/// by counting; scrambled ones can only be cited by copying the label printed
/// beside the text.
pub fn labels(n: usize) -> Vec<u32> {
    let width = (n.max(1) * 10).to_string().len().max(3);
    let modulus = 10u64.pow(u32::try_from(width).unwrap_or(3));
    // 7919 is prime and not 2 or 5, so it is a unit modulo any power of ten.
    (0..n as u64).map(|i| u32::try_from((i * 7919 + 4111) % modulus).unwrap_or(u32::MAX)).collect()
}

/// Split the model's output into sentences and the segment ids each cites (in order, deduplicated).
pub fn parse_answer(output: &str) -> Vec<(String, Vec<u32>)> {
    let mut sentences = Vec::new();
    for line in output.lines() {
        let mut ids = Vec::new();
        let mut claim = String::new();
        let mut rest = line;
        while let Some(open) = rest.find("[S") {
            claim.push_str(rest.get(..open).unwrap_or_default());
            let after = rest.get(open + 2..).unwrap_or_default();
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            match (digits.parse::<u32>(), after.get(digits.len()..).and_then(|s| s.strip_prefix(']'))) {
                (Ok(id), Some(tail)) => {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                    rest = tail;
                }
                _ => {
                    claim.push_str("[S");
                    rest = after;
                }
            }
        }
        claim.push_str(rest);
        let claim = claim.split_whitespace().collect::<Vec<_>>().join(" ");
        if !claim.is_empty() {
            sentences.push((claim, ids));
        }
    }
    sentences
}

/// Replace the labels the model cited by the ids of their segments. A label
/// no segment has (impossible under the constraint) becomes id 0, which
/// `resolve` reports as an unknown segment.
pub fn labels_to_segments(
    parsed: Vec<(String, Vec<u32>)>,
    labels: &[u32],
    segments: &[Segment],
) -> Vec<(String, Vec<u32>)> {
    let segment_of: HashMap<u32, u32> = labels.iter().copied().zip(segments.iter().map(|s| s.id)).collect();
    parsed
        .into_iter()
        .map(|(claim, cited)| {
            let ids = cited.iter().map(|l| segment_of.get(l).copied().unwrap_or(0)).collect();
            (claim, ids)
        })
        .collect()
}

/// Whether `text` is the refusal line (as the model writes it, case and surrounding space aside).
pub fn is_refusal(text: &str, refusal: &str) -> bool {
    text.trim().eq_ignore_ascii_case(refusal)
}

/// Resolve each cited segment id to its span and verify it against the text.
/// Returns the answer (sentences reference citation ids) and the citations.
pub fn resolve(text: &str, segments: &[Segment], parsed: &[(String, Vec<u32>)]) -> (Answer, Vec<Citation>) {
    let at: HashMap<u32, usize> = segments.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    let mut citations = Vec::new();
    let mut sentences = Vec::new();
    for (claim, ids) in parsed {
        let mut cited = Vec::new();
        for &seg_id in ids {
            let id = u32::try_from(citations.len() + 1).unwrap_or(u32::MAX);
            let citation = match at.get(&seg_id) {
                Some(&i) => {
                    // A heading or a long segment points at the sentence or clause that supports the claim.
                    let (segment, span) = narrow::narrow(text, segments, i, claim);
                    let page = segments.iter().find(|s| s.id == segment).map_or(0, |s| s.page);
                    let quote = span.slice(text).unwrap_or_default().to_owned();
                    let mut c = Citation {
                        id,
                        segment,
                        start: span.start,
                        end: span.end,
                        page,
                        quote,
                        valid: false,
                        support: 0.0,
                        reason: None,
                    };
                    verify(text, claim, &mut c);
                    c
                }
                None => Citation {
                    id,
                    segment: seg_id,
                    start: 0,
                    end: 0,
                    page: 0,
                    quote: String::new(),
                    valid: false,
                    support: 0.0,
                    reason: Some("unknown_segment: the answer cites a segment the document does not have".to_owned()),
                },
            };
            cited.push(citation.id);
            citations.push(citation);
        }
        sentences.push(AnswerSentence { text: claim.clone(), citations: cited });
    }
    let text_out = sentences.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ");
    (Answer { text: text_out, sentences }, citations)
}

/// Check a citation against the source: the span lies on char boundaries of
/// the text, its quote is exactly the text there, the span supports the claim
/// by the lexical measure, and it states every number the claim writes in
/// digits (in digits or words). Sets `valid`, `support` and `reason`.
pub fn verify(text: &str, claim: &str, c: &mut Citation) {
    c.valid = false;
    c.reason = None;
    let Some(actual) = text.get(c.start..c.end) else {
        c.reason = Some(format!("out_of_bounds: {}..{} is not a span of the text", c.start, c.end));
        return;
    };
    if actual != c.quote || actual.is_empty() {
        c.reason = Some("quote_mismatch: the quote differs from the text at its offsets".to_owned());
        return;
    }
    let (support, failure) = support::check(claim, actual);
    c.support = support;
    match failure {
        Some(support::Failure::Unsupported) => {
            c.reason = Some(format!(
                "unsupported: the span holds {:.0}% of the claim's content words (needs {:.0}%)",
                support * 100.0,
                support::MIN_SUPPORT * 100.0
            ));
        }
        Some(support::Failure::NumberMissing(missing)) => {
            c.reason = Some(format!("number_missing: the span does not state {}", missing.join(", ")));
        }
        None => c.valid = true,
    }
}

/// The document as the model sees it: each segment on its own line, followed by its marker.
/// The answer's lines open with a marker, but the document's stay at the end: with markers
/// opening the document's lines too, the 0.5B model wrote the first line's marker and copied
/// the first segment whatever it was asked (measured on llama-server with the same model).
pub fn numbered_text(text: &str, segments: &[Segment], labels: &[u32]) -> String {
    let mut out = String::with_capacity(text.len() + segments.len() * 8);
    let mut page = 0;
    for (s, label) in segments.iter().zip(labels) {
        if s.page != page {
            page = s.page;
            out.push_str(&format!("--- page {page} ---\n"));
        }
        let body = s.span.slice(text).unwrap_or_default();
        out.extend(body.chars().map(|c| if c == '\n' { ' ' } else { c }));
        out.push(' ');
        out.push_str(&marker(*label));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_and_not_in_counting_order() {
        for n in [1usize, 9, 23, 250, 4096] {
            let l = labels(n);
            let unique: std::collections::HashSet<_> = l.iter().collect();
            assert_eq!(unique.len(), n);
        }
        let l = labels(5);
        assert!(l.windows(2).any(|w| w[1] != w[0] + 1));
    }

    #[test]
    fn parses_lines_into_claims_and_segment_ids() {
        let parsed = parse_answer("Nodes vote with CPU power. [S4][S9][S4]\nNo ids here\n");
        assert_eq!(parsed[0], ("Nodes vote with CPU power.".to_owned(), vec![4, 9]));
        assert_eq!(parsed[1], ("No ids here".to_owned(), vec![]));
    }

    #[test]
    fn resolves_citations_and_flags_unsupported_and_unknown_ones() {
        let text = "Bitcoin uses proof-of-work to order transactions. The sky is blue today.";
        let segs = one_page(text);
        let parsed = vec![("Proof-of-work orders the transactions.".to_owned(), vec![1, 2, 7])];
        let (answer, cites) = resolve(text, &segs, &parsed);
        assert_eq!(answer.sentences[0].citations, vec![1, 2, 3]);
        assert!(cites[0].valid);
        assert_eq!(text.get(cites[0].start..cites[0].end), Some(cites[0].quote.as_str()));
        assert!(!cites[1].valid && cites[1].reason.as_deref().unwrap().starts_with("unsupported"));
        assert!(!cites[2].valid && cites[2].reason.as_deref().unwrap().starts_with("unknown_segment"));
    }

    #[test]
    fn a_claim_whose_number_its_span_does_not_state_is_not_verified() {
        let text = "SOURCE CODE INSTALLATION SITE\n\nNotice is due within sixty (60) days of the end of the term.";
        let segs = one_page(text);
        let parsed = vec![
            ("SOURCE CODE INSTALLATION SITE The door code of the archive is 142.".to_owned(), vec![1]),
            ("Notice is due within 60 days of the end of the term.".to_owned(), vec![2]),
        ];
        let (_, cites) = resolve(text, &segs, &parsed);
        assert!(cites[0].support >= support::MIN_SUPPORT, "the words alone would pass: {}", cites[0].support);
        assert!(!cites[0].valid);
        assert_eq!(cites[0].reason.as_deref(), Some("number_missing: the span does not state 142"));
        assert!(cites[1].valid, "{:?}", cites[1].reason);
    }

    #[test]
    fn verify_catches_a_quote_that_drifted_from_the_text() {
        let text = "Alpha beta gamma delta.";
        let mut c = Citation {
            id: 1,
            segment: 1,
            start: 0,
            end: 10,
            page: 1,
            quote: "Alpha betX".into(),
            valid: true,
            support: 1.0,
            reason: None,
        };
        verify(text, "alpha beta", &mut c);
        assert!(!c.valid);
        assert!(c.reason.unwrap().starts_with("quote_mismatch"));
    }
}
