//! Pages of text columns drawn row by row. Some writers (the IRS's publishing system among them)
//! draw each line across every column, so the text in drawing order runs from the end of a line
//! of one column into the line beside it in the next ("…to the Internal use a different address
//! this year…"). Where the glyphs leave a vertical gutter between columns of prose and the
//! drawing order keeps jumping across it on one baseline, the page is laid out again as a reader
//! (and poppler) reads it: column by column, with lines that span the columns (titles, headers)
//! in their place between them. Pages drawn column by column, as most are, stay as drawn.

use super::{baseline_lines, line_break, Glyph};

/// Fewer glyphs than this: no columns worth finding.
const MIN_GLYPHS: usize = 200;
/// A gap in a line wider than this many font sizes starts a new segment (word spaces, even
/// justified, are narrower; a gutter is wider).
const SEGMENT_GAP: f64 = 0.8;
/// A gutter is at least this many font sizes wide.
const MIN_GUTTER: f64 = 1.0;
/// Share of segments that may cross a gutter (full-width titles, headers, footers).
const SPANNING_SHARE: f64 = 0.1;
/// A column of prose: at least this many segments, at least this many font sizes wide (median).
const MIN_COLUMN_SEGMENTS: usize = 8;
const MIN_COLUMN_WIDTH: f64 = 8.0;
/// Jumps across a gutter on one baseline, in drawing order, before the order is called row by row.
const MIN_CROSSINGS: usize = 3;

/// An inked glyph (whitespace glyphs left out) and its rank among them in drawing order.
type Inked<'a> = (usize, &'a Glyph);

/// A run of glyphs drawn one after another on one baseline with no gutter-wide gap.
struct Segment<'a> {
    x0: f64,
    x1: f64,
    y: f64,
    glyphs: Vec<Inked<'a>>,
}

/// An x range free of text between two columns.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Gutter {
    left: f64,
    right: f64,
}

/// The page's text column by column, or `None` when it has no columns drawn row by row.
pub(super) fn reading_order(text: &str, glyphs: &[Glyph]) -> Option<String> {
    if glyphs.len() < MIN_GLYPHS {
        return None;
    }
    let inked: Vec<Inked<'_>> =
        glyphs.iter().filter(|g| !glyph_text(text, g).trim().is_empty()).enumerate().collect();
    let size = median(inked.iter().map(|(_, g)| g.size).filter(|s| s.is_finite() && *s > 0.0).collect())?;
    let segments = segments(&inked, size);
    let gutters = gutters(&segments, size);
    if gutters.is_empty() || crossings(&inked, &gutters, size) < MIN_CROSSINGS {
        return None;
    }
    Some(lay_out(text, &segments, &gutters, size))
}

fn glyph_text<'a>(text: &'a str, g: &Glyph) -> &'a str {
    text.get(g.start..g.end).unwrap_or_default()
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied()
}

fn segments<'a>(inked: &[Inked<'a>], size: f64) -> Vec<Segment<'a>> {
    let mut out: Vec<Segment<'a>> = Vec::new();
    for &(rank, g) in inked {
        match out.last_mut() {
            Some(s) if (g.y - s.y).abs() <= size * 0.5 && g.x >= s.x1 - size * 0.5 && g.x <= s.x1 + size * SEGMENT_GAP => {
                s.x1 = s.x1.max(g.right);
                s.glyphs.push((rank, g));
            }
            _ => out.push(Segment { x0: g.x, x1: g.right.max(g.x), y: g.y, glyphs: vec![(rank, g)] }),
        }
    }
    out
}

