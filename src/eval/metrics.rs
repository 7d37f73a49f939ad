//! Scores for the evaluation: character-level overlap of cited spans with gold spans, gold
//! clauses located in the normalised text, answer correctness against a normalised gold answer,
//! and 95% intervals for rates and means. Pure functions, tested on hand-made cases.

use crate::domain::Span;

/// Overlap of the cited text with the gold text, counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SpanScores {
    /// Share of the cited characters that are gold (0 when nothing was cited).
    pub precision: f64,
    /// Share of the gold characters that were cited (0 when there is no gold).
    pub recall: f64,
    pub f1: f64,
    /// Whether any cited character is gold.
    pub hit: bool,
}

/// Sorted, non-overlapping spans covering the same bytes.
pub fn merge(spans: &[Span]) -> Vec<Span> {
    let mut sorted: Vec<Span> = spans.iter().copied().filter(|s| !s.is_empty()).collect();
    sorted.sort_by_key(|s| (s.start, s.end));
    let mut out: Vec<Span> = Vec::with_capacity(sorted.len());
    for s in sorted {
        match out.last_mut() {
            Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
            _ => out.push(s),
        }
    }
    out
}

/// Characters of `text` inside the (merged) spans; spans off char boundaries count nothing.
fn chars_in(text: &str, spans: &[Span]) -> usize {
    spans.iter().filter_map(|s| s.slice(text)).map(|t| t.chars().count()).sum()
}

fn intersect(a: &[Span], b: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            let (start, end) = (x.start.max(y.start), x.end.min(y.end));
            if start < end {
                out.push(Span { start, end });
            }
        }
    }
    merge(&out)
}

pub fn overlap_scores(text: &str, cited: &[Span], gold: &[Span]) -> SpanScores {
    let (cited, gold) = (merge(cited), merge(gold));
    let common = chars_in(text, &intersect(&cited, &gold)) as f64;
    let (c, g) = (chars_in(text, &cited) as f64, chars_in(text, &gold) as f64);
    let precision = if c > 0.0 { common / c } else { 0.0 };
    let recall = if g > 0.0 { common / g } else { 0.0 };
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    SpanScores { precision, recall, f1, hit: common > 0.0 }
}

/// Where `needle` occurs in `text` with any run of whitespace matching any other (gold clauses
/// are quoted from a differently extracted text); the first occurrence, as a byte span of `text`.
pub fn locate(text: &str, needle: &str) -> Option<Span> {
    let words: Vec<&str> = needle.split_whitespace().collect();
    let first = *words.first()?;
    let mut from = 0;
    while let Some(found) = text.get(from..)?.find(first) {
        let start = from + found;
        let mut at = start;
        let mut matched = true;
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                let rest = text.get(at..)?;
                let skipped = rest.len() - rest.trim_start().len();
                if skipped == 0 {
                    matched = false;
                    break;
                }
                at += skipped;
            }
            if text.get(at..).is_some_and(|r| r.starts_with(word)) {
                at += word.len();
            } else {
                matched = false;
                break;
            }
        }
        if matched {
            return Some(Span { start, end: at });
        }
        from = start + first.len();
    }
    None
}

/// The spans of a CUAD gold clause: CUAD joins the discontiguous parts of one clause with
/// `<omitted>`; each part is located after the one before. Empty when any part is not found.
pub fn locate_clause(text: &str, clause: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut from = 0;
    for part in clause.split("<omitted>").filter(|p| !p.trim().is_empty()) {
        match text.get(from..).and_then(|rest| locate(rest, part)) {
            Some(s) => {
                spans.push(Span { start: from + s.start, end: from + s.end });
                from += s.end;
            }
            None => return Vec::new(),
        }
    }
    spans
}

