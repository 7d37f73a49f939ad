//! Narrower citations: a claim that cites a heading points at the sentence under it that
//! supports it, and a claim that cites a long segment points at the clause of it that does.
//! The narrowed span is checked by the same rules as any other, so it is kept only when it
//! supports the claim on its own and states every number of the claim its segment states.

use super::support::{missing_numbers, support, MIN_SUPPORT};
use crate::domain::{Segment, Span};

/// Segments longer than this are looked into for the clause that supports the claim.
const LONG_SEGMENT_BYTES: usize = 200;
/// A clause or line shorter than this is never a citation of its own.
const MIN_PIECE_BYTES: usize = 24;
/// How many segments after a heading may hold its supporting sentence.
const HEADING_REACH: usize = 6;

/// Whether a segment reads as a heading: short and without a sentence's end, short and mostly
/// capitals ("ARTICLE V TERM OF AGREEMENT"), or a few words each capitalised ("7. Governing
/// Law.", which ends like a sentence).
pub fn is_heading(text: &str) -> bool {
    let t = text.trim();
    let letters: Vec<char> = t.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.is_empty() {
        return false;
    }
    let upper = letters.iter().filter(|c| c.is_uppercase()).count();
    let unended = !t.ends_with(['.', '!', '?', ';', ':', ',', '。']);
    let words: Vec<&str> = t.split_whitespace().filter(|w| w.chars().any(char::is_alphabetic)).collect();
    let title = t.len() <= 60
        && words.len() <= 6
        && words.iter().all(|w| w.chars().find(|c| c.is_alphabetic()).is_some_and(char::is_uppercase));
    (t.len() <= 80 && unended) || (t.len() <= 120 && upper * 10 >= letters.len() * 7) || title
}

/// The span a claim citing `segments[at]` should point at, and the segment it lies in: the
/// cited one, the best-supporting sentence after it when it is a heading, or the clause of it
/// that alone supports the claim as well as the whole.
pub fn narrow(text: &str, segments: &[Segment], at: usize, claim: &str) -> (u32, Span) {
    let Some(seg) = segments.get(at) else { return (0, Span { start: 0, end: 0 }) };
    let body = seg.span.slice(text).unwrap_or_default();
    let whole = support(claim, body);
    let seg = if is_heading(body) { under_heading(text, segments, at, claim, whole).unwrap_or(seg) } else { seg };
    let body = seg.span.slice(text).unwrap_or_default();
    let whole = support(claim, body);
    if seg.span.len() <= LONG_SEGMENT_BYTES || whole < MIN_SUPPORT {
        return (seg.id, seg.span);
    }
    // A clause that drops a number of the claim the segment states would fail verification.
    let unstated = missing_numbers(claim, body).len();
    let best = pieces(text, seg.span)
        .into_iter()
        .filter(|p| p.len() >= MIN_PIECE_BYTES && p.len() < seg.span.len())
        .filter_map(|p| p.slice(text).map(|piece| (support(claim, piece), missing_numbers(claim, piece).len(), p)))
        .filter(|(s, missing, _)| *s >= MIN_SUPPORT && *s >= whole * 0.9 && *missing <= unstated)
        .map(|(s, _, p)| (s, p))
        .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.len().cmp(&a.1.len())));
    (seg.id, best.map_or(seg.span, |(_, p)| p))
}

/// The sentence after the heading `segments[at]` (before the next heading) that supports the
/// claim at least as the minimum and better than the heading: of those, the one that states
/// most of the claim's numbers, then the one that supports it best.
fn under_heading<'a>(text: &str, segments: &'a [Segment], at: usize, claim: &str, heading: f32) -> Option<&'a Segment> {
    segments
        .iter()
        .skip(at + 1)
        .take(HEADING_REACH)
        .take_while(|s| !is_heading(s.span.slice(text).unwrap_or_default()))
        .map(|s| {
            let body = s.span.slice(text).unwrap_or_default();
            (support(claim, body), missing_numbers(claim, body).len(), s)
        })
        .filter(|(s, _, _)| *s >= MIN_SUPPORT && *s > heading)
        .max_by(|a, b| b.1.cmp(&a.1).then(a.0.total_cmp(&b.0)))
        .map(|(_, _, s)| s)
}

