//! The answer format the model is constrained to: evidence first. The evidence is markers of
//! existing segments alone; each claim is then one line that starts with the marker of a quoted
//! segment, then one sentence drawn from the document's characters. No refusal is offered: the
//! pipeline decides a refusal from the evidence (pipeline::answer).

use std::collections::BTreeSet;

/// The most words a one-line answer's claim (a question's) may have. Claims copied from a
/// contract's long clause ran to 60 words, most of an answer's tokens; the sentence that
/// supports a claim is shorter.
pub const MAX_CLAIM_WORDS: usize = 25;
/// The most words a claim of a longer answer (a summary's point) may have. Capped at 25 words,
/// the 0.5B model glued a summary sentence's last words together ("financialinstitution",
/// "causetobeproducedoranyproductor") to finish it.
pub const MAX_SUMMARY_CLAIM_WORDS: usize = 60;

/// A segment's marker, `[S4111]`: printed before the segment in the prompt and written before a
/// claim in the answer.
pub fn marker(id: u32) -> String {
    format!("[S{id}]")
}

/// The characters a claim may use: those of the document (and the question), never whitespace
/// or brackets, plus ASCII letters and digits. A small model otherwise drifts into characters
/// of no script the document uses ("all&bbsp;in比例" in an English contract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alphabet(BTreeSet<char>);

impl Alphabet {
    /// The characters of `texts`, with ASCII letters and digits and the sentence ends.
    pub fn of(texts: &[&str]) -> Self {
        let mut chars: BTreeSet<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').chain(".,".chars()).collect();
        for text in texts {
            chars.extend(text.chars().filter(|c| !c.is_whitespace() && !c.is_control()));
        }
        chars.remove(&'[');
        chars.remove(&']');
        Self(chars)
    }

    /// Any character but whitespace and brackets (an answer without a document to draw from).
    pub fn any() -> Self {
        Self(BTreeSet::new())
    }

    pub fn allows(&self, c: char) -> bool {
        if self.0.is_empty() {
            return !c.is_whitespace() && c != '[' && c != ']';
        }
        self.0.contains(&c)
    }

    /// A regex class of these characters without those in `except`, as ranges of consecutive
    /// code points (a Chinese document's thousands of characters stay a short class).
    fn class(&self, except: &str) -> String {
        if self.0.is_empty() {
            return format!("[^\\s\\[\\]{}]", class_escape_all(except));
        }
        self.ranges(|c| !except.contains(c))
    }

    /// The class a claim's first character is drawn from: the letters of these characters and
    /// the opening quotes and parenthesis, not digits or other punctuation.
    fn opening_class(&self) -> String {
        if self.0.is_empty() {
            return format!("[^\\s\\[\\]{}]", class_escape_all("0123456789.,;:!?)}-"));
        }
        self.ranges(|c| c.is_alphabetic() || OPENERS.contains(c))
    }

    fn ranges(&self, keep: impl Fn(char) -> bool) -> String {
        let mut out = String::from("[");
        let mut chars = self.0.iter().copied().filter(|c| keep(*c)).peekable();
        while let Some(lo) = chars.next() {
            let mut hi = lo;
            while let Some(&next) = chars.peek() {
                if u32::from(next) != u32::from(hi) + 1 {
                    break;
                }
                hi = next;
                chars.next();
            }
            out.push_str(&class_escape(lo));
            if hi != lo {
                if u32::from(hi) > u32::from(lo) + 1 {
                    out.push('-');
                }
                out.push_str(&class_escape(hi));
            }
        }
        out.push(']');
        out
    }
}

/// Punctuation a claim may open with: a quoted term or a bracketed item, as "(a) Either party".
const OPENERS: &str = "\"'(“‘";

fn class_escape(c: char) -> String {
    if "\\[]^-".contains(c) {
        format!("\\{c}")
    } else {
        c.to_string()
    }
}

fn class_escape_all(s: &str) -> String {
    s.chars().map(class_escape).collect()
}

/// One marker of an existing segment (`labels`) and nothing else: the evidence a question's
/// answer commits to before any claim is written.
pub fn marker_regex(labels: &[u32]) -> String {
    let alternatives: Vec<String> = labels.iter().map(u32::to_string).collect();
    format!("\\[S(?:{})\\]", alternatives.join("|"))
}

