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

/// The page's text in reading order where its drawing order will not do, or `None` where it
/// stands: column by column where columns of prose are drawn row by row; by position on a page of
/// number cells drawn block by block (`by_position`), where `positional` allows it (reading by
/// position goes left to right: not for right-to-left text drawn in order).
pub(super) fn reading_order(text: &str, glyphs: &[Glyph], positional: bool) -> Option<String> {
    let inked: Vec<Inked<'_>> =
        glyphs.iter().filter(|g| !glyph_text(text, g).trim().is_empty()).enumerate().collect();
    let size = median(inked.iter().map(|(_, g)| g.size).filter(|s| s.is_finite() && *s > 0.0).collect())?;
    let segments = segments(&inked, size);
    if glyphs.len() >= MIN_GLYPHS {
        let gutters = gutters(&segments, size);
        if !gutters.is_empty() && crossings(&inked, &gutters, size) >= MIN_CROSSINGS {
            return Some(lay_out(text, &segments, &gutters, size, false));
        }
    }
    if positional {
        by_position(text, &inked, &segments, size)
    } else {
        None
    }
}

/// Word starts drawn back to the left, by more than `BACKWARD_JUMP` font sizes, on the baseline
/// of the glyph drawn before them: at least this many on a page before it is laid out by position.
/// (Formulas go back a little for accents, limits and stacked scripts; table blocks go back by
/// whole blocks.)
const MIN_BACKWARD_JUMPS: usize = 3;
const BACKWARD_JUMP: f64 = 4.0;

/// The text of a page of number cells line by line from the glyphs' positions, each line left
/// to right, or `None` when its drawing order can stand. Some writers draw the cells of a table
/// block by block (the IRS's tax tables draw each row of one block, then the same row of the
/// next), and where the drawing order goes back to the left on one baseline, pdf-extract writes
/// the next cell with no separator at all: "131" and "0" of two blocks become "1310". Reading such
/// a page by position puts every row together, left to right, with its cells apart, and each
/// header cell of words stacked over several lines as one phrase (`unstack`). A glyph drawn again
/// over one of the same text (the way some writers make bold) does not count as a jump.
fn by_position(text: &str, inked: &[Inked<'_>], segments: &[Segment<'_>], size: f64) -> Option<String> {
    let overprint = |upto: usize, b: &Glyph| {
        inked.iter().take(upto).any(|(_, g)| {
            glyph_text(text, g) == glyph_text(text, b) && (g.x - b.x).abs() < size * 0.25 && (g.y - b.y).abs() < size * 0.25
        })
    };
    let jumps = inked
        .windows(2)
        .enumerate()
        .filter(|&(i, w)| match w {
            [(_, a), (_, b)] => (a.y - b.y).abs() <= size * 0.5 && b.x < a.x - size * BACKWARD_JUMP && !overprint(i + 1, b),
            _ => false,
        })
        .take(MIN_BACKWARD_JUMPS)
        .count();
    if jumps < MIN_BACKWARD_JUMPS {
        return None;
    }
    // Only a page of number cells: short pieces, mostly digits. A page of prose or formulas keeps
    // its drawing order, columns and all, which reading by position would run together.
    if median(segments.iter().map(|s| s.x1 - s.x0).collect())? >= size * MIN_COLUMN_WIDTH {
        return None;
    }
    let digits = inked.iter().filter(|(_, g)| glyph_text(text, g).chars().all(|c| c.is_ascii_digit())).count();
    if digits * 2 < inked.len() {
        return None;
    }
    let moved = unstack(text, segments, size);
    let inked: Vec<Inked<'_>> = moved.iter().enumerate().collect();
    let Some(&(_, first)) = inked.first() else { return Some(String::new()) };
    // One segment holding every glyph: with no gutters, `lay_out` reads only its glyphs.
    let all = Segment { x0: first.x, x1: first.right, y: first.y, glyphs: inked };
    Some(lay_out(text, std::slice::from_ref(&all), &[], size, true))
}

