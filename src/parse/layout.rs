//! One page's text from pdf-extract's drawing calls, laid out as pdf-extract's own plain-text
//! output does (a space where glyphs leave a gap, a line break where the baseline moves), plus
//! what right-to-left scripts need: where each glyph's text begins, and which way the page draws
//! its right-to-left glyphs, so that text drawn in visual order is put back in reading order.

use pdf_extract::{MediaBox, OutputDev, OutputError, Transform};
use unicode_bidi::{bidi_class, BidiClass, Level, ParagraphBidiInfo};

mod columns;

/// pdf-extract's `PlainTextOutput` with glyph boundaries and direction evidence recorded.
/// Latin text comes out byte for byte as pdf-extract writes it.
pub struct PageText {
    text: String,
    /// Byte offsets in `text` where a glyph or an inserted separator begins.
    starts: Vec<usize>,
    /// Every glyph drawn, in drawing order.
    glyphs: Vec<Glyph>,
    /// Right-to-left glyphs and all glyphs with a letter.
    rtl_letters: usize,
    letters: usize,
    page_height: f64,
    last_end: f64,
    last_y: f64,
    first_char: bool,
    /// The previous glyph when it was right-to-left: its left edge, baseline and size.
    last_rtl: Option<(f64, f64, f64)>,
    /// Pairs of neighbouring right-to-left glyphs drawn left to right (visual order) and right
    /// to left (reading order).
    drawn_visual: usize,
    drawn_logical: usize,
}

/// One glyph: where it is drawn (y down the page) and where its text lies in `PageText::text`.
struct Glyph {
    x: f64,
    y: f64,
    right: f64,
    size: f64,
    start: usize,
    end: usize,
    /// A combining mark (an Arabic vowel sign, a Hebrew point).
    mark: bool,
}

impl Default for PageText {
    fn default() -> Self {
        // pdf-extract's starting values, so the first glyph is laid out as it lays it out.
        Self {
            text: String::new(),
            starts: Vec::new(),
            glyphs: Vec::new(),
            rtl_letters: 0,
            letters: 0,
            page_height: 0.0,
            last_end: 100_000.0,
            last_y: 0.0,
            first_char: false,
            last_rtl: None,
            drawn_visual: 0,
            drawn_logical: 0,
        }
    }
}

impl PageText {
    /// The page's text in reading order. A page drawn in visual order (as most PDF writers draw
    /// right-to-left scripts) is put back in reading order line by line; a page mostly in such a
    /// script is laid out again from the glyphs' positions first, because its writer draws the
    /// pieces of a line in no useful order. Other pages stay in drawing order unless it runs
    /// their columns together (`columns`). Every glyph's text stays.
    pub fn finish(self) -> String {
        if self.rtl_letters == 0 || self.drawn_visual <= self.drawn_logical {
            return columns::reading_order(&self.text, &self.glyphs, self.rtl_letters == 0).unwrap_or(self.text);
        }
        let (text, starts) =
            if self.rtl_letters * 3 >= self.letters { self.lines_by_position() } else { (self.text.clone(), self.starts.clone()) };
        let mut out = String::with_capacity(text.len());
        let mut starts = starts.as_slice();
        let mut line_start = 0;
        for (n, line) in text.split('\n').enumerate() {
            let line_end = line_start + line.len();
            // This line's glyph starts, relative to the line.
            let skip = starts.iter().take_while(|&&s| s < line_start).count();
            starts = starts.get(skip..).unwrap_or_default();
            let within: Vec<usize> =
                starts.iter().take_while(|&&s| s < line_end).map(|&s| s - line_start).collect();
            if n > 0 {
                out.push('\n');
            }
            out.push_str(&visual_to_logical(line, &within));
            line_start = line_end + 1;
        }
        out
    }

