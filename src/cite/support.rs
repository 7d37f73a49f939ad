//! The lexical support measure: which share of a claim's content words occur
//! in the cited span. Documented in the README; deliberately simple and
//! explainable, so a reader can check a verdict by eye.

use std::collections::HashSet;

/// A citation whose span holds less than this share of the claim's content
/// words is marked unsupported.
pub const MIN_SUPPORT: f32 = 0.25;

const STOPWORDS: &[&str] = &[
    "the",
    "and",
    "for",
    "that",
    "this",
    "with",
    "are",
    "was",
    "were",
    "been",
    "being",
    "have",
    "has",
    "had",
    "not",
    "but",
    "its",
    "their",
    "they",
    "them",
    "which",
    "who",
    "whom",
    "from",
    "into",
    "onto",
    "than",
    "then",
    "there",
    "these",
    "those",
    "such",
    "can",
    "could",
    "may",
    "might",
    "will",
    "would",
    "shall",
    "should",
    "also",
    "any",
    "all",
    "each",
    "other",
    "more",
    "most",
    "some",
    "only",
    "about",
    "over",
    "under",
    "between",
    "through",
    "what",
    "when",
    "where",
    "how",
    "why",
    "our",
    "your",
    "his",
    "her",
    "she",
    "him",
    "you",
    "one",
    "two",
    "use",
    "used",
    "using",
    "document",
    "paper",
    "text",
    "describes",
    "discusses",
    "explains",
    "states",
    "says",
    "section",
    "author",
    "authors",
];

/// Lower-cased content words, lightly stemmed. CJK text has no spaces, so each
/// Han, kana or Hangul character counts as a word.
pub fn content_words(text: &str) -> HashSet<String> {
    let mut words = HashSet::new();
    let mut current = String::new();
    let flush = |w: &mut String, words: &mut HashSet<String>| {
        if !w.is_empty() {
            let lower = w.to_lowercase();
            let keep = lower.chars().any(|c| c.is_ascii_digit())
                || (lower.chars().count() >= 3 && !STOPWORDS.contains(&lower.as_str()));
            if keep {
                words.insert(stem(&lower));
            }
            w.clear();
        }
    };
    for c in text.chars() {
        if is_cjk(c) {
            flush(&mut current, &mut words);
            words.insert(c.to_string());
        } else if c.is_alphanumeric() {
            current.push(c);
        } else {
            flush(&mut current, &mut words);
        }
    }
    flush(&mut current, &mut words);
    words
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF)
}

/// Strip a few English inflections so "transactions" matches "transaction".
fn stem(word: &str) -> String {
    for suffix in ["ing", "ies", "es", "ed", "ly", "s"] {
        if let Some(base) = word.strip_suffix(suffix) {
            if base.chars().count() >= 3 {
                return base.to_owned();
            }
        }
    }
    word.to_owned()
}

/// Share of the claim's content words found in the span, in [0, 1]. A claim
/// with no content words is trivially supported (1.0).
pub fn support(claim: &str, span_text: &str) -> f32 {
    let claim_words = content_words(claim);
    if claim_words.is_empty() {
        return 1.0;
    }
    let span_words = content_words(span_text);
    let shared = claim_words.intersection(&span_words).count();
    shared as f32 / claim_words.len() as f32
}

/// Why verification fails a claim against the text of its span.
#[derive(Debug, PartialEq)]
pub enum Failure {
    /// The span holds fewer than `MIN_SUPPORT` of the claim's content words.
    Unsupported,
    /// The span does not state these numbers of the claim (`missing_numbers`).
    NumberMissing(Vec<String>),
}

/// What verification finds of `claim` against the text of its span: the support, and why it
/// fails, if it does.
pub fn check(claim: &str, span: &str) -> (f32, Option<Failure>) {
    let support = support(claim, span);
    if support < MIN_SUPPORT {
        return (support, Some(Failure::Unsupported));
    }
    let missing = missing_numbers(claim, span);
    (support, (!missing.is_empty()).then_some(Failure::NumberMissing(missing)))
}