/// Gutters between columns of prose: x ranges at least `MIN_GUTTER` sizes wide that almost no
/// segment covers, with columns of full lines on both sides. All or nothing: a page whose
/// "columns" are not all prose (a table) keeps its drawing order.
fn gutters(segments: &[Segment<'_>], size: f64) -> Vec<Gutter> {
    if segments.len() < MIN_COLUMN_SEGMENTS * 2 {
        return Vec::new();
    }
    let min_x = segments.iter().map(|s| s.x0).fold(f64::INFINITY, f64::min);
    let max_x = segments.iter().map(|s| s.x1).fold(f64::NEG_INFINITY, f64::max);
    let width = max_x - min_x;
    if !width.is_finite() || width <= 0.0 || width > 20_000.0 {
        return Vec::new();
    }
    // Coverage in bins of one unit (a point on most pages).
    let bins = width.ceil() as usize + 1;
    let mut cover = vec![0usize; bins];
    for s in segments {
        let (a, b) = ((s.x0 - min_x).floor().max(0.0) as usize, ((s.x1 - min_x).ceil() as usize).min(bins - 1));
        for c in cover.iter_mut().take(b + 1).skip(a) {
            *c += 1;
        }
    }
    let allowed = ((segments.len() as f64) * SPANNING_SHARE) as usize;
    let mut found = Vec::new();
    let mut run_start = None;
    for (b, &c) in cover.iter().enumerate() {
        match (c <= allowed, run_start) {
            (true, None) => run_start = Some(b),
            (false, Some(a)) => {
                let (left, right) = (min_x + a as f64, min_x + b as f64);
                if a > 0 && right - left >= size * MIN_GUTTER {
                    found.push(Gutter { left, right });
                }
                run_start = None;
            }
            _ => {}
        }
    }
    // Every column between the gutters (and the text's edges) must be prose.
    let mut edges = vec![min_x];
    for g in &found {
        edges.extend([g.left, g.right]);
    }
    edges.push(max_x);
    for col in edges.chunks(2) {
        let [lo, hi] = *col else { continue };
        let widths: Vec<f64> =
            segments.iter().filter(|s| s.x0 >= lo - 0.5 && s.x1 <= hi + 0.5).map(|s| s.x1 - s.x0).collect();
        if widths.len() < MIN_COLUMN_SEGMENTS || median(widths).unwrap_or(0.0) < size * MIN_COLUMN_WIDTH {
            return Vec::new();
        }
    }
    found
}

/// How often the drawing order jumps across a gutter from one glyph to the next on one baseline.
fn crossings(inked: &[Inked<'_>], gutters: &[Gutter], size: f64) -> usize {
    inked
        .windows(2)
        .filter(|w| match w {
            [(_, a), (_, b)] => {
                (a.y - b.y).abs() <= size * 0.5
                    && gutters.iter().any(|g| a.right <= g.left + 0.5 && b.x >= g.right - 0.5)
            }
            _ => false,
        })
        .count()
}

/// The text again: bands between lines that span the gutters, each band column by column, each
/// column line by line; spaces where the writer put them between glyphs it drew in a row, and
/// by the gap elsewhere, as pdf-extract lays out.
fn lay_out(text: &str, segments: &[Segment<'_>], gutters: &[Gutter], size: f64) -> String {
    let spans = |s: &Segment<'_>| gutters.iter().any(|g| s.x0 < g.left - 0.5 && s.x1 > g.right + 0.5);
    let mut spanning: Vec<f64> = segments.iter().filter(|s| spans(s)).map(|s| s.y).collect();
    spanning.sort_by(f64::total_cmp);
    // Blocks keyed (band, place): place 0.. are the columns, then the band's closing spanning line.
    let column_of = |s: &Segment<'_>| gutters.iter().filter(|g| g.right <= (s.x0 + s.x1) / 2.0).count();
    let mut blocks: Vec<((usize, usize), Vec<Inked<'_>>)> = Vec::new();
    for s in segments {
        // A spanning line closes the band above it.
        let band = spanning.partition_point(|&y| y < s.y - size * 0.5);
        let key = (band, if spans(s) { usize::MAX } else { column_of(s) });
        match blocks.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.extend(&s.glyphs),
            None => blocks.push((key, s.glyphs.clone())),
        }
    }
    blocks.sort_by_key(|(k, _)| *k);
    let mut out = String::with_capacity(text.len());
    for (_, members) in blocks {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        let lines = baseline_lines(members, |(_, g)| g.y, |_| size * 0.5);
        let mut last: Option<(f64, f64)> = None;
        for mut line in lines {
            line.sort_by(|(ra, a), (rb, b)| a.x.total_cmp(&b.x).then(ra.cmp(rb)));
            let Some(&(_, first)) = line.first() else { continue };
            if let Some(last) = last {
                out.push_str(line_break(last, (first.y, first.size)));
            }
            last = Some((first.y, first.size));
            let mut prev: Option<Inked<'_>> = None;
            for (rank, g) in line {
                if let Some((prev_rank, p)) = prev {
                    // Drawn one after the other: the writer's own separator decides.
                    let space = if prev_rank + 1 == rank {
                        text.get(p.end..g.start).unwrap_or_default().chars().any(char::is_whitespace)
                    } else {
                        g.x > p.right + g.size * 0.1
                    };
                    if space {
                        out.push(' ');
                    }
                }
                out.push_str(glyph_text(text, g));
                prev = Some((rank, g));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page's glyphs from words placed at (x, y), drawn in the order given, one glyph a
    /// character 5 units wide at size 10, with pdf-extract's text: a space between words.
    fn page(words: &[(&str, f64, f64)]) -> (String, Vec<Glyph>) {
        let (mut text, mut glyphs) = (String::new(), Vec::new());
        for (w, x, y) in words {
            if !text.is_empty() {
                text.push(' ');
            }
            for (k, c) in w.chars().enumerate() {
                let x = x + 5.0 * k as f64;
                let start = text.len();
                text.push(c);
                glyphs.push(Glyph { x, y: *y, right: x + 5.0, size: 10.0, start, end: text.len(), mark: false });
            }
        }
        (text, glyphs)
    }

    /// Two columns of `rows` lines, 100 units wide with a 30-unit gutter, under a title that
    /// spans both; `row_by_row` draws each row across both columns.
    fn two_columns(rows: usize, row_by_row: bool) -> Vec<(String, f64, f64)> {
        let mut words = vec![("Title across both columns of the page here".to_owned(), 0.0, 10.0)];
        let line = |col: usize, r: usize| format!("col{col}line{r:02}xxxxxxxxx");
        let y = |r: usize| 30.0 + 12.0 * r as f64;
        if row_by_row {
            for r in 0..rows {
                words.push((line(1, r), 0.0, y(r)));
                words.push((line(2, r), 130.0, y(r)));
            }
        } else {
            words.extend((0..rows).map(|r| (line(1, r), 0.0, y(r))));
            words.extend((0..rows).map(|r| (line(2, r), 130.0, y(r))));
        }
        words
    }

    fn borrowed(words: &[(String, f64, f64)]) -> Vec<(&str, f64, f64)> {
        words.iter().map(|(w, x, y)| (w.as_str(), *x, *y)).collect()
    }

    #[test]
    fn columns_drawn_row_by_row_are_read_column_by_column() {
        let words = two_columns(10, true);
        let (text, glyphs) = page(&borrowed(&words));
        assert!(text.contains("col1line00xxxxxxxxx col2line00xxxxxxxxx"), "drawn row by row");
        let read = reading_order(&text, &glyphs).expect("two columns drawn row by row");
        let col1 = (0..10).map(|r| format!("col1line{r:02}xxxxxxxxx")).collect::<Vec<_>>().join("\n");
        let col2 = (0..10).map(|r| format!("col2line{r:02}xxxxxxxxx")).collect::<Vec<_>>().join("\n");
        assert_eq!(read, format!("Title across both columns of the page here\n\n{col1}\n\n{col2}"));
    }

    #[test]
    fn columns_drawn_column_by_column_and_tables_keep_their_drawing_order() {
        let words = two_columns(10, false);
        let (text, glyphs) = page(&borrowed(&words));
        assert_eq!(reading_order(&text, &glyphs), None, "already in reading order");
        // A table drawn row by row: short cells are not columns of prose.
        let mut cells = Vec::new();
        for r in 0..30 {
            for (c, x) in [0.0, 60.0, 120.0, 180.0].iter().enumerate() {
                cells.push((format!("r{r}c{c}"), *x, 12.0 * r as f64));
            }
        }
        let (text, glyphs) = page(&borrowed(&cells));
        assert_eq!(reading_order(&text, &glyphs), None, "a table stays row by row");
    }

    #[test]
    fn a_short_page_is_left_alone() {
        let words = two_columns(2, true);
        let (text, glyphs) = page(&borrowed(&words));
        assert!(glyphs.len() < MIN_GLYPHS);
        assert_eq!(reading_order(&text, &glyphs), None);
    }
}