/// The strings of a Python list literal of string literals, as CUAD stores a category's clauses
/// (`"['first clause', \"it's second\"]"`); `None` when it is not one. `[]` is a category the
/// contract does not have.
pub fn python_str_list(literal: &str) -> Option<Vec<String>> {
    let mut chars = literal.trim().chars().peekable();
    if chars.next()? != '[' {
        return None;
    }
    let mut out = Vec::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let quote = match chars.next()? {
            ']' => break,
            q @ ('\'' | '"') => q,
            _ => return None,
        };
        let mut item = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => item.push('\n'),
                    't' => item.push('\t'),
                    other => item.push(other),
                },
                c if c == quote => break,
                c => item.push(c),
            }
        }
        out.push(item);
    }
    chars.all(char::is_whitespace).then_some(out)
}

/// Lower case, letters and digits only, single spaces.
pub fn normalize_answer(s: &str) -> String {
    let cleaned: String =
        s.chars().map(|c| if c.is_alphanumeric() { c.to_lowercase().next().unwrap_or(c) } else { ' ' }).collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The answer states the gold answer: every word of the normalised gold answer occurs in the
/// normalised answer, in order.
pub fn answer_matches(answer: &str, gold: &str) -> bool {
    let gold = normalize_answer(gold);
    if gold.is_empty() {
        return false;
    }
    let answer = normalize_answer(answer);
    let mut words = answer.split(' ');
    gold.split(' ').all(|g| words.any(|w| w == g))
}

/// A 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    pub n: usize,
}

impl Interval {
    /// The interval cut to the range the quantity can take (a mean of seconds is not negative,
    /// a mean F1 not above 1); the estimate is unchanged.
    pub fn within(self, lo: f64, hi: f64) -> Self {
        Self { low: self.low.max(lo), high: self.high.min(hi), ..self }
    }
}

const Z95: f64 = 1.959_963_984_540_054;

/// Wilson score interval of `successes` out of `n` (sound for small n and rates near 0 or 1).
pub fn wilson(successes: usize, n: usize) -> Interval {
    if n == 0 {
        return Interval { estimate: 0.0, low: 0.0, high: 1.0, n };
    }
    let (k, n_f) = (successes.min(n) as f64, n as f64);
    let p = k / n_f;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n_f)) / (1.0 + z2 / n_f);
    let half = Z95 * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt() / (1.0 + z2 / n_f);
    Interval { estimate: p, low: (centre - half).max(0.0), high: (centre + half).min(1.0), n }
}

/// Student's t 0.975 quantiles for 1 to 30 degrees of freedom.
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
    2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/// The two-sided 95% t quantile for `df` degrees of freedom (a step below the next tabulated value
/// past 30, which errs wide).
fn t975(df: usize) -> f64 {
    match df {
        0 => f64::INFINITY,
        1..=30 => T975.get(df - 1).copied().unwrap_or(Z95),
        31..=40 => 2.042,
        41..=60 => 2.021,
        61..=120 => 2.000,
        _ => 1.980,
    }
}