/// The numbers `claim` writes in digits that `span` does not state, in digits or in words, in
/// the order the claim writes them. A number is a fact: the lexical measure counts it as one
/// word among many, so "The door code of the archive is 142." passed against the heading
/// "SOURCE CODE INSTALLATION SITE", 142 being no number of the document but a marker's label
/// (docs/eval-issue21). A claim's number words are not checked ("one of the parties").
pub fn missing_numbers(claim: &str, span: &str) -> Vec<String> {
    let stated: HashSet<String> =
        digit_numbers(span).into_iter().chain(word_numbers(span)).chain(month_numbers(span)).collect();
    let mut missing: Vec<String> = Vec::new();
    for n in digit_numbers(claim) {
        if !stated.contains(&n) && !missing.contains(&n) {
            missing.push(n);
        }
    }
    missing
}

/// The numbers `text` writes in digits, normalised: thousands separators dropped ("1,000" is
/// 1000, but "15,2000" is 15 and 2000), leading zeros dropped ("08" is 8), a fraction's trailing
/// zeros dropped ("45,420.00" is 45420). Dotted runs stay one number ("12.1", "3.3.3"); other
/// separators part numbers ("2020-01-01" is 2020, 1, 1).
fn digit_numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let digit = |i: usize| chars.get(i).is_some_and(char::is_ascii_digit);
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !digit(i) {
            i += 1;
            continue;
        }
        let mut whole = String::new();
        let mut parts: Vec<String> = Vec::new();
        while digit(i) {
            whole.extend(chars.get(i));
            i += 1;
        }
        loop {
            let sep = chars.get(i).copied();
            let run = (i + 1..).take_while(|&j| digit(j)).count();
            match sep {
                Some(',') if run == 3 && parts.is_empty() => {
                    whole.extend(chars.get(i + 1..i + 4).into_iter().flatten());
                    i += 4;
                }
                Some('.') if run > 0 => {
                    parts.push(chars.get(i + 1..i + 1 + run).into_iter().flatten().collect());
                    i += 1 + run;
                }
                _ => break,
            }
        }
        let whole = whole.trim_start_matches('0');
        let mut n = if whole.is_empty() { "0".to_owned() } else { whole.to_owned() };
        if let [fraction] = parts.as_slice() {
            let fraction = fraction.trim_end_matches('0');
            if !fraction.is_empty() {
                n = format!("{n}.{fraction}");
            }
        } else {
            parts.iter().for_each(|p| n = format!("{n}.{p}"));
        }
        out.push(n);
    }
    out
}

/// The months `text` names in a date ("1 May 2020", "May 1, 2020", "Sept. 2020": a number
/// next to the name), as their numbers: a claim may write the date in digits ("2020-05-01").
fn month_numbers(text: &str) -> Vec<String> {
    const MONTHS: &str = "january february march april may june july august september october november december";
    let words: Vec<String> =
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    let number = |i: Option<usize>| i.and_then(|i| words.get(i)).is_some_and(|w| w.chars().all(|c| c.is_ascii_digit()));
    let mut out = Vec::new();
    for (i, word) in words.iter().enumerate() {
        // The name, or its abbreviation of three letters or more ("Sept").
        let month = MONTHS.split_whitespace().position(|m| m.starts_with(word.as_str()) && word.len() >= 3);
        if let Some(m) = month.filter(|_| number(i.checked_sub(1)) || number(Some(i + 1))) {
            out.push((m + 1).to_string());
        }
    }
    out
}

