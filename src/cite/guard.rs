//! Guards against degenerate lines a small model writes even in the constrained format: a
//! claim it already made, a line that restates the prompt (its format example, the
//! instruction's words, the refusal) instead of the document, a label echoed from the
//! instruction ("Main points: …"), an outline number it made up ("A.1.1 …"), characters no
//! script of the document uses, and a line that stutters ("3.3.3 3.3.3 3.3.3 …").

use std::collections::HashSet;

use super::format::Alphabet;
use super::support::{content_words, missing_numbers};
use crate::domain::Segment;

/// What the model was told, so that a line repeating it rather than the document is found.
pub struct Echoes {
    /// Content words of the system prompt's example and the task's instruction.
    words: HashSet<String>,
    refusal: Option<String>,
}

impl Echoes {
    /// `prompt_texts`: the format example and the instruction (not the question: an answer
    /// rightly repeats its words).
    pub fn new(prompt_texts: &[&str], refusal: Option<&str>) -> Self {
        Self { words: prompt_texts.iter().flat_map(|t| content_words(t)).collect(), refusal: refusal.map(str::to_owned) }
    }

    /// Whether `claim` says what the prompt says rather than what its cited `span` says: at
    /// least two of its content words, and at least 40% of them, come from the prompt and not
    /// from the span. ("The agreement starts on May 20, 1992, and lasts two years", from an
    /// example "…starts on 1 May 2020 and lasts two years", against a span that neither starts
    /// nor lasts anything.)
    fn echoes_prompt(&self, claim: &str, span: &str) -> bool {
        let claim_words = content_words(claim);
        let span_words = content_words(span);
        let echoed = claim_words.iter().filter(|w| self.words.contains(*w) && !span_words.contains(*w)).count();
        echoed >= 2 && echoed * 5 >= claim_words.len() * 2
    }
}

/// Whether `claim` is the refusal, or a sentence built around it ("The document does not say
/// anything about the term."), which is no claim about the document whatever it cites.
pub fn is_refusal_like(claim: &str, refusal: &str) -> bool {
    let norm = |s: &str| {
        s.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
    };
    let (claim, refusal) = (norm(claim), norm(refusal));
    let core = refusal.strip_prefix("the document ").unwrap_or(&refusal);
    !refusal.is_empty() && (claim.starts_with(&refusal) || claim.contains(core))
}

/// A claim without a leading label the instruction used ("Main points:", "Conclusion:",
/// "Purpose:"): the label is the prompt's word, not the document's.
pub fn strip_label(claim: &str, echoes: &Echoes) -> String {
    if let Some((head, rest)) = claim.split_once(':') {
        let words: Vec<&str> = head.split_whitespace().collect();
        let labelled = !words.is_empty()
            && words.len() <= 3
            && content_words(head).iter().all(|w| echoes.words.contains(w) || LABELS.contains(&w.as_str()));
        if labelled && rest.trim().chars().next().is_some_and(char::is_alphanumeric) {
            return rest.trim().to_owned();
        }
    }
    claim.to_owned()
}

/// A claim without the outline numbers it opens with that its cited `span` does not state
/// ("A.1.1 AGI hereby grants…", "B.3.0000000000000 - Either Party may…", "Texas.276.27627 The
/// agreement is governed…", quoting "A. AGI hereby grants…"): the model copies the segment's
/// enumerator and makes up the rest, and the number is no claim about the document. Only what
/// reads as an enumerator before a sentence is taken: a word of pieces joined by dots, led by
/// letters or of three pieces or more, with a digit, before a capital or a dash. A number that
/// may be a claim's ("2.5 percent", "13.1 The seller…", "A.3.3 years") stays, for verification
/// to check; a line of nothing else, or nothing else but a stray letter, is left as it is.
pub fn strip_outline(claim: &str, span: &str) -> String {
    let mut rest = claim.trim_start();
    while let Some((word, after)) = rest.split_once(char::is_whitespace) {
        let next = after.trim_start().chars().next();
        let starts_sentence = next.is_some_and(|c| c.is_uppercase() || matches!(c, '-' | '–'));
        if !starts_sentence || !is_outline(word) || missing_numbers(word, span).is_empty() {
            break;
        }
        rest = after.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '-' | '–' | ':' | ';' | ','));
    }
    // "F.1.5 F.1.5 … F" is a loop, not enumerators before an "F": left for the stutter check.
    if content_words(rest).iter().any(|w| w.chars().any(char::is_alphabetic)) {
        rest.to_owned()
    } else {
        claim.to_owned()
    }
}

