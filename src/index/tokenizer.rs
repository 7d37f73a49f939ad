//! A tokenizer for mixed Latin and CJK text. Latin, Cyrillic, Arabic… words are runs of
//! letters and digits; Chinese, Japanese and Korean, written without spaces, become overlapping
//! character bigrams (a lone character stays a unigram), the usual choice for BM25 over CJK.
//! Lower-casing and English stemming follow as tantivy filters.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

#[derive(Debug, Clone, Default)]
pub struct MixedTokenizer;

pub struct MixedTokenStream {
    tokens: Vec<Token>,
    next: usize,
    current: Token,
}

/// Scripts written without spaces between words.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF   // Hiragana, Katakana
        | 0x3400..=0x4DBF // CJK Extension A
        | 0x4E00..=0x9FFF // CJK Unified Ideographs
        | 0xAC00..=0xD7AF // Hangul syllables
        | 0xF900..=0xFAFF // CJK Compatibility Ideographs
        | 0x20000..=0x2FA1F)
}

fn push(tokens: &mut Vec<Token>, text: &str, from: usize, to: usize) {
    let Some(word) = text.get(from..to) else { return };
    tokens.push(Token {
        offset_from: from,
        offset_to: to,
        position: tokens.len(),
        text: word.to_owned(),
        position_length: 1,
    });
}

/// Every token of `text` with its byte offsets.
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut word_start: Option<usize> = None;
    let mut cjk_run: Vec<(usize, char)> = Vec::new();
    let flush_cjk = |run: &mut Vec<(usize, char)>, tokens: &mut Vec<Token>| {
        match run.as_slice() {
            [] => {}
            [(at, c)] => push(tokens, text, *at, at + c.len_utf8()),
            _ => {
                for pair in run.windows(2) {
                    if let [(a, _), (b, c)] = pair {
                        push(tokens, text, *a, b + c.len_utf8());
                    }
                }
            }
        }
        run.clear();
    };
    for (at, c) in text.char_indices() {
        if is_cjk(c) {
            if let Some(start) = word_start.take() {
                push(&mut tokens, text, start, at);
            }
            cjk_run.push((at, c));
        } else if c.is_alphanumeric() {
            flush_cjk(&mut cjk_run, &mut tokens);
            word_start.get_or_insert(at);
        } else {
            flush_cjk(&mut cjk_run, &mut tokens);
            if let Some(start) = word_start.take() {
                push(&mut tokens, text, start, at);
            }
        }
    }
    flush_cjk(&mut cjk_run, &mut tokens);
    if let Some(start) = word_start {
        push(&mut tokens, text, start, text.len());
    }
    tokens
}

impl Tokenizer for MixedTokenizer {
    type TokenStream<'a> = MixedTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> MixedTokenStream {
        MixedTokenStream { tokens: tokenize(text), next: 0, current: Token::default() }
    }
}

impl TokenStream for MixedTokenStream {
    fn advance(&mut self) -> bool {
        match self.tokens.get_mut(self.next) {
            Some(token) => {
                self.current = std::mem::take(token);
                self.next += 1;
                true
            }
            None => false,
        }
    }

    fn token(&self) -> &Token {
        &self.current
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        tokenize(s).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn latin_text_splits_into_words_with_offsets() {
        let tokens = tokenize("Non-compete: 2 years.");
        let words: Vec<&str> = tokens.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(words, ["Non", "compete", "2", "years"]);
        assert_eq!((tokens[1].offset_from, tokens[1].offset_to), (4, 11));
        assert_eq!(tokens.iter().map(|t| t.position).collect::<Vec<_>>(), [0, 1, 2, 3]);
    }

    #[test]
    fn chinese_becomes_overlapping_bigrams_and_mixes_with_words() {
        assert_eq!(texts("比特币系统"), ["比特", "特币", "币系", "系统"]);
        assert_eq!(texts("电子现金 P2P 网络"), ["电子", "子现", "现金", "P2P", "网络"]);
        assert_eq!(texts("A币B"), ["A", "币", "B"]);
    }
}