/// The clauses of `span`: its lines, and its parts between semicolons, trimmed.
fn pieces(text: &str, span: Span) -> Vec<Span> {
    let Some(body) = span.slice(text) else { return Vec::new() };
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in body.char_indices() {
        if c == '\n' || c == ';' {
            let end = if c == ';' { i + 1 } else { i };
            out.extend(trimmed(body, start, end).map(|(s, e)| Span { start: span.start + s, end: span.start + e }));
            start = i + c.len_utf8();
        }
    }
    out.extend(trimmed(body, start, body.len()).map(|(s, e)| Span { start: span.start + s, end: span.start + e }));
    out
}

fn trimmed(body: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let piece = body.get(start..end)?;
    let lead = piece.len() - piece.trim_start().len();
    let len = piece.trim().len();
    (len > 0).then_some((start + lead, start + lead + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cite::one_page;

    #[test]
    fn a_claim_citing_a_heading_points_at_the_sentence_that_supports_it() {
        let text = "ARTICLE V TERM OF AGREEMENT\n\nThis Agreement shall continue month to month until \
                    terminated by either party. Either party may terminate it on sixty (60) days notice.\n\n\
                    ARTICLE VI PAYMENT\n\nFees are due monthly.";
        let s = one_page(text);
        assert!(is_heading(s[0].span.slice(text).unwrap()));
        let (id, span) = narrow(text, &s, 0, "The agreement continues month to month until terminated.");
        assert_eq!(id, s[1].id);
        assert!(span.slice(text).unwrap().starts_with("This Agreement shall continue month to month"));
        // Nothing under the heading supports the claim: the heading stays.
        let (id, _) = narrow(text, &s, 0, "Fees are due.");
        assert_eq!(id, s[0].id, "the next heading bounds the search");
    }

    #[test]
    fn a_claim_citing_a_long_segment_points_at_its_supporting_clause() {
        let text = "The Distributor shall purchase the products exclusively from the Company during the term; \
                    the Company shall deliver them within thirty days of each order placed by the Distributor; \
                    this Agreement is governed by the laws of the State of New York without regard to conflicts.";
        let s = one_page(text);
        assert_eq!(s.len(), 1);
        let claim = "The agreement is governed by the laws of New York.";
        let (_, span) = narrow(text, &s, 0, claim);
        let quote = span.slice(text).unwrap();
        assert!(quote.starts_with("this Agreement is governed"), "{quote}");
        assert!(support(claim, quote) >= MIN_SUPPORT);
        // A claim that draws on the whole segment keeps the whole.
        let (_, span) =
            narrow(text, &s, 0, "The distributor buys exclusively and the company delivers within thirty days.");
        assert_eq!(span, s[0].span);
    }

    #[test]
    fn a_narrowed_span_keeps_the_claims_numbers() {
        let text = "ARTICLE V TERM OF AGREEMENT\n\nThe term of this Agreement shall continue until terminated by either party.\n\n\
                    The term of this Agreement is five (5) years.\n\nARTICLE VI PAYMENT";
        let s = one_page(text);
        let (id, _) = narrow(text, &s, 0, "The term of this Agreement is 5 years until terminated by either party.");
        assert!(is_heading(s[0].span.slice(text).unwrap()));
        assert_eq!(id, s[2].id, "the sentence that states the claim's number, though the other shares more words");
        let text = "The Distributor shall give written notice of any defect in the products delivered by the Company \
                    under each purchase order; purchase order 45 covers the first delivery; the Company shall then \
                    replace the defective products at its own cost.";
        let s = one_page(text);
        let claim = "The Distributor shall give written notice of any defect in the products delivered by the Company \
                     under purchase order 45.";
        let first = s[0].span.slice(text).unwrap().split_once(';').unwrap().0;
        assert!(
            support(claim, first) >= 0.9 * support(claim, s[0].span.slice(text).unwrap()),
            "the words alone pick it"
        );
        let (_, span) = narrow(text, &s, 0, claim);
        assert!(span.slice(text).unwrap().contains("45"), "a clause without the number is not the citation");
    }

    #[test]
    fn ordinary_sentences_are_not_headings() {
        assert!(!is_heading("Either party may terminate this Agreement on notice."));
        assert!(is_heading("5. Term and Termination"));
        assert!(is_heading("GOVERNING LAW."));
        assert!(is_heading("7. Governing Law."));
        assert!(!is_heading("The term is five years."));
        assert!(!is_heading("12345 6789"));
    }
}
