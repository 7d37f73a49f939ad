//! Comparing the two pipelines' answers on one document: how much of the text each side cites,
//! what they cite in common, and how many of their citations verified.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Analysis, Span};

/// One side of a comparison: its analysis, or why it has none (a document too long for the
/// full-context model, a busy engine…).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Side {
    Done(Box<Analysis>),
    Failed { error: SideError },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SideError {
    pub code: String,
    pub message: String,
}

impl Side {
    pub fn analysis(&self) -> Option<&Analysis> {
        match self {
            Side::Done(a) => Some(a),
            Side::Failed { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SideStats {
    pub citations: usize,
    pub valid: usize,
    /// valid / citations (0 without citations).
    pub validity: f32,
    /// Share of the document's bytes inside the spans this side cites.
    pub coverage: f32,
    /// Pages this side cites, ascending.
    pub pages: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Overlap {
    pub full: Option<SideStats>,
    pub chunked: Option<SideStats>,
    /// Segments both sides cite.
    pub common_segments: Vec<u32>,
    /// Share of the document's bytes that both sides cite.
    pub common_coverage: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Comparison {
    pub id: String,
    pub document_id: String,
    pub full: Side,
    pub chunked: Side,
    pub overlap: Overlap,
    pub created_at: String,
}

/// Merge spans into disjoint, sorted ones.
fn union(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|s| (s.start, s.end));
    let mut out: Vec<Span> = Vec::new();
    for s in spans.into_iter().filter(|s| !s.is_empty()) {
        match out.last_mut() {
            Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
            _ => out.push(s),
        }
    }
    out
}

fn spans_of(a: &Analysis) -> Vec<Span> {
    union(a.citations.iter().filter(|c| c.end > c.start).map(|c| Span { start: c.start, end: c.end }).collect())
}

fn share(bytes: usize, text_len: usize) -> f32 {
    if text_len == 0 {
        0.0
    } else {
        bytes as f32 / text_len as f32
    }
}

fn stats(a: &Analysis, text_len: usize) -> SideStats {
    let valid = a.citations.iter().filter(|c| c.valid).count();
    let covered = spans_of(a).iter().map(Span::len).sum();
    let pages: BTreeSet<u32> = a.citations.iter().filter(|c| c.page > 0).map(|c| c.page).collect();
    SideStats {
        citations: a.citations.len(),
        valid,
        validity: if a.citations.is_empty() { 0.0 } else { valid as f32 / a.citations.len() as f32 },
        coverage: share(covered, text_len),
        pages: pages.into_iter().collect(),
    }
}

pub fn overlap(text_len: usize, full: Option<&Analysis>, chunked: Option<&Analysis>) -> Overlap {
    let segments = |a: Option<&Analysis>| -> BTreeSet<u32> {
        a.map(|a| a.citations.iter().filter(|c| c.end > c.start).map(|c| c.segment).collect()).unwrap_or_default()
    };
    let common_segments = segments(full).intersection(&segments(chunked)).copied().collect();
    let common_bytes = match (full, chunked) {
        (Some(f), Some(c)) => {
            let theirs = spans_of(c);
            spans_of(f)
                .iter()
                .flat_map(|a| theirs.iter().map(move |b| a.end.min(b.end).saturating_sub(a.start.max(b.start))))
                .sum()
        }
        _ => 0,
    };
    Overlap {
        full: full.map(|a| stats(a, text_len)),
        chunked: chunked.map(|a| stats(a, text_len)),
        common_segments,
        common_coverage: share(common_bytes, text_len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Answer, Citation, PipelineKind, Task, Timings, Usage};

    fn analysis(cites: &[(u32, usize, usize, bool)]) -> Analysis {
        Analysis {
            id: "a".into(),
            document_id: "d".into(),
            pipeline: PipelineKind::Full,
            model: "m".into(),
            task: Task::Summary,
            question: None,
            answer: Answer { text: String::new(), sentences: vec![] },
            citations: cites
                .iter()
                .enumerate()
                .map(|(i, &(segment, start, end, valid))| Citation {
                    id: i as u32 + 1,
                    segment,
                    start,
                    end,
                    page: 1,
                    quote: String::new(),
                    valid,
                    support: 0.0,
                    reason: None,
                })
                .collect(),
            usage: Usage::default(),
            timings: Timings::default(),
            retrieval: None,
            created_at: String::new(),
        }
    }

    #[test]
    fn overlap_counts_coverage_common_segments_and_validity() {
        let full = analysis(&[(1, 0, 10, true), (3, 20, 30, false), (1, 0, 10, true)]);
        let chunked = analysis(&[(3, 20, 30, true), (5, 40, 50, true)]);
        let o = overlap(100, Some(&full), Some(&chunked));
        let f = o.full.unwrap();
        assert_eq!((f.citations, f.valid), (3, 2));
        assert!((f.coverage - 0.2).abs() < 1e-6, "repeated spans count once");
        assert!((o.chunked.unwrap().validity - 1.0).abs() < 1e-6);
        assert_eq!(o.common_segments, vec![3]);
        assert!((o.common_coverage - 0.1).abs() < 1e-6);
    }

    #[test]
    fn a_failed_side_has_no_stats() {
        let chunked = analysis(&[(2, 5, 9, true)]);
        let o = overlap(10, None, Some(&chunked));
        assert!(o.full.is_none() && o.common_segments.is_empty() && o.common_coverage == 0.0);
    }
}
