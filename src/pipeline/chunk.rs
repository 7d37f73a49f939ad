//! Chunking for retrieval: runs of whole segments (sentences, list or table lines), bounded in
//! tokens of the baseline model. A chunk ends at a paragraph or page break once it is half full,
//! so headings start chunks and paragraphs stay together; a paragraph longer than a chunk is cut
//! between sentences, and the next chunk repeats the last sentences of the previous one (overlap).

use crate::domain::{Chunk, Segment, Span};
use crate::llm::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkConfig {
    pub max_tokens: usize,
    pub overlap_tokens: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        Self { max_tokens: 320, overlap_tokens: 48 }
    }
}

/// Whether a blank line or a new page separates two neighbouring segments.
fn paragraph_break(text: &str, before: &Segment, after: &Segment) -> bool {
    before.page != after.page || text.get(before.span.end..after.span.start).is_some_and(|gap| gap.contains("\n\n"))
}

/// Group `segments` (with their token counts) into chunks.
pub fn plan_chunks(text: &str, segments: &[Segment], tokens: &[usize], config: ChunkConfig) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    // Indexes into `segments` of the chunk being built.
    let mut current: Vec<usize> = Vec::new();
    let mut size = 0usize;
    let close = |current: &[usize], size: usize, chunks: &mut Vec<Chunk>| {
        let (Some(first), Some(last)) =
            (current.first().and_then(|&i| segments.get(i)), current.last().and_then(|&i| segments.get(i)))
        else {
            return;
        };
        chunks.push(Chunk {
            id: u32::try_from(chunks.len() + 1).unwrap_or(u32::MAX),
            span: Span { start: first.span.start, end: last.span.end },
            page: first.page,
            last_page: last.page,
            tokens: size,
        });
    };
    for (i, (segment, &n)) in segments.iter().zip(tokens).enumerate() {
        let previous = current.last().and_then(|&p| segments.get(p));
        let at_break = previous.is_some_and(|p| paragraph_break(text, p, segment));
        if !current.is_empty() && at_break && size * 2 >= config.max_tokens {
            close(&current, size, &mut chunks);
            current.clear();
            size = 0;
        } else if !current.is_empty() && size + n > config.max_tokens {
            close(&current, size, &mut chunks);
            // Carry the last sentences (up to the overlap, never the whole chunk) into the next one,
            // unless a paragraph starts here anyway.
            let mut carried = Vec::new();
            let mut carried_size = 0;
            if !at_break {
                for &j in current.iter().skip(1).rev() {
                    let t = tokens.get(j).copied().unwrap_or(0);
                    if carried_size + t > config.overlap_tokens || carried_size + t + n > config.max_tokens {
                        break;
                    }
                    carried.insert(0, j);
                    carried_size += t;
                }
            }
            current = carried;
            size = carried_size;
        }
        current.push(i);
        size += n;
    }
    close(&current, size, &mut chunks);
    chunks
}

/// Chunk a document, counting each segment's tokens with `engine`'s tokenizer.
pub async fn chunk_document(
    text: &str,
    segments: &[Segment],
    engine: &dyn Engine,
    config: ChunkConfig,
) -> anyhow::Result<Vec<Chunk>> {
    let mut tokens = Vec::with_capacity(segments.len());
    for s in segments {
        tokens.push(engine.count_tokens(s.span.slice(text).unwrap_or_default()).await?);
    }
    Ok(plan_chunks(text, segments, &tokens, config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cite::segment;
    use crate::domain::PageSpan;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    fn chunks_of(text: &str, config: ChunkConfig) -> (Vec<Segment>, Vec<Chunk>) {
        let pages = [PageSpan { number: 1, start: 0, end: text.len() }];
        let segs = segment(text, &pages);
        let tokens: Vec<usize> = segs.iter().map(|s| words(s.span.slice(text).unwrap())).collect();
        let chunks = plan_chunks(text, &segs, &tokens, config);
        (segs, chunks)
    }

    #[test]
    fn chunks_cover_the_text_in_whole_sentences_within_the_budget() {
        let text =
            (1..=40).map(|i| format!("Sentence number {i} has exactly seven words.")).collect::<Vec<_>>().join(" ");
        let config = ChunkConfig { max_tokens: 30, overlap_tokens: 8 };
        let (segs, chunks) = chunks_of(&text, config);
        assert!(chunks.len() > 5);
        for c in &chunks {
            assert!(c.tokens <= 30, "{c:?}");
            // Starts and ends on sentence boundaries.
            assert!(segs.iter().any(|s| s.span.start == c.span.start));
            assert!(segs.iter().any(|s| s.span.end == c.span.end));
        }
        // Every sentence is in some chunk, and neighbours overlap by one sentence (7 words <= 8).
        for s in &segs {
            assert!(chunks.iter().any(|c| c.span.start <= s.span.start && s.span.end <= c.span.end));
        }
        assert!(chunks.windows(2).all(|w| w[1].span.start < w[0].span.end), "overlap");
        assert_eq!(chunks.first().unwrap().span.start, 0);
        assert_eq!(chunks.last().unwrap().span.end, text.len());
    }

    #[test]
    fn a_heading_after_a_blank_line_starts_a_new_chunk() {
        let text = "1. Term\n\nThis agreement lasts two years from signing. It renews each year after.\n\n\
                    2. Termination\n\nEither party may end it with notice. Notice must be written.";
        let (_, chunks) = chunks_of(text, ChunkConfig { max_tokens: 20, overlap_tokens: 5 });
        let starts: Vec<&str> = chunks.iter().map(|c| c.span.slice(text).unwrap()).collect();
        assert!(starts.iter().any(|c| c.starts_with("2. Termination")), "{starts:#?}");
        assert!(chunks.windows(2).all(|w| w[1].span.start >= w[0].span.end), "no overlap across paragraphs");
    }
}