/// The inked glyphs (in drawing order) with the words of each stacked header cell moved onto the
/// cell's top line, one after the other: "At" over "least", "Married" over "filing" over
/// "separately" read "At least", "Married filing separately", as poppler reads such a cell. A
/// stacked cell is a run of pieces with letters on consecutive lines, each of the kind of the one
/// above (short, or a line of prose) and under it (the middle of one within the other's width:
/// a caption spanning several cells below them is not part of one); the pieces after a widened
/// cell on its top line move right to make room.
fn unstack(text: &str, segments: &[Segment<'_>], size: f64) -> Vec<Glyph> {
    // Pieces with letters stack with pieces of their kind: short ones (header cells) with short
    // ones, lines of prose with lines of prose (a paragraph beside a table reads whole, not line
    // by line between the table's rows).
    let kind = |s: &Segment<'_>| {
        s.glyphs
            .iter()
            .any(|(_, g)| glyph_text(text, g).chars().any(char::is_alphabetic))
            .then_some(s.x1 - s.x0 < size * MIN_COLUMN_WIDTH)
    };
    // The middle of `a` within `b`'s width.
    let centred = |a: &Segment<'_>, b: &Segment<'_>| (b.x0..=b.x1).contains(&((a.x0 + a.x1) / 2.0));
    let mut order: Vec<usize> = (0..segments.len()).collect();
    order.sort_by(|&a, &b| match (segments.get(a), segments.get(b)) {
        (Some(a), Some(b)) => a.y.total_cmp(&b.y).then(a.x0.total_cmp(&b.x0)),
        _ => std::cmp::Ordering::Equal,
    });
    // Cells as lists of segment indices, top piece first.
    let mut cells: Vec<Vec<usize>> = Vec::new();
    for &i in &order {
        let Some(s) = segments.get(i) else { continue };
        let below = |c: &Vec<usize>| {
            c.last().and_then(|&j| segments.get(j)).is_some_and(|above| {
                let dy = s.y - above.y;
                kind(s).is_some()
                    && kind(s) == kind(above)
                    && dy > size * 0.5
                    && dy <= size * 1.6
                    && (centred(s, above) || centred(above, s))
            })
        };
        match cells.iter_mut().find(|c| below(c)) {
            Some(c) => c.push(i),
            None => cells.push(vec![i]),
        }
    }
    // Each cell's pieces one after another from its top piece's left edge; cells that start on one
    // line (within half a size) shift right by what the cells before them grew.
    let mut shift: Vec<(f64, f64)> = vec![(0.0, 0.0); segments.len()];
    // Cells were opened going down the page, so they are in the order of their top pieces.
    let top = |c: &Vec<usize>| c.first().and_then(|&j| segments.get(j));
    // Cells in lines by their top piece's baseline, each line left to right. Every cell of a line
    // goes onto that line's first baseline exactly, so that the lines are read as shifted here.
    let mut lined: Vec<(f64, &Vec<usize>)> = Vec::with_capacity(cells.len());
    let mut line: Option<f64> = None;
    for c in &cells {
        let Some(head) = top(c) else { continue };
        let y = match line {
            Some(y) if head.y - y <= size * 0.5 => y,
            _ => *line.insert(head.y),
        };
        lined.push((y, c));
    }
    lined.sort_by(|(ya, a), (yb, b)| {
        ya.total_cmp(yb).then(top(a).map(|s| s.x0).unwrap_or_default().total_cmp(&top(b).map(|s| s.x0).unwrap_or_default()))
    });
    let mut line: Option<f64> = None;
    let mut grown = 0.0;
    for &(y, c) in &lined {
        let Some(head) = top(c) else { continue };
        if line != Some(y) {
            line = Some(y);
            grown = 0.0;
        }
        let right = c.iter().filter_map(|&j| segments.get(j)).map(|s| s.x1).fold(head.x1, f64::max);
        let mut cursor = head.x0 + grown;
        for &j in c {
            let Some(s) = segments.get(j) else { continue };
            if let Some(slot) = shift.get_mut(j) {
                *slot = (cursor - s.x0, y - s.y);
            }
            cursor += s.x1 - s.x0 + size * 0.5;
        }
        grown = (cursor - size * 0.5 - right).max(grown);
    }
    let mut moved: Vec<(usize, Glyph)> = Vec::new();
    for (s, &(dx, dy)) in segments.iter().zip(&shift) {
        for &(rank, g) in &s.glyphs {
            let glyph = Glyph { x: g.x + dx, y: g.y + dy, right: g.right + dx, size: g.size, start: g.start, end: g.end, mark: g.mark };
            moved.push((rank, glyph));
        }
    }
    moved.sort_by_key(|(rank, _)| *rank);
    moved.into_iter().map(|(_, g)| g).collect()
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
/// by the gap elsewhere, as pdf-extract lays out. With `gap_spaces`, a gap also parts glyphs drawn
/// in a row (table cells a writer draws as one string, moved apart).
fn lay_out(text: &str, segments: &[Segment<'_>], gutters: &[Gutter], size: f64, gap_spaces: bool) -> String {
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
                    let gap = g.x > p.right + g.size * 0.1;
                    let space = if prev_rank + 1 == rank {
                        text.get(p.end..g.start).unwrap_or_default().chars().any(char::is_whitespace)
                            || gap_spaces && gap
                    } else {
                        gap
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
        for &(w, x, y) in words {
            if !text.is_empty() {
                text.push(' ');
            }
            push_word(&mut text, &mut glyphs, w, x, y);
        }
        (text, glyphs)
    }

    /// One glyph a character of `w`, 5 units wide at size 10, from (x, y); returns its right end.
    fn push_word(text: &mut String, glyphs: &mut Vec<Glyph>, w: &str, x: f64, y: f64) -> f64 {
        for (k, c) in w.chars().enumerate() {
            let x = x + 5.0 * k as f64;
            let start = text.len();
            text.push(c);
            glyphs.push(Glyph { x, y, right: x + 5.0, size: 10.0, start, end: text.len(), mark: false });
        }
        x + 5.0 * w.chars().count() as f64
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
        let read = reading_order(&text, &glyphs, true).expect("two columns drawn row by row");
        let col1 = (0..10).map(|r| format!("col1line{r:02}xxxxxxxxx")).collect::<Vec<_>>().join("\n");
        let col2 = (0..10).map(|r| format!("col2line{r:02}xxxxxxxxx")).collect::<Vec<_>>().join("\n");
        assert_eq!(read, format!("Title across both columns of the page here\n\n{col1}\n\n{col2}"));
    }

    #[test]
    fn columns_drawn_column_by_column_and_tables_keep_their_drawing_order() {
        let words = two_columns(10, false);
        let (text, glyphs) = page(&borrowed(&words));
        assert_eq!(reading_order(&text, &glyphs, true), None, "already in reading order");
        // A table drawn row by row: short cells are not columns of prose.
        let mut cells = Vec::new();
        for r in 0..30 {
            for (c, x) in [0.0, 60.0, 120.0, 180.0].iter().enumerate() {
                cells.push((format!("r{r}c{c}"), *x, 12.0 * r as f64));
            }
        }
        let (text, glyphs) = page(&borrowed(&cells));
        assert_eq!(reading_order(&text, &glyphs, true), None, "a table stays row by row");
    }

    /// Like `page`, with pdf-extract's separators between the words: a line break where the
    /// baseline moves, a space where a word starts right of the last one's end, and nothing where
    /// it starts back to the left on the same baseline.
    fn drawn(words: &[(&str, f64, f64)]) -> (String, Vec<Glyph>) {
        let (mut text, mut glyphs) = (String::new(), Vec::new());
        let (mut last_end, mut last_y) = (f64::INFINITY, f64::NAN);
        for &(w, x, y) in words {
            if !text.is_empty() {
                if (y - last_y).abs() > 5.0 {
                    text.push('\n');
                } else if x > last_end + 1.0 {
                    text.push(' ');
                }
            }
            last_end = push_word(&mut text, &mut glyphs, w, x, y);
            last_y = y;
        }
        (text, glyphs)
    }

    /// Rows of two blocks of a tax table side by side, 12 units apart from y = 0, each row drawn in
    /// the right block first: bracket and tax on the right, two small cells on the left.
    fn tax_rows(rows: usize) -> Vec<(String, f64, f64)> {
        let mut cells = Vec::new();
        for r in 0..rows {
            let y = 12.0 * r as f64;
            cells.push((format!("{}", 1300 + 25 * r), 200.0, y));
            cells.push((format!("{}", 131 + r), 260.0, y));
            cells.push((format!("{}", 5 * r), 0.0, y));
            cells.push((format!("{}", r), 60.0, y));
        }
        cells
    }

    #[test]
    fn table_blocks_drawn_right_block_first_are_read_row_by_row_with_cells_apart() {
        let cells = tax_rows(3);
        let (text, glyphs) = drawn(&borrowed(&cells));
        assert!(text.starts_with("1300 1310 0\n"), "pdf-extract glues the blocks: {text:?}");
        assert_eq!(reading_order(&text, &glyphs, true).as_deref(), Some("0 0 1300 131\n5 1 1325 132\n10 2 1350 133"));
    }

    #[test]
    fn number_cells_drawn_as_one_string_come_apart_by_their_gap() {
        // Each row: the right block's cells, then the left block's two cells as one string that
        // the writer moves apart with no space in it.
        let (mut text, mut glyphs) = (String::new(), Vec::new());
        for r in 0..3 {
            let y = 12.0 * r as f64;
            if r > 0 {
                text.push('\n');
            }
            push_word(&mut text, &mut glyphs, &format!("{}", 1300 + 25 * r), 200.0, y);
            text.push(' ');
            push_word(&mut text, &mut glyphs, &format!("{}", 131 + r), 260.0, y);
            push_word(&mut text, &mut glyphs, &format!("{}", 5 * r), 0.0, y);
            push_word(&mut text, &mut glyphs, &format!("{}", r), 60.0, y);
        }
        assert!(text.starts_with("1300 13100\n"), "{text:?}");
        assert_eq!(reading_order(&text, &glyphs, true).as_deref(), Some("0 0 1300 131\n5 1 1325 132\n10 2 1350 133"));
    }

    #[test]
    fn stacked_header_cells_read_as_phrases_above_the_rows() {
        // Header cells of words stacked over three lines, then twenty rows drawn right block first.
        let mut words: Vec<(String, f64, f64)> = [
            ("At", 0.0, -30.0),
            ("But", 60.0, -30.0),
            ("Married", 200.0, -30.0),
            ("least", 0.0, -22.0),
            ("less", 60.0, -22.0),
            ("filing", 200.0, -22.0),
            ("than", 60.0, -14.0),
            ("separately", 200.0, -14.0),
        ]
        .iter()
        .map(|&(w, x, y)| (w.to_owned(), x, y))
        .collect();
        words.extend(tax_rows(20));
        let (text, glyphs) = drawn(&borrowed(&words));
        assert!(text.starts_with("At But Married\nleast less filing\n"), "{text:?}");
        let read = reading_order(&text, &glyphs, true).expect("a page of number cells");
        assert!(read.starts_with("At least But less than Married filing separately\n\n0 0 1300 131\n5 1 1325 132\n"), "{read:?}");
        // A paragraph beside the first rows reads whole after the first row, not between the rows.
        for (r, line) in ["Example. Mr. Green is filing", "as a qualifying widower and", "reads down the column."].iter().enumerate() {
            words.push(((*line).to_owned(), 400.0, 12.0 * r as f64));
        }
        let (text, glyphs) = drawn(&borrowed(&words));
        let read = reading_order(&text, &glyphs, true).expect("a page of number cells");
        assert!(
            read.contains(
                "\n\n0 0 1300 131 Example. Mr. Green is filing as a qualifying widower and reads down the column.\n5 1 1325 132\n"
            ),
            "{read:?}"
        );
    }

    #[test]
    fn pages_in_reading_order_and_overprinted_bold_keep_their_drawing_order() {
        let words = two_columns(10, false);
        let (text, glyphs) = drawn(&borrowed(&words));
        assert_eq!(reading_order(&text, &glyphs, true), None, "no jump back on a baseline");
        // Bold made by drawing each word twice, the second a hair to the right.
        let mut bold = Vec::new();
        for r in 0..5 {
            for (w, x) in [("Total", 0.0), ("tax", 40.0)] {
                bold.push((w.to_owned(), x, 12.0 * r as f64));
                bold.push((w.to_owned(), x + 0.3, 12.0 * r as f64));
            }
        }
        let (text, glyphs) = drawn(&borrowed(&bold));
        assert_eq!(reading_order(&text, &glyphs, true), None, "overprinting is not a jump");
    }

    #[test]
    fn a_short_page_is_left_alone() {
        let words = two_columns(2, true);
        let (text, glyphs) = page(&borrowed(&words));
        assert!(glyphs.len() < MIN_GLYPHS);
        assert_eq!(reading_order(&text, &glyphs, true), None);
    }
}
