//! Text normalisation: one canonical text per document, so that every offset
//! the product shows (citations, highlights) refers to the same characters.

/// Characters that change how text is displayed but carry no content: bidi
/// controls, zero-width marks, the byte-order mark and soft hyphens. Left in,
/// they make RTL text look like garbage and break quote comparison.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
    )
}

fn ligature(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{FB00}' => "ff",
        '\u{FB01}' => "fi",
        '\u{FB02}' => "fl",
        '\u{FB03}' => "ffi",
        '\u{FB04}' => "ffl",
        '\u{FB05}' | '\u{FB06}' => "st",
        _ => return None,
    })
}

/// Normalise one page of extracted text: ligatures expanded, invisible and
/// control characters dropped, spaces collapsed, lines trimmed, words split by
/// a hyphen at a line end joined again, runs of blank lines cut to one.
pub fn normalize_page(raw: &str) -> String {
    let mut clean = String::with_capacity(raw.len());
    for c in raw.replace("\r\n", "\n").chars() {
        if let Some(l) = ligature(c) {
            clean.push_str(l);
        } else if c == '\r' || c == '\u{2028}' || c == '\u{2029}' {
            clean.push('\n');
        } else if c == '\t' || c == '\u{00A0}' || (c.is_whitespace() && c != '\n') {
            clean.push(' ');
        } else if c == '\n' || !(c.is_control() || is_invisible(c)) {
            clean.push(c);
        }
    }

    let lines: Vec<String> =
        clean.split('\n').map(|l| l.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")).collect();

    let mut out = String::with_capacity(clean.len());
    let mut blank_run = 0usize;
    for line in lines {
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            if blank_run <= 1 && continues_cjk_sentence(&out, &line) {
                // Chinese and Japanese have no spaces: a line break inside a sentence is only
                // where the page ended the line (pdf-extract leaves a blank line there when the
                // line spacing is wide), so the sentence is joined whole.
            } else if blank_run > 0 {
                out.push_str("\n\n");
            } else if ends_with_broken_word(&out) && starts_lowercase(&line) {
                // "docu-\nment" becomes "document"; but "proof-\nof-work" is a
                // compound broken at its own hyphen and stays "proof-of-work".
                let first_word = line.split(' ').next().unwrap_or_default();
                if !first_word.contains('-') {
                    out.pop();
                }
            } else {
                out.push('\n');
            }
        }
        blank_run = 0;
        out.push_str(&line);
    }
    out
}

/// Ideographs, kana, Hangul and CJK punctuation: scripts written without spaces between words.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3000}'..='\u{303F}' | '\u{3040}'..='\u{30FF}' | '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}'
            | '\u{AC00}'..='\u{D7AF}' | '\u{F900}'..='\u{FAFF}' | '\u{FF00}'..='\u{FF60}' | '\u{20000}'..='\u{2FA1F}')
}

/// The text so far ends inside a CJK sentence (a CJK character that does not end one) and the
/// next line goes on in CJK.
fn continues_cjk_sentence(text: &str, next: &str) -> bool {
    let last = text.chars().next_back();
    last.is_some_and(|c| is_cjk(c) && !matches!(c, '。' | '！' | '？' | '：' | '；'))
        && next.chars().next().is_some_and(is_cjk)
}

/// True when the text ends in a letter followed by a hyphen, as a word broken across lines does.
fn ends_with_broken_word(s: &str) -> bool {
    let mut rev = s.chars().rev();
    rev.next() == Some('-') && rev.next().is_some_and(char::is_lowercase)
}

fn starts_lowercase(s: &str) -> bool {
    s.chars().next().is_some_and(char::is_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_ligatures_and_drops_bidi_controls() {
        assert_eq!(normalize_page("\u{FB01}nal e\u{FB00}ect"), "final effect");
        assert_eq!(normalize_page("\u{202B}مرحبا\u{202C} world"), "مرحبا world");
    }

    #[test]
    fn joins_words_hyphenated_at_line_end_but_keeps_real_hyphens() {
        assert_eq!(normalize_page("a docu-\nment here"), "a document here");
        assert_eq!(normalize_page("a proof-\nof-work system"), "a proof-of-work system");
        assert_eq!(normalize_page("peer-to-peer\nNetwork"), "peer-to-peer\nNetwork");
        assert_eq!(normalize_page("state-\nOf"), "state-\nOf");
    }

    #[test]
    fn a_chinese_sentence_broken_across_lines_is_joined_and_a_finished_one_is_not() {
        assert_eq!(normalize_page("直接发送到另一方\n\n而不需要通过一个金融机构。\n\n1. 简介"), "直接发送到另一方而不需要通过一个金融机构。\n\n1. 简介");
        assert_eq!(normalize_page("证据。\n网络"), "证据。\n网络");
    }

    #[test]
    fn collapses_spaces_and_blank_lines() {
        assert_eq!(normalize_page("  a \t  b  \n\n\n\n  c  "), "a b\n\nc");
        assert_eq!(normalize_page("x\r\ny"), "x\ny");
    }
}