/// Whether `word` reads as an outline number: letters and digits in pieces joined by dots, with
/// a digit, led by letters ("A.1.1", "C.0", "Texas.276.27") or of three pieces or more ("3.3.3",
/// "5.0.005"), a colon after it aside.
fn is_outline(word: &str) -> bool {
    let pieces: Vec<&str> = word.trim_end_matches(':').split('.').collect();
    let alphanumeric = pieces.iter().all(|p| !p.is_empty() && p.chars().all(char::is_alphanumeric));
    let lettered = pieces.first().is_some_and(|p| p.chars().all(char::is_alphabetic));
    alphanumeric && word.chars().any(|c| c.is_ascii_digit()) && (lettered || pieces.len() >= 3)
}

/// Labels a small model puts before a summary's lines, stemmed as `content_words` stems them.
const LABELS: &[&str] = &["summary", "purpose", "main", "point", "conclusion", "answer", "claim", "evidence", "note"];

/// Why a line was dropped, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    Repeated,
    EchoesPrompt,
    Refusal,
    ForeignCharacters,
    Stutter,
}

/// Keep the lines that are claims about the document: labels and made-up outline numbers
/// stripped; repeated claims, prompt echoes, refusals written as claims, lines with characters
/// outside `alphabet` and stuttering lines dropped. Each line's first cited segment is the span
/// it is checked against. Returns the kept lines and what was dropped.
pub fn guard(
    parsed: Vec<(String, Vec<u32>)>,
    text: &str,
    segments: &[Segment],
    echoes: &Echoes,
    alphabet: &Alphabet,
) -> (Vec<(String, Vec<u32>)>, Vec<Dropped>) {
    let mut kept: Vec<(String, Vec<u32>)> = Vec::new();
    let mut seen: Vec<HashSet<String>> = Vec::new();
    let mut dropped = Vec::new();
    for (claim, ids) in parsed {
        let span = ids
            .first()
            .and_then(|id| segments.iter().find(|s| s.id == *id))
            .and_then(|s| s.span.slice(text))
            .unwrap_or_default();
        let claim = strip_outline(&strip_label(&claim, echoes), span);
        let words = content_words(&claim);
        let verdict = if echoes.refusal.as_deref().is_some_and(|r| is_refusal_like(&claim, r)) {
            Some(Dropped::Refusal)
        } else if !claim.chars().filter(|c| !c.is_whitespace()).all(|c| alphabet.allows(c)) {
            Some(Dropped::ForeignCharacters)
        } else if stutters(&claim, span) {
            Some(Dropped::Stutter)
        } else if seen.iter().any(|s| jaccard(s, &words) >= 0.8) {
            Some(Dropped::Repeated)
        } else if echoes.echoes_prompt(&claim, span) {
            Some(Dropped::EchoesPrompt)
        } else {
            None
        };
        match verdict {
            Some(why) => dropped.push(why),
            None => {
                seen.push(words);
                kept.push((space_run_on(&claim, span), ids));
            }
        }
    }
    (kept, dropped)
}

/// What may close a word before the next (or the claim's end), left off when words are compared.
const CLOSING: [char; 6] = ['.', '!', '?', ',', ';', ':'];