/// Mean with a 95% t interval (as wide as it honestly is for a handful of items). One value has
/// no interval: low and high are the value itself, and the report shows none for n = 1.
pub fn mean_interval(values: &[f64]) -> Interval {
    let n = values.len();
    if n == 0 {
        return Interval { estimate: 0.0, low: 0.0, high: 0.0, n };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Interval { estimate: mean, low: mean, high: mean, n };
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t975(n - 1) * (var / n as f64).sqrt();
    Interval { estimate: mean, low: mean - half, high: mean + half, n }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    #[test]
    fn a_perfect_citation_scores_one_and_a_wrong_one_zero() {
        let text = "The term is five years. Governed by the laws of Illinois.";
        let gold = [sp(24, 57)];
        assert_eq!(overlap_scores(text, &gold, &gold), SpanScores { precision: 1.0, recall: 1.0, f1: 1.0, hit: true });
        let wrong = overlap_scores(text, &[sp(0, 23)], &gold);
        assert_eq!(wrong, SpanScores { precision: 0.0, recall: 0.0, f1: 0.0, hit: false });
        assert_eq!(overlap_scores(text, &[], &gold).f1, 0.0);
    }

    #[test]
    fn partial_overlaps_score_their_share_of_characters() {
        // 10 gold characters, 20 cited, 5 in common.
        let text = "a".repeat(40);
        let s = overlap_scores(&text, &[sp(15, 35)], &[sp(10, 20)]);
        assert_eq!((s.precision, s.recall, s.hit), (0.25, 0.5, true));
        assert!((s.f1 - 1.0 / 3.0).abs() < 1e-12);
        // Overlapping citations count their characters once.
        let twice = overlap_scores(&text, &[sp(10, 20), sp(12, 18)], &[sp(10, 20)]);
        assert_eq!((twice.precision, twice.recall), (1.0, 1.0));
        // Characters, not bytes: "é" is two bytes.
        let accents = "ééééé";
        let s = overlap_scores(accents, &[sp(0, 4)], &[sp(0, 10)]);
        assert_eq!((s.precision, s.recall), (1.0, 0.4));
    }

    #[test]
    fn gold_clauses_are_found_across_different_whitespace() {
        let text = "4.1 Duration. Unless  earlier\nterminated, this Agreement\tshall be effective.";
        let span = locate(text, "Unless earlier terminated, this   Agreement shall").unwrap();
        assert_eq!(span.slice(text), Some("Unless  earlier\nterminated, this Agreement\tshall"));
        assert_eq!(locate(text, "Unless later"), None);
        assert_eq!(locate(text, "   "), None);
        let parts = locate_clause(text, "Unless earlier<omitted>this Agreement");
        assert_eq!(
            parts.iter().map(|p| p.slice(text).unwrap()).collect::<Vec<_>>(),
            ["Unless  earlier", "this Agreement"]
        );
        assert!(locate_clause(text, "this Agreement<omitted>Unless").is_empty(), "parts are found in order");
        // The first word occurring earlier in a non-matching context is skipped.
        assert_eq!(locate("ab cd ab ef", "ab ef"), Some(sp(6, 11)));
    }

    #[test]
    fn reads_cuad_clause_lists() {
        assert_eq!(python_str_list("[]"), Some(vec![]));
        assert_eq!(
            python_str_list(r#"['a, b', "it's", 'x\'y']"#),
            Some(vec!["a, b".to_owned(), "it's".to_owned(), "x'y".to_owned()])
        );
        for bad in ["", "['open", "['a'] trailing", "[1, 2]"] {
            assert_eq!(python_str_list(bad), None, "{bad}");
        }
    }

    #[test]
    fn answers_match_the_normalised_gold_answer() {
        assert!(answer_matches("It is governed by the laws of the State of Illinois.", "Illinois"));
        assert!(answer_matches("The agreement lasts Five (5) years", "five 5 years"));
        assert!(!answer_matches("Delaware law governs.", "Illinois"));
        assert!(!answer_matches("anything", "  "));
    }

    #[test]
    fn wilson_intervals_match_published_values() {
        // 0 of 10: [0, 0.2775]; 5 of 10: [0.2366, 0.7634] (Wilson 1927, as tabulated by Newcombe 1998).
        let none = wilson(0, 10);
        assert_eq!(none.low, 0.0);
        assert!((none.high - 0.2775).abs() < 1e-4, "{none:?}");
        let half = wilson(5, 10);
        assert!((half.low - 0.2366).abs() < 1e-4 && (half.high - 0.7634).abs() < 1e-4, "{half:?}");
        assert_eq!(wilson(3, 0), Interval { estimate: 0.0, low: 0.0, high: 1.0, n: 0 });
        let m = mean_interval(&[1.0, 1.0, 1.0]);
        assert_eq!((m.estimate, m.low, m.high), (1.0, 1.0, 1.0));
        // t with 2 degrees of freedom (4.303): mean 2, sd 1, n 3 -> 2 ± 4.303/√3.
        let t = mean_interval(&[1.0, 2.0, 3.0]);
        assert!((t.high - (2.0 + 4.303 / 3f64.sqrt())).abs() < 1e-9, "{t:?}");
        assert_eq!(mean_interval(&[0.7]), Interval { estimate: 0.7, low: 0.7, high: 0.7, n: 1 });
    }
}