/// `min` to `max` markers of existing segments (`labels`), one a line, and nothing else: the
/// evidence a summary commits to before any of its lines is written.
pub fn markers_regex(labels: &[u32], min: usize, max: usize) -> String {
    let one = marker_regex(labels);
    format!("{one}(?:\\n{one}){{{},{}}}\\n?", min.saturating_sub(1), max.saturating_sub(1))
}

/// One line of the answer format: the marker of one of `labels` (the quoted segments), then one
/// claim, a sentence of 3 to `max_words` words drawn from `alphabet`. Its line break is
/// optional, so the model may end its turn right after the claim's final stop (llama.cpp's
/// grammar ends on any of the model's end-of-turn tokens); forced to write the break first, it
/// ran on instead.
///
/// The claim opens with a letter or an opening quote or bracket, not a digit or a stop: copying
/// a quoted clause, the 0.5B model began with its number and stuttered on it ("3.3.3 3.3.3 …"
/// to the word limit, "13.13.13 The laws of the State of Texas.").
pub fn line_regex_in(labels: &[u32], max_words: usize, alphabet: &Alphabet) -> String {
    let alternatives: Vec<String> = labels.iter().map(u32::to_string).collect();
    let id = format!("\\[S(?:{})\\] ", alternatives.join("|"));
    // A claim is one sentence: no word but the last may end in . ! or ?, and the last must. A
    // full stop inside a word only before a digit ("3.5"): a small model otherwise runs on past
    // the sentence's end without a space ("California.The.document.does.not.say.").
    // At most two such stops in a word ("12.3.4"): allowed any number, the 0.5B model, wanting to
    // end its turn after a number's full stop, wrote "8590.0.0.0.0…" to the token limit.
    let letter = alphabet.class(".!?");
    let stops = format!("(?:\\.[0-9]{letter}{{0,12}}){{0,2}}");
    let word = format!("{letter}{{1,40}}{stops}");
    let first = format!("{}{letter}{{0,39}}{stops}", alphabet.opening_class());
    format!("{id}{first}(?: {word}){{2,{}}}[.!?]\\n?", max_words.max(3) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(re: &str) -> regex::Regex {
        // The bounded repetitions make a large NFA for the regex crate; llguidance compiles
        // it lazily by derivatives, so only this check needs the room.
        regex::RegexBuilder::new(&format!("^(?:{re})$")).size_limit(1 << 30).build().unwrap()
    }

    fn line(labels: &[u32]) -> regex::Regex {
        compiled(&line_regex_in(labels, MAX_CLAIM_WORDS, &Alphabet::any()))
    }

    #[test]
    fn a_line_opens_with_an_existing_marker_and_holds_one_sentence() {
        let re = line(&[1, 2, 3, 12]);
        assert!(re.is_match("[S3] Bitcoin is a peer-to-peer cash system.\n"));
        assert!(re.is_match("[S3] Bitcoin is a peer-to-peer cash system."), "a line may end the turn");
        assert!(!re.is_match("Bitcoin is a peer-to-peer cash system. [S3]\n"), "the marker comes first");
        assert!(!re.is_match("[S4] Bitcoin is a peer-to-peer cash system.\n"), "4 labels no segment");
        assert!(!re.is_match("[S1][S3] Bitcoin is a peer-to-peer cash system.\n"), "one citation a claim");
        assert!(!re.is_match("Bitcoin is a peer-to-peer cash system.\n"));
        assert!(!re.is_match("[S13] Bitcoin is a peer-to-peer cash system.\n"));
        assert!(!re.is_match("[S1] Padded      with spaces.\n"));
        assert!(!re.is_match("[S1] Two sentences here. Then more.\n"), "one claim per line");
        assert!(!re.is_match("[S1] No final stop here\n"));
        assert!(!re.is_match("[S1] Too short.\n"), "three words at least");
        assert!(re.is_match("[S1] The fee is 3.5 percent.\n"));
        assert!(!re.is_match("[S1] It is governed by California.The.document.does.not.say.\n"));
        assert!(!re.is_match("[S1] It lasts twelve months..\n"));
        assert!(re.is_match("[S1] Section 12.3.4 applies here.\n"));
        assert!(!re.is_match("[S1] The door code is 8590.0.0.0.\n"), "a number's stops run on");
        assert!(!re.is_match("[S2] One line here.\n[S12] Another line here.\n"), "one line");
        let long = format!("[S1] {}end.\n", "word ".repeat(30));
        assert!(!re.is_match(&long), "a question's claim holds 25 words at most");
        assert!(re.is_match(&format!("[S1] {}end.\n", "word ".repeat(24))));
        let point = compiled(&line_regex_in(&[1, 3], MAX_SUMMARY_CLAIM_WORDS, &Alphabet::any()));
        assert!(point.is_match(&long), "a summary's point holds 60");
        assert!(!point.is_match(&format!("[S1] {}end.\n", "word ".repeat(60))));
    }

    #[test]
    fn a_claim_opens_with_a_word_not_a_clause_number() {
        let of_text = Alphabet::of(&["3. This Agreement is governed by the laws of Texas (the \"State\")."]);
        for alphabet in [Alphabet::any(), of_text] {
            let re = compiled(&line_regex_in(&[8], MAX_CLAIM_WORDS, &alphabet));
            assert!(re.is_match("[S8] This Agreement is governed by Texas law.\n"));
            assert!(re.is_match("[S8] (a) Texas law governs this Agreement.\n"));
            assert!(re.is_match("[S8] \"State\" means the State of Texas.\n"));
            assert!(re.is_match("[S8] The laws of Texas, section 3.3, govern.\n"), "numbers after the opening");
            assert!(!re.is_match("[S8] 3.3.3 3.3.3 3.3.3 3.3.3.\n"), "{alphabet:?}");
            assert!(!re.is_match("[S8] 13.13.13 The laws of the State of Texas.\n"));
            assert!(!re.is_match("[S8] . The laws of Texas govern.\n"));
        }
    }

    #[test]
    fn a_summarys_evidence_is_markers_alone_one_a_line() {
        let re = compiled(&markers_regex(&[2, 7, 12], 3, 5));
        assert!(re.is_match("[S2]\n[S12]\n[S7]"));
        assert!(re.is_match("[S2]\n[S12]\n[S7]\n[S2]\n[S7]\n"));
        assert!(!re.is_match("[S2]\n[S12]"), "three at least");
        assert!(!re.is_match("[S2]\n[S12]\n[S7]\n[S2]\n[S7]\n[S12]"), "five at most");
        assert!(!re.is_match("[S2]\n[S3]\n[S7]"), "3 labels no segment");
        assert!(!re.is_match("[S2] The fee is due.\n[S12]\n[S7]"), "no claim yet");
        assert!(!re.is_match("[S2][S12][S7]"), "one a line");
        assert!(compiled(&markers_regex(&[2], 1, 3)).is_match("[S2]"));
    }

    #[test]
    fn claims_use_only_the_characters_of_the_document() {
        let alphabet = Alphabet::of(&["Governed by the laws of Texas; all in all."]);
        let re = compiled(&line_regex_in(&[4], MAX_CLAIM_WORDS, &alphabet));
        assert!(re.is_match("[S4] The laws of Texas govern it.\n"));
        assert!(re.is_match("[S4] Zoning rules 12 apply here.\n"), "ASCII letters and digits always");
        assert!(!re.is_match("[S4] The laws of Texas govern all in比例.\n"));
        assert!(!re.is_match("[S4] The laws govern all&bbsp;in all.\n"), "& is not in the document");
        let chinese = Alphabet::of(&["比特币是一种电子现金。"]);
        let re = compiled(&line_regex_in(&[4], MAX_CLAIM_WORDS, &chinese));
        assert!(re.is_match("[S4] 比特币 是 电子现金.\n"));
        assert!(!re.is_match("[S4] 比特币 是 電子現金.\n"));
        // Twenty thousand consecutive characters make one range, not a class of 60 KB.
        let block: String = ('一'..='龥').collect();
        assert!(Alphabet::of(&[&block]).class("").len() < 40, "{}", Alphabet::of(&[&block]).class(""));
    }

    #[test]
    fn alphabet_classes_escape_what_a_class_would_read_as_syntax() {
        let a = Alphabet::of(&["a-b ^c \\d"]);
        let class = a.class(".");
        let re = compiled(&format!("{class}+"));
        assert!(re.is_match("a-b^c\\d"));
        assert!(!re.is_match("a.b") && !re.is_match("a b"));
    }
}