/// A claim whose last word runs words of its cited `span` together without spaces, spaced as the
/// span spaces them: "…BY THE LAWS OF THE STATEOFTEXAS,WITHOUTREGARDTOTHEDOCTRINES." becomes "…OF
/// THE STATE OF TEXAS, WITHOUT REGARD TO THE DOCTRINES.". Where the run leaves the span (a word
/// skipped, one cut short), the claim ends after the last of the span's words it spelled out
/// whole, with "…": "…for the use withinthe-state,includingbutnotlimitedto." becomes "…for the
/// use within the State …". The line grammar ends a claim at its word limit, and a model still
/// copying a long clause when it gets there goes on without spaces until a word may end the line:
/// on the 64 CUAD items the 0.5B model ended 7 of its answers so and the 1.5B 10, both with one
/// contract's governing law inside such a run ("STATEOFTEXAS"; docs/eval-issue21). Only a last
/// word of 12 characters or more in Latin script that the span does not hold, and whose letters
/// spell two of the span's words in a row or more, is changed.
pub fn space_run_on(claim: &str, span: &str) -> String {
    let Some((head, last)) = claim.trim_end().rsplit_once(' ') else { return claim.to_owned() };
    let stop = last.chars().last().filter(|c| matches!(c, '.' | '!' | '?'));
    let word = last.trim_end_matches(CLOSING);
    let fold = |w: &str| w.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>();
    let spoken: Vec<(&str, String)> = span.split_whitespace().map(|w| (w, fold(w))).collect();
    let run = fold(word);
    if word.chars().count() < 12 || !word.is_ascii() || head.trim().is_empty() || spoken.iter().any(|(_, f)| *f == run)
    {
        return claim.to_owned();
    }
    // The place in the span whose words, in order, spell the longest start of the run.
    let spelled = |from: usize| {
        let (mut at, mut whole) = (0, 0);
        for (_, folded) in &spoken[from..] {
            if !run[at..].starts_with(folded.as_str()) {
                break;
            }
            at += folded.len();
            whole += 1;
        }
        (whole, at)
    };
    let best = (0..spoken.len())
        .filter(|&i| !spoken[i].1.is_empty())
        .map(|i| (i, spelled(i)))
        .max_by_key(|&(i, (whole, _))| (whole, std::cmp::Reverse(i)));
    let Some((from, (whole, at))) = best.filter(|(_, (whole, _))| *whole >= 2) else { return claim.to_owned() };
    let words: Vec<&str> = spoken[from..from + whole].iter().map(|(w, _)| *w).collect();
    let spaced = words.join(" ");
    let spaced = spaced.trim_end_matches(CLOSING);
    if at == run.len() {
        format!("{} {spaced}{}", head.trim_end(), stop.unwrap_or('.'))
    } else {
        format!("{} {spaced} …", head.trim_end())
    }
}

/// Whether `claim` stutters where its cited `span` does not: one to four words said three times
/// in a row ("3.3.3 3.3.3 3.3.3", "the Company the Company the Company"), or a word of one piece
/// three times over ("13.13.13"). A model caught in a loop writes to its word limit; the line
/// says nothing, whatever its span.
fn stutters(claim: &str, span: &str) -> bool {
    fn words_of(text: &str) -> Vec<&str> {
        text.split_whitespace().map(|w| w.trim_end_matches(['.', ',', ';', '!', '?'])).collect()
    }
    let (words, spoken) = (words_of(claim), words_of(span));
    let in_span = |run: &[&str]| spoken.windows(run.len()).any(|w| w == run);
    let looped = (1..=4).any(|n| {
        words.windows(3 * n).any(|run| {
            let (a, rest) = run.split_at(n);
            let (b, c) = rest.split_at(n);
            a == b && b == c && !in_span(run)
        })
    });
    looped
        || words.iter().any(|w| {
            let pieces: Vec<&str> = w.split('.').collect();
            pieces.len() >= 3
                && pieces.windows(2).all(|p| matches!(p, [x, y] if x == y && !x.is_empty()))
                && !in_span(&[w])
        })
}

