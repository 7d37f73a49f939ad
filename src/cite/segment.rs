//! Splitting the normalised text into numbered segments (sentences) that a
//! model can cite by id. Offsets are byte offsets into the text.

use unicode_segmentation::UnicodeSegmentation;

use crate::domain::{page_at, PageSpan, Segment, Span};

/// Shorter pieces ("2.", "Fig.", a lone heading number) join the next segment.
const MIN_SEGMENT_BYTES: usize = 16;
/// Longer pieces (tables, text without punctuation) are cut at line breaks or spaces.
const MAX_SEGMENT_BYTES: usize = 600;

/// The segments of `text` as one page: the tests' documents.
#[cfg(test)]
pub fn one_page(text: &str) -> Vec<Segment> {
    segment(text, &[PageSpan { number: 1, start: 0, end: text.len() }])
}

/// Split `text` into sentence segments numbered from 1. A single line break
/// does not end a sentence (PDF text wraps mid-sentence); a blank line does.
pub fn segment(text: &str, pages: &[PageSpan]) -> Vec<Segment> {
    // Same byte length, so boundaries found in `flat` are boundaries of `text`.
    let flat = flatten_single_newlines(text);
    let mut spans: Vec<Span> = Vec::new();
    let mut pending: Option<Span> = None;
    for (start, piece) in flat.split_sentence_bound_indices() {
        let Some(span) = trimmed(text, start, start + piece.len()) else {
            continue;
        };
        let span = match pending.take() {
            Some(p) => Span { start: p.start, end: span.end },
            None => span,
        };
        if span.len() < MIN_SEGMENT_BYTES && !crosses_paragraph(text, span) {
            pending = Some(span);
        } else {
            spans.extend(split_long(text, span));
        }
    }
    if let Some(p) = pending {
        match spans.last_mut() {
            Some(last) if !crosses_paragraph(text, Span { start: last.start, end: p.end }) => last.end = p.end,
            _ => spans.push(p),
        }
    }
    spans
        .into_iter()
        .enumerate()
        .map(|(i, span)| Segment {
            id: u32::try_from(i + 1).unwrap_or(u32::MAX),
            span,
            page: page_at(pages, span.start),
        })
        .collect()
}

fn flatten_single_newlines(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        let prev_nl = i > 0 && bytes.get(i - 1) == Some(&b'\n');
        let next_nl = bytes.get(i + 1) == Some(&b'\n');
        if c == '\n' && !prev_nl && !next_nl {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// The span `[start, end)` without surrounding whitespace, or None when only whitespace.
fn trimmed(text: &str, start: usize, end: usize) -> Option<Span> {
    let piece = text.get(start..end)?;
    let lead = piece.len() - piece.trim_start().len();
    let body = piece.trim();
    (!body.is_empty()).then(|| Span { start: start + lead, end: start + lead + body.len() })
}

fn crosses_paragraph(text: &str, span: Span) -> bool {
    span.slice(text).is_some_and(|s| s.contains("\n\n"))
}

/// Cut a span longer than the maximum at the last line break (else space) before the limit.
fn split_long(text: &str, span: Span) -> Vec<Span> {
    let mut out = Vec::new();
    let mut rest = span;
    while rest.len() > MAX_SEGMENT_BYTES {
        let Some(window) = text.get(rest.start..floor_boundary(text, rest.start + MAX_SEGMENT_BYTES)) else {
            break;
        };
        let cut =
            window.rfind('\n').or_else(|| window.rfind(' ')).filter(|&c| c > MIN_SEGMENT_BYTES).unwrap_or(window.len());
        if let Some(head) = trimmed(text, rest.start, rest.start + cut) {
            out.push(head);
        }
        match trimmed(text, rest.start + cut, rest.end) {
            Some(tail) => rest = tail,
            None => return out,
        }
    }
    out.push(rest);
    out
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(text: &'a str, segs: &[Segment]) -> Vec<&'a str> {
        segs.iter().map(|s| s.span.slice(text).unwrap()).collect()
    }

    #[test]
    fn sentences_continue_across_wrapped_lines_but_not_blank_lines() {
        let text = "The system is\nsecure as long as honest nodes dominate. A second sentence here.\n\nNew paragraph starts now.";
        let segs = one_page(text);
        assert_eq!(
            texts(text, &segs),
            vec![
                "The system is\nsecure as long as honest nodes dominate.",
                "A second sentence here.",
                "New paragraph starts now."
            ]
        );
        assert_eq!(segs.iter().map(|s| s.id).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn short_fragments_join_the_next_sentence() {
        let text = "1. Introduction to the topic of this paper.";
        let segs = one_page(text);
        assert_eq!(texts(text, &segs), vec![text]);
    }

    #[test]
    fn long_runs_are_cut_on_char_boundaries_with_pages() {
        let text = format!("{}\n\n{}", "é".repeat(10), "数据 ".repeat(400));
        let p2 = text.find('数').unwrap();
        let pages = [PageSpan { number: 1, start: 0, end: 20 }, PageSpan { number: 2, start: p2, end: text.len() }];
        let segs = segment(&text, &pages);
        assert!(segs.len() > 2);
        for s in &segs {
            assert!(s.span.slice(&text).is_some());
            assert!(s.span.len() <= MAX_SEGMENT_BYTES);
        }
        assert_eq!(segs.last().unwrap().page, 2);
    }
}