/// The numbers `text` writes in English words: "sixty", "twenty-four", "one hundred eighty",
/// "two thousand", and the ordinals up to "tenth" ("the third anniversary").
fn word_numbers(text: &str) -> Vec<String> {
    const UNITS: &str = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen \
                         fifteen sixteen seventeen eighteen nineteen";
    const TENS: [&str; 8] = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
    const ORDINALS: [&str; 10] =
        ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"];
    let mut out = Vec::new();
    // The number being read: thousands done, and the part below a thousand.
    let mut reading: Option<(u64, u64)> = None;
    let lower = text.to_lowercase();
    let words = lower.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| !w.is_empty());
    for word in words.chain(std::iter::once(".")) {
        let unit = UNITS.split_whitespace().position(|u| u == word).map(|v| v as u64);
        let tens = TENS.iter().position(|t| *t == word).map(|v| 20 + 10 * v as u64);
        if let Some(at) = ORDINALS.iter().position(|o| *o == word) {
            out.push((at + 1).to_string());
        }
        reading = match (reading, unit.or(tens), word) {
            // "twenty four": a unit after a round ten joins it.
            (Some((k, low)), Some(v), _) if v < 10 && low % 100 >= 20 && low % 10 == 0 => Some((k, low + v)),
            (Some((k, low)), Some(v), _) if low % 100 == 0 && (low > 0 || k > 0) => Some((k, low + v)),
            (Some((k, low)), Some(v), _) => {
                out.push((k + low).to_string());
                Some((0, v))
            }
            (None, Some(v), _) => Some((0, v)),
            (Some((k, low)), None, "hundred") => Some((k, low * 100)),
            (Some((k, low)), None, "thousand") => Some(((k + low) * 1000, 0)),
            (Some((k, low)), None, _) => {
                out.push((k + low).to_string());
                None
            }
            (None, None, _) => None,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_is_high_for_a_paraphrase_and_low_for_an_unrelated_span() {
        let claim = "Transactions are hashed into an ongoing chain of proof-of-work.";
        let span =
            "The network timestamps transactions by hashing them into an ongoing chain of hash-based proof-of-work.";
        assert!(support(claim, span) >= 0.6, "{}", support(claim, span));
        let unrelated = "We thank the reviewers for their helpful comments.";
        assert!(support(claim, unrelated) < MIN_SUPPORT);
    }

    #[test]
    fn cjk_characters_count_as_words() {
        assert!(support("比特币是电子现金", "比特币：一种点对点的电子现金系统") > 0.5);
    }

    #[test]
    fn a_number_the_span_does_not_state_is_missing_in_digits_or_in_words() {
        let span = "The term is three (3) years from 1 May 2020; notice of sixty days and a fee of $45,420.00.";
        assert!(missing_numbers("The term is 3 years from 2020-05-01.", span).is_empty());
        assert!(missing_numbers("Signed on 2020-09-01.", "Signed on Sept. 1, 2020.").is_empty());
        assert_eq!(missing_numbers("Payment is due 3/15.", "Payment is due on the marketing date of 15 units."), ["3"]);
        let verb = "Either party may end it on sixty days notice.";
        assert_eq!(
            missing_numbers("Either party may end it on 5 days notice.", verb),
            ["5"],
            "\"may\" is no month here"
        );
        assert!(missing_numbers("Notice takes 60 days; the fee is $45,420.", span).is_empty());
        assert_eq!(missing_numbers("The door code of the archive is 142.", span), ["142"]);
        assert_eq!(missing_numbers("A.1.1 The term is 3 years, 15,2000.", span), ["1.1", "15", "2000"]);
        let words = "twenty-four months, one hundred eighty days, two thousand five units, the third anniversary";
        assert!(missing_numbers("24 months, 180 days, 2005 units, 3 years", words).is_empty());
        assert_eq!(
            missing_numbers("Section 12.1 applies after 08 days.", "Section 12.1 applies after eight days."),
            Vec::<String>::new()
        );
        assert_eq!(missing_numbers("Section 12.1.2 applies.", "Section 12.1 applies."), ["12.1.2"]);
    }
}