/// Shared content words over all content words; two empty sets are the same claim.
fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f32 {
    let union = a.union(b).count();
    if union == 0 {
        return 1.0;
    }
    a.intersection(b).count() as f32 / union as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFUSAL: &str = "The document does not say.";
    const TEXT: &str = "This Agreement is effective May 20, 1992 between the parties. \
                        It is governed by the laws of the State of Kentucky. \
                        Either party may terminate it on sixty (60) days notice.";

    fn segments() -> Vec<Segment> {
        crate::cite::one_page(TEXT)
    }

    fn echoes() -> Echoes {
        Echoes::new(
            &[
                "The agreement starts on 1 May 2020 and lasts two years.",
                "Summarize the document in three to five lines: its purpose, its main points and its conclusion.",
            ],
            Some(REFUSAL),
        )
    }

    fn run(lines: &[(&str, u32)]) -> (Vec<String>, Vec<Dropped>) {
        let parsed = lines.iter().map(|(c, id)| ((*c).to_owned(), vec![*id])).collect();
        let (kept, dropped) = guard(parsed, TEXT, &segments(), &echoes(), &Alphabet::of(&[TEXT, ":"]));
        (kept.into_iter().map(|(c, _)| c).collect(), dropped)
    }

    #[test]
    fn a_last_word_of_words_run_together_is_spaced_as_its_span() {
        // From the CUAD sample's answers (docs/eval-issue21): the whole run is the span's words.
        let span = "THIS AGREEMENT SHALL BE GOVERNED BY THE LAWS OF THE STATE OF TEXAS, WITHOUT REGARD TO THE \
                    DOCTRINES OF CONFLICTS OF LAW.";
        assert_eq!(
            space_run_on(
                "THIS AGREEMENT SHALL BE GOVERNED BY THE LAWS OF THE STATEOFTEXAS,WITHOUTREGARDTOTHEDOCTRINES.",
                span
            ),
            "THIS AGREEMENT SHALL BE GOVERNED BY THE LAWS OF THE STATE OF TEXAS, WITHOUT REGARD TO THE DOCTRINES."
        );
        // The run leaves the span ("of Illinois" skipped): cut after the words it spelled whole.
        // The 0.5B model's answer through `docent serve` to a governing-law question on a contract
        // without such a clause (its citation verified).
        let span = "The Distributor desires to become a distributor for the Company and to develop demand for \
                    and sell and distribute Products solely for the use within the State of Illinois, including \
                    but not limited to public and private entities.";
        let claim = "The Distributor desires to become a distributor for the Company and to develop demand for \
                     and sell and distribute Products solely for the use withinthe-state,includingbutnotlimitedto.";
        assert_eq!(
            space_run_on(claim, span),
            "The Distributor desires to become a distributor for the Company and to develop demand for \
             and sell and distribute Products solely for the use within the State …"
        );
        // A word cut short at the end ("agre") is left out.
        let span = "This Agreement shall continue until terminated by mutual agreement of the parties.";
        assert_eq!(
            space_run_on("This Agreement (shallcontinueuntilterminatedbymutualagre.", span),
            "This Agreement shall continue until terminated by mutual …"
        );
        // Left as written: a long word the span holds, one that spells no run of its words, a
        // run of one word, a claim of one word, and text in a script without spaces.
        let span = "The parties shall comply with all telecommunications regulations and with each other.";
        for claim in [
            "The parties comply with telecommunications regulations.",
            "The parties comply with internationalisation rules.",
            "The parties comply with telecommunicationsrules.",
            "Telecommunicationsregulations.",
            "双方应遵守所有电信法规以及彼此之间的约定。",
        ] {
            assert_eq!(space_run_on(claim, span), claim);
        }
        // Through the guard, as every answer line goes.
        let (kept, dropped) = run(&[("It is governed by the laws of the StateofKentucky.", 2)]);
        assert_eq!((kept, dropped), (vec!["It is governed by the laws of the State of Kentucky.".to_owned()], vec![]));
    }

    #[test]
    fn a_copy_of_the_format_example_is_dropped_but_a_claim_from_the_span_is_kept() {
        let (kept, dropped) = run(&[
            ("The agreement starts on May 20, 1992, and lasts two years.", 1),
            ("The agreement is effective May 20, 1992.", 1),
        ]);
        assert_eq!(kept, vec!["The agreement is effective May 20, 1992."]);
        assert_eq!(dropped, vec![Dropped::EchoesPrompt]);
    }

    #[test]
    fn repeated_claims_and_refusals_written_as_claims_are_dropped() {
        let (kept, dropped) = run(&[
            ("The laws of Kentucky govern it.", 2),
            ("The document does not say.", 3),
            ("It is governed by the laws of Kentucky.", 2),
            ("The laws of Kentucky govern it.", 2),
            ("The document does not say anything about notice.", 3),
        ]);
        assert_eq!(kept, vec!["The laws of Kentucky govern it."]);
        assert_eq!(dropped, vec![Dropped::Refusal, Dropped::Repeated, Dropped::Repeated, Dropped::Refusal]);
    }

    #[test]
    fn labels_from_the_instruction_are_stripped_and_foreign_characters_dropped() {
        let (kept, dropped) = run(&[
            ("Main points: Either party may terminate it on sixty days notice.", 3),
            ("Conclusion: It is governed by Kentucky law all&bbsp;in比例.", 2),
            ("Kentucky: its laws govern the agreement.", 2),
        ]);
        assert_eq!(
            kept,
            vec!["Either party may terminate it on sixty days notice.", "Kentucky: its laws govern the agreement."]
        );
        assert_eq!(dropped, vec![Dropped::ForeignCharacters]);
    }

    #[test]
    fn a_stuttering_line_is_dropped_unless_its_span_says_it_so() {
        let (kept, dropped) = run(&[
            ("3.3.3 3.3.3 3.3.3 3.3.3 3.3.3 3.3.3.", 2),
            ("It is governed by the laws of the laws of the laws of Kentucky.", 2),
            ("The State 13.13.13 governs it.", 2),
            ("Either party may terminate it on sixty (60) days notice.", 3),
            ("It is very very very long.", 1),
        ]);
        assert_eq!(kept, vec!["Either party may terminate it on sixty (60) days notice."]);
        assert_eq!(dropped, vec![Dropped::Stutter; 4]);
        let text = "Section 1.1.1 applies. The fee is 2 2 2 dollars. It is very very very long.";
        let segments = crate::cite::one_page(text);
        let parsed = vec![("The fee is 2 2 2 dollars.".to_owned(), vec![segments[1].id])];
        let (kept, _) = guard(parsed, text, &segments, &echoes(), &Alphabet::of(&[text]));
        assert_eq!(kept.len(), 1, "the span stutters itself");
    }

    #[test]
    fn an_outline_number_the_span_does_not_state_is_stripped() {
        let text = "A. The term is five years.\n\n13.1 The seller ships the goods.";
        let segments = crate::cite::one_page(text);
        let (a, b) = (segments[0].id, segments[1].id);
        let parsed = vec![
            ("A.1.1 The term is five years.".to_owned(), vec![a]),
            ("B.3.0000000000000 - The term of the agreement is 5 years.".to_owned(), vec![a]),
            ("13.1 The seller ships the goods.".to_owned(), vec![b]),
            ("3.3.3 3.3.3 3.3.3".to_owned(), vec![a]),
            ("F.1.5 F.1.5 F.1.5 F.1.5 F".to_owned(), vec![a]),
            ("A.3.3 years is the term.".to_owned(), vec![a]),
            ("2.5 The seller ships the goods.".to_owned(), vec![b]),
        ];
        let (kept, dropped) = guard(parsed, text, &segments, &echoes(), &Alphabet::of(&[text, "-"]));
        let kept: Vec<&str> = kept.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(
            kept,
            [
                "The term is five years.",
                "The term of the agreement is 5 years.",
                "13.1 The seller ships the goods.",
                "A.3.3 years is the term.",
                "2.5 The seller ships the goods."
            ],
            "a number that may be the claim's stays for verification to check"
        );
        assert_eq!(dropped, vec![Dropped::Stutter; 2], "a line of outline numbers alone is left to the other guards");
    }

    #[test]
    fn a_line_of_the_instructions_words_is_dropped() {
        let (kept, dropped) = run(&[("Summarize the main points in three to five lines.", 1)]);
        assert!(kept.is_empty());
        assert_eq!(dropped, vec![Dropped::EchoesPrompt]);
    }
}