    /// The page's glyphs in lines by baseline, each line left to right, with a space where
    /// glyphs leave a gap and a blank line where lines do; and where each glyph's text begins.
    fn lines_by_position(&self) -> (String, Vec<usize>) {
        // A mark is drawn where its font puts it, which says little about its base; in visual
        // order it is drawn just before its base, so it sorts just before the glyph drawn next.
        let mut order: Vec<(f64, &Glyph)> = self.glyphs.iter().map(|g| (g.x, g)).collect();
        for i in (0..order.len().saturating_sub(1)).rev() {
            if let [(x, glyph), (next_x, next), ..] = order.get_mut(i..).unwrap_or_default() {
                if glyph.mark && (glyph.y - next.y).abs() <= glyph.size * 0.5 {
                    *x = *next_x;
                }
            }
        }
        let lines = baseline_lines(order, |(_, g)| g.y, |(_, g)| g.size * 0.5);
        let mut text = String::with_capacity(self.text.len());
        let mut starts = Vec::with_capacity(self.glyphs.len() * 2);
        let mut last: Option<(f64, f64)> = None;
        for mut line in lines {
            line.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.mark.cmp(&a.1.mark)));
            let (y, size) = line.first().map_or((0.0, 0.0), |(_, g)| (g.y, g.size));
            if let Some((last_y, last_size)) = last {
                starts.push(text.len());
                text.push_str(line_break((last_y, last_size), (y, size)));
            }
            last = Some((y, size));
            let mut right = f64::INFINITY;
            for (_, glyph) in line {
                let Some(glyph_text) = self.text.get(glyph.start..glyph.end) else { continue };
                if glyph.x > right + glyph.size * 0.1 && !glyph.mark {
                    starts.push(text.len());
                    text.push(' ');
                }
                right = if right.is_finite() { right.max(glyph.right) } else { glyph.right };
                starts.push(text.len());
                text.push_str(glyph_text);
            }
        }
        (text, starts)
    }
}

/// Items grouped in lines by baseline: sorted down the page (stably), a new line wherever an item
/// sits more than `tolerance` below the baseline of its line's first item.
fn baseline_lines<T>(mut items: Vec<T>, y: impl Fn(&T) -> f64, tolerance: impl Fn(&T) -> f64) -> Vec<Vec<T>> {
    items.sort_by(|a, b| y(a).total_cmp(&y(b)));
    let mut lines: Vec<Vec<T>> = Vec::new();
    let mut baseline = f64::NEG_INFINITY;
    for item in items {
        match lines.last_mut() {
            Some(line) if y(&item) - baseline <= tolerance(&item) => line.push(item),
            _ => {
                baseline = y(&item);
                lines.push(vec![item]);
            }
        }
    }
    lines
}

/// What separates two lines, given each one's baseline and size: a blank line where they leave a
/// gap of more than one and a half lines, as pdf-extract writes it.
fn line_break((last_y, last_size): (f64, f64), (y, size): (f64, f64)) -> &'static str {
    if y - last_y > last_size.max(size) * 1.5 {
        "\n\n"
    } else {
        "\n"
    }
}

impl OutputDev for PageText {
    fn begin_page(&mut self, _page: u32, media_box: &MediaBox, _art: Option<(f64, f64, f64, f64)>) -> Result<(), OutputError> {
        self.page_height = media_box.ury - media_box.lly;
        Ok(())
    }

