//! The answer format the model is constrained to: evidence first. Every line starts with the
//! marker of an existing segment, then one sentence drawn from the document's characters. A
//! refusal line, where a caller allows one, is only reachable after a marker; docent's own
//! prompts allow none and decide a refusal from the evidence (pipeline::answer).

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
        let mut out = String::from("[");
        let mut chars = self.0.iter().copied().filter(|c| !except.contains(*c)).peekable();
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

/// The shape an answer must take: one claim per line, each line opening with the marker of an
/// existing segment (`labels`), so the model *cannot* cite a segment that does not exist, and
/// it commits to the evidence before it writes the claim. The claim is one sentence of words
/// joined by single spaces (no runs of padding, no brackets), drawn from `alphabet`, of at most
/// `MAX_CLAIM_WORDS` words (a claim is a short sentence, not a copy of a long clause: answers
/// cost what they write). One
/// citation per claim: given room for more, small models fill it with padding. `refusal` is the
/// one line that may follow a marker instead of a claim, and then ends the answer: a question
/// is declined only after the model has pointed at the segment that comes closest.
pub fn answer_regex(labels: &[u32], max_sentences: usize, refusal: Option<&str>) -> String {
    answer_regex_in(labels, max_sentences, refusal, &Alphabet::any())
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

/// `answer_regex` with claims drawn from `alphabet`.
pub fn answer_regex_in(labels: &[u32], max_sentences: usize, refusal: Option<&str>, alphabet: &Alphabet) -> String {
    let (id, body) = marker_and_word(labels, alphabet);
    let lines = if max_sentences <= 1 {
        line_regex_in(labels, MAX_CLAIM_WORDS, alphabet)
    } else {
        let line = format!("{id}(?:{body} ){{2,{}}}{body}[.!?]\\n", MAX_SUMMARY_CLAIM_WORDS - 1);
        format!("(?:{line}){{1,{max_sentences}}}")
    };
    match refusal {
        Some(r) => format!("(?:{id}{}\\n|{lines})", regex_escape(r)),
        None => lines,
    }
}

/// One line of the answer format: a marker of `labels`, then one claim of 3 to `max_words`
/// words drawn from `alphabet`. Its line break is optional, so the model may end its turn right
/// after the claim's final stop (llama.cpp's grammar ends on any of the model's end-of-turn
/// tokens); forced to write the break first, it ran on instead.
pub fn line_regex_in(labels: &[u32], max_words: usize, alphabet: &Alphabet) -> String {
    let (id, body) = marker_and_word(labels, alphabet);
    format!("{id}(?:{body} ){{2,{}}}{body}[.!?]\\n?", max_words.max(3) - 1)
}

/// The regex of a line's opening marker (with its space) and of one word of a claim.
fn marker_and_word(labels: &[u32], alphabet: &Alphabet) -> (String, String) {
    let alternatives: Vec<String> = labels.iter().map(u32::to_string).collect();
    let id = format!("\\[S(?:{})\\] ", alternatives.join("|"));
    // A claim is one sentence: no word but the last may end in . ! or ?, and the last must. A
    // full stop inside a word only before a digit ("3.5"): a small model otherwise runs on past
    // the sentence's end without a space ("California.The.document.does.not.say.").
    // At most two such stops in a word ("12.3.4"): allowed any number, the 0.5B model, wanting to
    // end its turn after a number's full stop, wrote "8590.0.0.0.0…" to the token limit.
    let letter = alphabet.class(".!?");
    (id, format!("{letter}{{1,40}}(?:\\.[0-9]{letter}{{0,12}}){{0,2}}"))
}

pub(crate) fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(re: &str) -> regex::Regex {
        // The bounded repetitions make a large NFA for the regex crate; llguidance compiles
        // it lazily by derivatives, so only this check needs the room.
        regex::RegexBuilder::new(&format!("^(?:{re})$")).size_limit(1 << 30).build().unwrap()
    }

    #[test]
    fn lines_open_with_an_existing_marker_and_hold_one_sentence() {
        let re = compiled(&answer_regex(&[1, 2, 3, 12], 3, None));
        assert!(re.is_match("[S3] Bitcoin is a peer-to-peer cash system.\n"));
        assert!(re.is_match("[S2] One line here.\n[S12] Another line here.\n"));
        assert!(!re.is_match("Bitcoin is a peer-to-peer cash system. [S3]\n"), "the marker comes first");
        assert!(!re.is_match("[S4] Bitcoin is a peer-to-peer cash system.\n"), "4 labels no segment");
        assert!(!re.is_match("[S1][S3] Bitcoin is a peer-to-peer cash system.\n"), "one citation a claim");
        assert!(!re.is_match("Bitcoin is a peer-to-peer cash system.\n"));
        assert!(!re.is_match("[S13] Bitcoin is a peer-to-peer cash system.\n"));
        assert!(!re.is_match("[S1] Padded      with spaces.\n"));
        assert!(!re.is_match("[S1] Two sentences here. Then more.\n"), "one claim per line");
        assert!(!re.is_match("[S1] No final stop here\n"));
        assert!(re.is_match("[S1] The fee is 3.5 percent.\n"));
        assert!(!re.is_match("[S1] It is governed by California.The.document.does.not.say.\n"));
        assert!(!re.is_match("[S1] It lasts twelve months..\n"));
        assert!(re.is_match("[S1] Section 12.3.4 applies here.\n"));
        assert!(!re.is_match("[S1] The door code is 8590.0.0.0.\n"), "a number's stops run on");
        assert!(!re.is_match("[S2] One line here.[S12] Another line here.\n"), "lines are broken");
        let one = compiled(&answer_regex(&[1, 3], 1, None));
        assert!(one.is_match("[S3] Bitcoin is a peer-to-peer cash system."), "a one-line answer may end the turn");
        assert!(one.is_match("[S3] Bitcoin is a peer-to-peer cash system.\n"));
        assert!(!one.is_match("[S1] One line here.\n[S3] Another line here.\n"), "one line");
        let long = format!("[S1] {}end.\n", "word ".repeat(30));
        assert!(re.is_match(&long) && !one.is_match(&long), "a one-line answer holds 25 words at most");
        let point = compiled(&line_regex_in(&[1, 3], MAX_SUMMARY_CLAIM_WORDS, &Alphabet::any()));
        assert!(point.is_match(&long), "a summary's point holds 60");
        assert!(!point.is_match(&format!("[S1] {}end.\n", "word ".repeat(60))));
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
    fn the_refusal_comes_only_after_a_marker_and_ends_the_answer() {
        let refusal = "The document does not say.";
        let re = compiled(&answer_regex(&[5, 7], 3, Some(refusal)));
        assert!(re.is_match("[S5] The document does not say.\n"));
        assert!(!re.is_match("The document does not say.\n"), "declined before pointing at evidence");
        assert!(re.is_match("[S7] The code is 4817 today.\n"));
    }

    #[test]
    fn claims_use_only_the_characters_of_the_document() {
        let alphabet = Alphabet::of(&["Governed by the laws of Texas; all in all."]);
        let re = compiled(&answer_regex_in(&[4], 2, None, &alphabet));
        assert!(re.is_match("[S4] The laws of Texas govern it.\n"));
        assert!(re.is_match("[S4] Zoning rules 12 apply here.\n"), "ASCII letters and digits always");
        assert!(!re.is_match("[S4] The laws of Texas govern all in比例.\n"));
        assert!(!re.is_match("[S4] The laws govern all&bbsp;in all.\n"), "& is not in the document");
        let chinese = Alphabet::of(&["比特币是一种电子现金。"]);
        assert!(compiled(&answer_regex_in(&[4], 1, None, &chinese)).is_match("[S4] 比特币 是 电子现金.\n"));
        assert!(!compiled(&answer_regex_in(&[4], 1, None, &chinese)).is_match("[S4] 比特币 是 電子現金.\n"));
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
