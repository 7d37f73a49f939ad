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
}