    fn end_page(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn output_character(&mut self, trm: &Transform, width: f64, _spacing: f64, font_size: f64, glyph: &str) -> Result<(), OutputError> {
        let (x, y, size) = position(trm, font_size, self.page_height);
        let rtl = is_rtl_glyph(glyph);
        self.starts.push(self.text.len());
        if self.first_char {
            if (y - self.last_y).abs() > size * 1.5 {
                self.text.push('\n');
            }
            if x < self.last_end && (y - self.last_y).abs() > size * 0.5 {
                self.text.push('\n');
            }
            if x > self.last_end + size * 0.1 {
                self.text.push(' ');
            } else if let (true, Some((left, last_y, _))) = (rtl, self.last_rtl) {
                // Drawn right to left: the gap is between this glyph's right edge and the last
                // one's left edge, which pdf-extract's layout does not look at.
                if (y - last_y).abs() <= size * 0.5 && x + width * size < left - size * 0.1 {
                    self.text.push(' ');
                }
            }
        }
        if rtl {
            self.count_direction(x, y, size);
        }
        let start = self.text.len();
        self.starts.push(start);
        self.text.push_str(glyph);
        let mark = glyph.chars().next().is_some_and(is_mark);
        self.glyphs.push(Glyph { x, y, right: x + width * size, size, start, end: self.text.len(), mark });
        if glyph.chars().any(char::is_alphabetic) {
            self.letters += 1;
            self.rtl_letters += usize::from(rtl);
        }
        self.first_char = false;
        self.last_y = y;
        self.last_end = x + width * size;
        self.last_rtl = rtl.then_some((x, y, size));
        Ok(())
    }

    fn begin_word(&mut self) -> Result<(), OutputError> {
        self.first_char = true;
        Ok(())
    }

    fn end_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

impl PageText {
    /// Two right-to-left glyphs in a row on one baseline, close together: the way the second
    /// moved says in which order the page draws them.
    fn count_direction(&mut self, x: f64, y: f64, size: f64) {
        let Some((last_x, last_y, _)) = self.last_rtl else { return };
        let dx = x - last_x;
        if (y - last_y).abs() > size * 0.5 || dx.abs() > size * 3.0 || dx.abs() < size * 0.01 {
            return;
        }
        if dx > 0.0 {
            self.drawn_visual += 1;
        } else {
            self.drawn_logical += 1;
        }
    }
}

/// Where a glyph is drawn, as pdf-extract computes it (the position on the page flipped to
/// y-down, and the side of the square whose area is the transformed font size's), except for
/// text that is rotated a quarter turn or more, or mirrored, where that size is not a number and
/// every line ran into the next: there the position is measured along the text's own baseline
/// and across it.
fn position(trm: &Transform, font_size: f64, page_height: f64) -> (f64, f64, f64) {
    let size = ((font_size * trm.m11 + font_size * trm.m21) * (font_size * trm.m12 + font_size * trm.m22)).sqrt();
    if trm.m11.abs() >= trm.m12.abs() && size.is_finite() {
        return (trm.m31, page_height - trm.m32, size);
    }
    let size = font_size * (trm.m11 * trm.m22 - trm.m12 * trm.m21).abs().sqrt();
    let (along, across) = (trm.m11.hypot(trm.m12), trm.m21.hypot(trm.m22));
    if along == 0.0 || across == 0.0 {
        return (trm.m31, page_height - trm.m32, size);
    }
    let x = (trm.m31 * trm.m11 + trm.m32 * trm.m12) / along;
    let up = (trm.m31 * trm.m21 + trm.m32 * trm.m22) / across;
    (x, -up, size)
}

/// A glyph whose text starts with a right-to-left letter (Arabic, Hebrew, Syriac, Thaana…).
fn is_rtl_glyph(glyph: &str) -> bool {
    glyph.chars().find(|c| !is_mark(*c)).is_some_and(is_rtl_char)
}

/// The lookups below run for every glyph: the Latin range, where neither kind lies, answers
/// without the bidi class table (a binary search that cost 3% of a Latin report's parse).
fn is_mark(c: char) -> bool {
    c >= '\u{0300}' && bidi_class(c) == BidiClass::NSM
}

fn is_rtl_char(c: char) -> bool {
    c >= '\u{0590}' && matches!(bidi_class(c), BidiClass::R | BidiClass::AL)
}

/// A line laid out in visual order (left to right as drawn), put in reading order by the Unicode
/// bidirectional algorithm: runs at odd levels read backwards, the runs in the order the line's
/// direction gives, mirrored brackets turned back. `starts` (sorted, relative to the line) cut it
/// into glyphs, which move whole: a ligature's text (lam-alef) is already in reading order.
/// The inverse of the algorithm's logical-to-visual reordering for lines without explicit
/// embeddings, which PDFs do not draw.
pub fn visual_to_logical(line: &str, starts: &[usize]) -> String {
    let (ltr, rtl) = line.chars().fold((0usize, 0usize), |(l, r), c| match bidi_class(c) {
        BidiClass::L => (l + 1, r),
        BidiClass::R | BidiClass::AL => (l, r + 1),
        _ => (l, r),
    });
    if rtl == 0 {
        return line.to_owned();
    }
    let base = if rtl >= ltr { Level::rtl() } else { Level::ltr() };
    let info = ParagraphBidiInfo::new(line, Some(base));
    let levels = info.reordered_levels(0..line.len());
    // Glyphs, with every character outside a recorded glyph on its own.
    let mut cuts: Vec<usize> = starts.iter().copied().filter(|&s| s < line.len()).collect();
    cuts.extend(line.char_indices().map(|(i, _)| i).filter(|i| !in_glyph(*i, starts, line)));
    cuts.sort_unstable();
    cuts.dedup();
    if cuts.first() != Some(&0) {
        cuts.insert(0, 0);
    }
    let ends: Vec<usize> = cuts.iter().skip(1).copied().chain(std::iter::once(line.len())).collect();
    let glyphs = cuts
        .iter()
        .zip(&ends)
        .filter_map(|(&a, &b)| Some((line.get(a..b)?, *levels.get(a)?)));
    // Drawn in visual order, a base's marks come just before it: they join it, after it.
    let mut units: Vec<(String, Level)> = Vec::new();
    let mut marks = String::new();
    for (text, level) in glyphs {
        if text.chars().next().is_some_and(is_mark) && level.is_rtl() {
            marks.insert_str(0, text);
        } else {
            units.push((format!("{text}{marks}"), level));
            marks.clear();
        }
    }
    if !marks.is_empty() {
        units.push((marks, base));
    }
    let unit_levels: Vec<Level> = units.iter().map(|(_, l)| *l).collect();
    let mut out = String::with_capacity(line.len());
    for i in ParagraphBidiInfo::reorder_visual(&unit_levels) {
        let Some((text, level)) = units.get(i) else { continue };
        let mut chars = text.chars();
        match (chars.next().and_then(mirror), chars.next(), level.is_rtl()) {
            (Some(m), None, true) => out.push(m),
            _ => out.push_str(text),
        }
    }
    out
}

/// True when byte `i` lies inside a recorded glyph of more than one character (not at its start).
fn in_glyph(i: usize, starts: &[usize], line: &str) -> bool {
    let before = starts.partition_point(|&s| s <= i);
    let Some(&start) = before.checked_sub(1).and_then(|b| starts.get(b)) else { return false };
    let end = starts.get(before).copied().unwrap_or(line.len());
    start < i && i < end
}

/// The mirrored form of a paired punctuation mark (Unicode's Bidi_Mirroring_Glyph, the pairs
/// documents use).
fn mirror(c: char) -> Option<char> {
    Some(match c {
        '(' => ')',
        ')' => '(',
        '[' => ']',
        ']' => '[',
        '{' => '}',
        '}' => '{',
        '<' => '>',
        '>' => '<',
        '«' => '»',
        '»' => '«',
        '‹' => '›',
        '›' => '‹',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arabic_drawn_left_to_right_reads_right_to_left_with_latin_kept() {
        // "مرحبا بالعالم" (hello world) drawn as glyphs left to right: the visual string is reversed.
        let logical = "مرحبا بالعالم";
        let visual: String = logical.chars().rev().collect();
        assert_eq!(visual_to_logical(&visual, &[]), logical);
        // Latin and numbers inside Arabic keep their own order.
        let logical = "باستخدام Python 3 في";
        let visual = "يف 3 Python مادختساب";
        assert_eq!(visual_to_logical(visual, &[]), logical);
        assert_eq!(visual_to_logical("plain latin (text)", &[]), "plain latin (text)");
    }

    #[test]
    fn a_ligature_glyph_moves_whole_and_brackets_turn_back() {
        // "الإنتاج": the lam-alef ligature's text "لإ" is one glyph, already in reading order.
        let visual = "جاتنلإا";
        let lam_alef = visual.find('ل').unwrap();
        let starts: Vec<usize> = visual.char_indices().map(|(i, _)| i).filter(|&i| i != lam_alef + 2).collect();
        assert_eq!(visual_to_logical(visual, &starts), "الإنتاج");
        assert_eq!(visual_to_logical("(صخلم)", &[]), "(ملخص)");
    }
}
