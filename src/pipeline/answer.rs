//! From the model's constrained output to claims with the segments they cite: the lines
//! parsed, labels mapped to segments, degenerate lines dropped, and, for a question, the
//! decision to answer or decline taken from the evidence the model pointed at first. Every task
//! is asked in two steps: the evidence (markers only), then each line with its evidence quoted
//! right before it (`ask` for a question, `summarize` for a summary).

use std::collections::HashSet;

use crate::cite::guard::{guard, Dropped};
use crate::cite::support::{check, content_words, Failure};
use crate::cite::{self, narrow};
use crate::domain::Segment;
use crate::llm::{self, Engine, GenOutput, GenRequest, Progress};

use super::prompt::{self, Step, REFUSAL};

/// A quote of evidence shorter than this many words (a heading, "7. Governing Law.") goes on
/// with the segments after it: the claim needs the sentence under a heading.
const QUOTE_MIN_WORDS: usize = 12;
/// Segments one quote holds at most.
const QUOTE_MAX_SEGMENTS: usize = 3;
/// Words of the question a segment the model did not point at must share with it to be quoted
/// instead of the model's off-topic pick. Quoted when it shared one ("right", "state",
/// "liability"), such a segment gave 10 of the 13 wrong answers of the 0.5B model to the CUAD
/// sample's absent clauses and no hit; the 3 hits that came from such a quote shared two or
/// three words (docs/eval-issue21).
const FALLBACK_MIN_WORDS: usize = 2;

/// The segments of the text a model is shown, as the prompt numbered them.
pub struct Shown<'a> {
    /// What the segments' spans index.
    pub text: &'a str,
    pub segments: &'a [Segment],
    pub labels: &'a [u32],
    /// The numbered text of the prompt (`cite::numbered_text`).
    pub numbered: &'a str,
}

impl Shown<'_> {
    /// The text of segment `i` (empty when there is none).
    fn body(&self, i: usize) -> &str {
        self.segments.get(i).and_then(|s| s.span.slice(self.text)).unwrap_or_default()
    }
}

/// Ask `step`'s question about `shown` in two requests on one prompt prefix. `first` (from
/// `prompt::request`) asks only for the marker of the segment that answers the question; the
/// second quotes that segment (with what follows it when it is a heading) right before the
/// answer line, which must cite a quoted segment. Asked in one line, the 0.5B model pointed at
/// the right segment and then wrote the sentence after it, which its citation did not support
/// (docs/eval-issue21). When the segment it points at shares no word with the question (asked
/// for a marker alone, it named the same segment for most questions on a contract), the
/// segment that shares the rarest words with the question is quoted instead (quoted together
/// with it, the model took whichever came first), if it shares at least `FALLBACK_MIN_WORDS`;
/// otherwise the question is declined without a second request. Of a quote's segments, the one
/// that shares most with the question comes first (`most_relevant_first`). Returns the claims,
/// decided as `claims` decides, and the outputs.
pub async fn ask(
    engine: &dyn Engine,
    shown: &Shown<'_>,
    step: &Step<'_>,
    first: GenRequest,
) -> anyhow::Result<(Vec<(String, Vec<u32>)>, Vec<GenOutput>)> {
    let evidence = without_text_progress(engine.generate(first)).await?;
    tracing::debug!(output = %evidence.text, "evidence");
    let question = step.question().unwrap_or_default();
    let picked = first_marker(&evidence.text)
        .and_then(|l| shown.labels.iter().position(|x| *x == l))
        .map(|at| quoted(shown.text, shown.segments, at));
    let asked = asked_words(question);
    let shared = |group: &Vec<usize>| {
        let words: HashSet<String> = group.iter().map(|&i| shown.body(i)).flat_map(content_words).collect();
        shared_words(&asked, &words)
    };
    let best = || lexical_best(question, shown.text, shown.segments).map(|at| quoted(shown.text, shown.segments, at));
    let group = match picked {
        // A question of no words but its framing ("Who are the parties?") gives nothing to check
        // its evidence by: the model's pick stands.
        Some(group) if asked.is_empty() || shared(&group) > 0 => group,
        // The model pointed at a segment about something else, or at none (an engine that ignores
        // the constraint): a segment the model did not choose is quoted only when it shares two
        // of the question's words, or all of them when it has fewer.
        _ => match best().filter(|group| shared(group) >= enough(&asked)) {
            Some(group) => group,
            None => return Ok((vec![(REFUSAL.to_owned(), Vec::new())], vec![evidence])),
        },
    };
    let group = most_relevant_first(question, shown, group);
    let (quote, quote_labels) = quote_of(shown, &group);
    let out = engine.generate(prompt::quoted_request(shown.numbered, &quote, &quote_labels, step, usize::MAX)).await?;
    tracing::debug!(output = %out.text, completion_tokens = out.completion_tokens, "model output");
    let (kept, dropped) = lines(&out.text, shown, step);
    // The refusal written as the line is the model's verdict on the evidence it was shown.
    let quote: &[usize] = if dropped.contains(&Dropped::Refusal) { &[] } else { &group };
    Ok((decide(question, kept, shown.segments, shown.text, quote), vec![evidence, out]))
}

/// The quote of the segments `group` (indices into `shown`): a line each, its marker first, as
/// the answer line opens, and their labels. Quoted as the document is numbered (the marker
/// after the text), the 0.5B model hit 11 of 23 present CUAD clauses; marker first, 14 of 23
/// (docs/eval-issue21).
fn quote_of(shown: &Shown<'_>, group: &[usize]) -> (String, Vec<u32>) {
    let quote: String = group
        .iter()
        .map(|&i| {
            let body = shown.body(i);
            let label = shown.labels.get(i).copied().unwrap_or_default();
            format!("{} {}\n", cite::marker(label), body.replace('\n', " "))
        })
        .collect();
    let quote_labels: Vec<u32> = group.iter().filter_map(|&i| shown.labels.get(i).copied()).collect();
    tracing::debug!(?quote_labels, %quote, "quoted evidence");
    (quote, quote_labels)
}

/// Summarise `shown` for `step` in two steps on one prompt prefix. `first` (from
/// `prompt::request`) asks only for the markers of the segments that state the summary's
/// points; then each point is written in its own request with its segment quoted right before
/// it (with what follows when it is a heading), as a question's answer is, in document order,
/// together in at most `max_tokens`. Written in one request, the 0.5B model's summary lines
/// mostly copied the segment after the one they cited, and failed verification
/// (docs/eval-issue21). Picking among claims already written (`Step::Claims`, map-reduce's
/// reduce) keeps the picked claims as they are. Returns the claims, each line checked as
/// `claims` checks a summary's, and every request's output.
pub async fn summarize(
    engine: &dyn Engine,
    shown: &Shown<'_>,
    step: &Step<'_>,
    first: GenRequest,
    max_tokens: usize,
) -> anyhow::Result<(Vec<(String, Vec<u32>)>, Vec<GenOutput>)> {
    let parts: Vec<Vec<u32>> = parts(shown, step)
        .iter()
        .map(|part| part.iter().filter_map(|&i| shown.labels.get(i).copied()).collect())
        .collect();
    let evidence = without_text_progress(engine.generate(prompt::one_from_each(first, &parts))).await?;
    tracing::debug!(output = %evidence.text, "evidence");
    let mut picked: Vec<usize> =
        markers(&evidence.text).filter_map(|l| shown.labels.iter().position(|x| *x == l)).collect();
    picked.sort_unstable();
    picked.dedup();
    if !only_markers(&evidence.text) || picked.is_empty() {
        // An engine that ignores the constraint (a server without constrained decoding) wrote
        // lines, not markers alone: read them as lines.
        let parsed = claims(&evidence.text, shown, step);
        return Ok((parsed, vec![evidence]));
    }
    if matches!(step, Step::Claims) {
        let kept = picked
            .iter()
            .filter_map(|&i| {
                let s = shown.segments.get(i)?;
                Some((s.span.slice(shown.text)?.trim().to_owned(), vec![s.id]))
            })
            .collect();
        return Ok((kept, vec![evidence]));
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for at in picked {
        if !groups.iter().any(|g| g.contains(&at)) {
            groups.push(quoted(shown.text, shown.segments, at));
        }
    }
    let mut left = max_tokens.saturating_sub(evidence.completion_tokens);
    let mut lines = String::new();
    let mut outputs = vec![evidence];
    for group in &groups {
        if left < MIN_LINE_TOKENS {
            break;
        }
        let (quote, quote_labels) = quote_of(shown, group);
        let out = engine.generate(prompt::quoted_request(shown.numbered, &quote, &quote_labels, step, left)).await?;
        tracing::debug!(output = %out.text, completion_tokens = out.completion_tokens, "model output");
        left = left.saturating_sub(out.completion_tokens);
        lines.push_str(out.text.trim_end());
        lines.push('\n');
        outputs.push(out);
    }
    Ok((claims(&lines, shown, step), outputs))
}

/// The indices of `shown`'s segments a summary's points may come from, cut into
/// `step.parts()` parts of the text by position (parts left empty dropped). The candidates are
/// the segments that state something (`states_a_point`), or all of them when fewer do than
/// there are parts; among claims already written (`Step::Claims`), every claim.
fn parts(shown: &Shown<'_>, step: &Step<'_>) -> Vec<Vec<usize>> {
    let all: Vec<usize> = (0..shown.segments.len()).collect();
    let stating: Vec<usize> = all.iter().copied().filter(|&i| states_a_point(shown.body(i))).collect();
    let n = step.parts().max(1);
    let candidates = if matches!(step, Step::Claims) || stating.len() < n { all } else { stating };
    let len = shown.text.len().max(1);
    let mut parts = vec![Vec::new(); n];
    for i in candidates {
        let start = shown.segments.get(i).map_or(0, |s| s.span.start);
        if let Some(part) = parts.get_mut((start * n / len).min(n - 1)) {
            part.push(i);
        }
    }
    parts.retain(|p| !p.is_empty());
    parts
}

/// Words a segment needs to state a summary's point (`states_a_point`).
const POINT_MIN_WORDS: usize = 8;

/// Whether a segment can state a summary's point: a sentence of at least `POINT_MIN_WORDS`
/// words, most of them in lower case, where its script has case (not a heading, a title, an
/// address or a signature block: "SUPPLIER PURCHASER (Name of Company - Please Print) By: By:"),
/// or of at least 20 letters in a script without case or spaces.
fn states_a_point(body: &str) -> bool {
    let words: Vec<&str> = body.split_whitespace().filter(|w| w.chars().any(char::is_alphabetic)).collect();
    let cased = |w: &&str| w.chars().any(|c| c.is_lowercase() || c.is_uppercase());
    if !words.iter().any(cased) {
        return body.chars().filter(|c| c.is_alphabetic()).count() >= 20;
    }
    let lower = words.iter().filter(|w| w.chars().next().is_some_and(char::is_lowercase)).count();
    words.len() >= POINT_MIN_WORDS && lower * 2 >= words.len()
}

/// Tokens left in a summary's budget below which no further line is asked for: a marker and a
/// few words.
const MIN_LINE_TOKENS: usize = 16;

/// Whether `output` holds markers alone, one a line.
fn only_markers(output: &str) -> bool {
    output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .all(|l| l.strip_prefix("[S").and_then(|l| l.strip_suffix(']')).is_some_and(|n| n.parse::<u32>().is_ok()))
}

/// The labels of the markers in `output`, in order.
fn markers(output: &str) -> impl Iterator<Item = u32> + '_ {
    output.split("[S").skip(1).filter_map(|rest| rest.split_once(']')?.0.parse().ok())
}

/// The content words of a question that say what it asks (`GENERIC` left out).
fn asked_words(question: &str) -> Vec<String> {
    content_words(question).into_iter().filter(|w| !GENERIC.contains(&w.as_str())).collect()
}

/// Whether a question's word and a segment's word are one word: equal, or sharing a stem of at
/// least 5 letters that covers all but two of the shorter ("renew" and "renewal", "terminate"
/// and "termination"; `content_words` strips only inflections).
fn same_word(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let shorter = a.chars().count().min(b.chars().count());
    common >= 5 && common + 2 >= shorter
}

/// How many of the question's words `asked` the words of a text hold (`holds`).
fn shared_words(asked: &[String], words: &HashSet<String>) -> usize {
    asked.iter().filter(|q| holds(words, q)).count()
}

/// How many of the question's words `asked` a segment the model did not write from must hold
/// to stand for the question: `FALLBACK_MIN_WORDS`, or all of them when there are fewer.
fn enough(asked: &[String]) -> usize {
    asked.len().min(FALLBACK_MIN_WORDS)
}

/// Whether `words` hold the question's word `q` (`same_word`).
fn holds(words: &HashSet<String>, q: &str) -> bool {
    words.iter().any(|w| same_word(q, w))
}

/// The index of the segment that shares the rarest words with `question` (`relevance`; the
/// first of equals), if any shares one.
fn lexical_best(question: &str, text: &str, segments: &[Segment]) -> Option<usize> {
    relevance(question, text, segments)
        .into_iter()
        .enumerate()
        .filter(|(_, score)| *score > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(i, _)| i)
}

/// For each segment, how much it shares with `question`: each asked word it holds weighs by how
/// few segments hold it.
fn relevance(question: &str, text: &str, segments: &[Segment]) -> Vec<f32> {
    let asked = asked_words(question);
    let words: Vec<HashSet<String>> =
        segments.iter().map(|s| content_words(s.span.slice(text).unwrap_or_default())).collect();
    let n = words.len() as f32;
    let weight: Vec<f32> = asked
        .iter()
        .map(|q| {
            let df = words.iter().filter(|seg| holds(seg, q)).count() as f32;
            ((n + 1.0) / (df + 0.5)).ln()
        })
        .collect();
    words.iter().map(|seg| asked.iter().zip(&weight).filter(|(q, _)| holds(seg, q)).map(|(_, w)| *w).sum()).collect()
}

/// `group` (a quote's segments) with the segment that shares most with the question first, and
/// of equals the one with more words: the model writes its line from the first quoted segment.
/// A quote of a short segment goes on with what follows it, and the model tends to point at
/// the segment just before the text it means: a 4,096-token needle was quoted after "[***] =
/// CONFIDENTIAL TREATMENT REQUESTED", whose marker the model had named, and the line copied
/// that; under a heading, the clause rather than the heading is cited.
fn most_relevant_first(question: &str, shown: &Shown<'_>, mut group: Vec<usize>) -> Vec<usize> {
    let scores = relevance(question, shown.text, shown.segments);
    let words = |i: usize| shown.body(i).split_whitespace().count();
    let score = |i: usize| scores.get(i).copied().unwrap_or_default();
    group.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(words(b).cmp(&words(a))));
    group
}

/// The label of the first marker in `output`.
fn first_marker(output: &str) -> Option<u32> {
    markers(output).next()
}

/// The indices of the segments a quote of `segments[at]` holds: it, and the segments after it
/// while the quote is shorter than `QUOTE_MIN_WORDS` words, up to `QUOTE_MAX_SEGMENTS` and
/// `prompt::QUOTE_MAX_BYTES`.
fn quoted(text: &str, segments: &[Segment], at: usize) -> Vec<usize> {
    let body = |i: usize| segments.get(i).and_then(|s| s.span.slice(text)).unwrap_or_default();
    let mut out = vec![at];
    let (mut words, mut bytes) = (body(at).split_whitespace().count(), body(at).len());
    let mut next = at + 1;
    while words < QUOTE_MIN_WORDS && out.len() < QUOTE_MAX_SEGMENTS && next < segments.len() {
        let more = body(next);
        if bytes + more.len() > prompt::QUOTE_MAX_BYTES {
            break;
        }
        words += more.split_whitespace().count();
        bytes += more.len();
        out.push(next);
        next += 1;
    }
    out
}

/// Run `request` with the caller's progress channel passing on prefill reports only: the
/// marker a question's first step writes is no part of the answer a client is shown.
async fn without_text_progress<F: std::future::Future>(request: F) -> F::Output {
    let Some(outer) = llm::progress_sender() else { return request.await };
    let (inner, mut reports) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(report) = reports.recv().await {
            if matches!(report, Progress::Prefill { .. }) && outer.send(report).is_err() {
                break;
            }
        }
    });
    llm::PROGRESS.scope(inner, request).await
}

/// One usage and timing record for the requests of one answer (no text).
pub fn combined(outputs: &[GenOutput]) -> GenOutput {
    let mut all = GenOutput::default();
    outputs.iter().for_each(|out| all.add_cost(out));
    all
}

/// Words of a contract question that say nothing about what it asks, as `content_words` stems
/// them: what it is about ("Does this agreement … a party's …") and how it is framed ("… renew
/// after its initial term, and for how long?", "Does assigning … require …"). A span that shares
/// only such a word with the question is not about it: the 0.5B model answered the renewal
/// question with a production clause that shares "after" with it, and the 1.5B with a packing
/// clause ("suitable for long distance transportation").
const GENERIC: &[&str] = &[
    "agreement",
    "contract",
    "document",
    "party",
    "part",
    "doe",
    "other",
    "without",
    "after",
    "before",
    "long",
    "require",
];

/// The claims of `output`, as `lines` reads them; a question's decided as `decide` decides,
/// with no quote to fall back on.
fn claims(output: &str, shown: &Shown<'_>, step: &Step<'_>) -> Vec<(String, Vec<u32>)> {
    let (kept, _) = lines(output, shown, step);
    match step.question() {
        Some(q) => decide(q, kept, shown.segments, shown.text, &[]),
        None => kept,
    }
}

/// The lines of `output`, each with the ids of the `shown` segments it cites, degenerate ones
/// dropped (`guard`; only characters of `step.alphabet` allowed), and why each dropped one was.
fn lines(output: &str, shown: &Shown<'_>, step: &Step<'_>) -> (Vec<(String, Vec<u32>)>, Vec<Dropped>) {
    let parsed = cite::labels_to_segments(cite::parse_answer(output), shown.labels, shown.segments);
    let alphabet = step.alphabet(shown.numbered);
    let (kept, dropped) = guard(parsed, shown.text, shown.segments, &step.echoes(), &alphabet);
    if !dropped.is_empty() {
        tracing::debug!(?dropped, "degenerate answer lines dropped");
    }
    (kept, dropped)
}

/// The answer to `question` from the lines `kept` of the model's answer: they stand when the
/// first, written from the evidence the model pointed at before anything else, answers the
/// question (`answers`; its span supports it, though it may lack a number); a line of words
/// whose citation verifies but that is about something else is declined. When the model wrote
/// no such line (all dropped as degenerate but for the refusal, or a first line that says
/// nothing its span states), the quoted evidence (`quote`, indices into `segments`) answers in
/// its own words (`quoted_answer`) if it is about the question: the 0.5B model's
/// "iana8.2520.104-24, 12.2520.104-24…" cited a governing-law heading, and the sentence under it
/// supported the line by the regulation it cites ("Section 2520.104-24", not the line's numbers;
/// docs/eval-issue21). Otherwise the answer is the refusal alone, without citations: the model
/// is never offered the refusal, so it cannot take it before it looks.
fn decide(
    question: &str,
    kept: Vec<(String, Vec<u32>)>,
    segments: &[Segment],
    text: &str,
    quote: &[usize],
) -> Vec<(String, Vec<u32>)> {
    let first = kept.first().and_then(|(claim, ids)| {
        let span = narrowed_span(claim, ids, segments, text)?;
        Some((claim, span, check(claim, span).1))
    });
    match first {
        Some((claim, span, failure)) if failure != Some(Failure::Unsupported) && answers(question, claim, span) => kept,
        Some((claim, _, None)) if !content_words(claim).is_empty() => vec![(REFUSAL.to_owned(), Vec::new())],
        _ => match quoted_answer(question, segments, text, quote) {
            Some(line) => {
                tracing::debug!(claim = %line.0, "no usable line: the evidence answers in its own words");
                vec![line]
            }
            None => vec![(REFUSAL.to_owned(), Vec::new())],
        },
    }
}

/// The span a claim citing the segments `ids` is checked against: the first one's, narrowed.
fn narrowed_span<'t>(claim: &str, ids: &[u32], segments: &[Segment], text: &'t str) -> Option<&'t str> {
    let at = ids.first().and_then(|id| segments.iter().position(|s| s.id == *id))?;
    narrow::narrow(text, segments, at, claim).1.slice(text)
}

/// The first segment of `quote` (indices into `segments`, most relevant first) that is no
/// heading and shares `enough` of the question's words, as a segment the model did not pick
/// must, as a line of its own words citing it.
/// Pointed at the exclusive-rights clause, the 1.5B model wrote the instruction ("The segment
/// that answers it, then one short sentence…"); pointed at the governing-law clause, the 0.5B
/// wrote "Texas.20210101.0000000000000 13.0000…" (docs/eval-issue21).
fn quoted_answer(question: &str, segments: &[Segment], text: &str, quote: &[usize]) -> Option<(String, Vec<u32>)> {
    let asked = asked_words(question);
    quote.iter().filter_map(|&i| segments.get(i)).find_map(|seg| {
        let body = seg.span.slice(text)?;
        (!narrow::is_heading(body) && shared_words(&asked, &content_words(body)) >= enough(&asked))
            .then(|| (body.split_whitespace().collect::<Vec<_>>().join(" "), vec![seg.id]))
    })
}

/// Whether an evidence line whose claim `span` supports answers `question`: the span shares a
/// content word with the question (`same_word`, as the evidence was chosen; when the question
/// has one besides `GENERIC`: "Who are the parties?" has none), and the claim says something
/// the question does not, from the span: "The agreement grants exclusive rights.", asked
/// whether it grants exclusive rights, restates the question whatever it cites. The link to
/// the question must be the evidence's, not the model's: the 1.5B model, asked whether a party
/// may terminate without cause, copied a signature block and went on "The buyer and seller may
/// terminate this agreement without cause." (half its words in the span, so the citation
/// verifies; none of the question's). A number of the claim its span lacks does not decide:
/// the line stands and its citation fails verification (`number_missing`), shown as such; the
/// 0.5B model's answers that cited the right clause with a made-up number ("…expiring on the
/// third anniversary date of this Agreement (S329)") would otherwise deny a clause that is
/// there.
fn answers(question: &str, claim: &str, span: &str) -> bool {
    let in_question = content_words(question);
    let span_words = content_words(span);
    let informs = content_words(claim).iter().any(|w| {
        span_words.contains(w) && !in_question.iter().any(|q| same_word(q, w)) && !GENERIC.contains(&w.as_str())
    });
    let asked = asked_words(question);
    informs && (asked.is_empty() || asked.iter().any(|w| holds(&span_words, w)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Task;
    use crate::pipeline::TaskSpec;

    const TEXT: &str = "[***] = CONFIDENTIAL TREATMENT REQUESTED. The term is five years. \
                        This Agreement is governed by the laws of the State of Kentucky.";

    fn run(output: &str, task: &TaskSpec) -> Vec<(String, Vec<u32>)> {
        let segments = cite::one_page(TEXT);
        let labels = cite::labels(segments.len());
        let numbered = cite::numbered_text(TEXT, &segments, &labels);
        let step = Step::Task(task);
        let mut out = output.to_owned();
        for (i, label) in labels.iter().enumerate() {
            out = out.replace(&format!("{{{}}}", i + 1), &label.to_string());
        }
        claims(&out, &Shown { text: TEXT, segments: &segments, labels: &labels, numbered: &numbered }, &step)
    }

    /// Whether `line` alone, the first line of an answer, answers `q` (no quote to fall back on).
    fn answered(q: &str, line: &(String, Vec<u32>), segments: &[Segment], text: &str) -> bool {
        decide(q, vec![line.clone()], segments, text, &[]) == vec![line.clone()]
    }

    fn question(q: &str) -> TaskSpec {
        TaskSpec { task: Task::Question, question: Some(q.into()) }
    }

    const LAW: &str = "Which state's or country's law governs this agreement?";

    #[test]
    fn a_supported_claim_about_the_question_is_the_answer_and_its_repeat_is_dropped() {
        let got = run("[S{3}] The laws of Kentucky govern it.\n[S{3}] Kentucky law governs it.\n", &question(LAW));
        assert_eq!(got, vec![("The laws of Kentucky govern it.".to_owned(), vec![3])]);
    }

    #[test]
    fn a_claim_its_evidence_does_not_support_is_declined() {
        // Invented: nothing in the cited segment says so.
        let got = run("[S{2}] The laws of Delaware govern this agreement.\n", &question(LAW));
        assert_eq!(got, vec![(REFUSAL.to_owned(), vec![])]);
    }

    #[test]
    fn supported_evidence_about_something_else_is_declined() {
        // Copied faithfully, but from a segment that has nothing to do with competition.
        let q = "Does this agreement restrict a party from competing with the other?";
        let got = run("[S{1}] CONFIDENTIAL TREATMENT REQUESTED applies.\n", &question(q));
        assert_eq!(got, vec![(REFUSAL.to_owned(), vec![])]);
        // The same line answers a question about the treatment requested.
        let got = run("[S{1}] CONFIDENTIAL TREATMENT REQUESTED applies.\n", &question("Is any treatment requested?"));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, vec![1]);
    }

    #[test]
    fn a_span_that_is_not_about_the_question_is_declined_whatever_the_claim_adds() {
        let q = "Does this agreement restrict a party from competing with the other?";
        // The claim's words make it about competition, and half of them are the span's, so the
        // citation verifies; the span itself says nothing of competition.
        let got = run("[S{1}] CONFIDENTIAL TREATMENT REQUESTED restricts a party from competing.\n", &question(q));
        assert_eq!(got, vec![(REFUSAL.to_owned(), vec![])]);
    }

    #[test]
    fn a_span_that_shares_only_the_questions_framing_is_declined() {
        // "after" and "long" frame the question; the span is about payment, not renewal.
        let q = "Does this agreement renew after its initial term, and for how long?";
        let text = "Payment is due thirty days after delivery, however long the delivery takes.";
        let segments = cite::one_page(text);
        let line = ("Payment is due thirty days after delivery.".to_owned(), vec![segments[0].id]);
        assert!(!answered(q, &line, &segments, text));
        // The same span answers a question about payment.
        assert!(answered("When is payment due?", &line, &segments, text));
    }

    #[test]
    fn a_question_of_generic_words_alone_is_answered_from_a_supported_span() {
        let q = "Who are the parties to this agreement?";
        assert!(asked_words(q).is_empty());
        let text = "This Agreement is made between Acme Industries and Beta Logistics.";
        let segments = cite::one_page(text);
        let line = |claim: &str| (claim.to_owned(), vec![segments[0].id]);
        assert!(answered(q, &line("The parties are Acme Industries and Beta Logistics."), &segments, text));
        // Still declined: a claim its span does not support, or one that only restates the question.
        assert!(!answered(q, &line("The parties are Gamma Holdings and Delta Shipping."), &segments, text));
        assert!(!answered(q, &line("This agreement has parties."), &segments, text));
    }

    #[test]
    fn a_claim_that_restates_the_question_is_declined_whatever_it_cites() {
        // The cited segment is the governing-law clause, but the claim adds nothing from it.
        assert_eq!(
            run("[S{3}] This agreement is governed by law.\n", &question(LAW)),
            vec![(REFUSAL.to_owned(), vec![])]
        );
    }

    #[test]
    fn the_refusal_written_after_a_marker_is_the_refusal_alone() {
        assert_eq!(run("[S{3}] The document does not say.\n", &question(LAW)), vec![(REFUSAL.to_owned(), vec![])]);
    }

    #[test]
    fn the_first_marker_is_the_evidence() {
        assert_eq!(first_marker("[S4711]"), Some(4711));
        assert_eq!(first_marker("x [S12] y [S13]"), Some(12));
        assert_eq!(first_marker("[S]"), None);
        assert_eq!(first_marker("no marker"), None);
    }

    const CONTRACT: &str = "7. Governing Law.\n\
                            This Agreement shall be governed by the laws of the Commonwealth of Pennsylvania.\n\
                            This Agreement may be executed in counterparts, each of which is an original.\n\
                            Notices shall be given in writing to the addresses above.";

    fn contract() -> Vec<Segment> {
        cite::one_page(CONTRACT)
    }

    #[test]
    fn a_heading_is_quoted_with_the_sentence_under_it_and_a_sentence_alone() {
        let segments = contract();
        assert_eq!(segments.len(), 4, "{segments:?}");
        // The heading has 3 words: the clause under it joins the quote, and no more (15 words).
        assert_eq!(quoted(CONTRACT, &segments, 0), vec![0, 1]);
        assert_eq!(quoted(CONTRACT, &segments, 1), vec![1]);
        // The last segment is quoted alone even when short.
        assert_eq!(quoted(CONTRACT, &segments, 3), vec![3]);
    }

    /// Records each request and answers from a script, as the two steps of `ask` see an engine.
    struct Script {
        replies: std::sync::Mutex<Vec<String>>,
        seen: std::sync::Mutex<Vec<GenRequest>>,
    }

    #[async_trait::async_trait]
    impl Engine for Script {
        fn model_name(&self) -> &str {
            "script"
        }
        fn context_limit(&self) -> usize {
            4096
        }
        async fn count_tokens(&self, text: &str) -> anyhow::Result<usize> {
            Ok(text.len())
        }
        async fn count_prompt_tokens(&self, req: &GenRequest) -> anyhow::Result<usize> {
            Ok(req.user.len())
        }
        async fn generate(&self, req: GenRequest) -> anyhow::Result<GenOutput> {
            self.seen.lock().unwrap().push(req);
            let text = self.replies.lock().unwrap().remove(0);
            Ok(GenOutput { text, prompt_tokens: 100, completion_tokens: 5, ..GenOutput::default() })
        }
    }

    /// What `ask` makes of the law question on `CONTRACT` when the engine replies with
    /// `replies(labels)`: the claims, the outputs, the requests the engine saw, the segments and
    /// their labels.
    struct Asked {
        claims: Vec<(String, Vec<u32>)>,
        outputs: Vec<GenOutput>,
        seen: Vec<GenRequest>,
        segments: Vec<Segment>,
        labels: Vec<u32>,
    }

    async fn ask_contract(replies: impl Fn(&[u32]) -> Vec<String>) -> Asked {
        ask_about(CONTRACT, replies).await
    }

    /// What `ask` makes of the law question on `text` (one page).
    async fn ask_about(text: &str, replies: impl Fn(&[u32]) -> Vec<String>) -> Asked {
        let segments = cite::one_page(text);
        let labels = cite::labels(segments.len());
        let numbered = cite::numbered_text(text, &segments, &labels);
        let task = question(LAW);
        let step = Step::Task(&task);
        let engine =
            Script { replies: std::sync::Mutex::new(replies(&labels)), seen: std::sync::Mutex::new(Vec::new()) };
        let shown = Shown { text, segments: &segments, labels: &labels, numbered: &numbered };
        let (claims, outputs) =
            ask(&engine, &shown, &step, prompt::request(&numbered, &labels, &step, 512)).await.unwrap();
        let seen = engine.seen.into_inner().unwrap();
        Asked { claims, outputs, seen, segments, labels }
    }

    #[tokio::test]
    async fn a_question_quotes_the_evidence_it_pointed_at_before_the_claim_is_written() {
        let Asked { claims, outputs, seen, segments, labels } = ask_contract(|labels| {
            vec![
                format!("[S{}]", labels[0]),
                format!("[S{}] The laws of Pennsylvania govern this agreement.", labels[1]),
            ]
        })
        .await;
        assert_eq!(claims, vec![("The laws of Pennsylvania govern this agreement.".to_owned(), vec![segments[1].id])]);
        assert_eq!(outputs.len(), 2);
        assert_eq!(combined(&outputs).completion_tokens, 10);

        let marker = regex::Regex::new(&format!("^(?:{})$", seen[0].regex.as_deref().unwrap())).unwrap();
        assert!(marker.is_match(&format!("[S{}]", labels[2])));
        assert!(!marker.is_match(&format!("[S{}] The laws govern.", labels[2])), "the first step writes a marker only");
        // The second request quotes the heading it pointed at and the clause under it, the clause
        // first (as many words of the question, more words), after the same prefix, and may cite
        // only them.
        let second = &seen[1];
        assert!(second.reuse_prefix && !seen[0].reuse_prefix);
        let (quote, _) =
            second.user.rsplit_once("The segment that answers it:\n").unwrap().1.split_once("\nAnswer").unwrap();
        assert_eq!(
            quote,
            format!(
                "[S{}] This Agreement shall be governed by the laws of the Commonwealth of Pennsylvania.\n[S{}] \
                 7. Governing Law.\n",
                labels[1], labels[0]
            )
        );
        let prefix = seen[0].user.split("Write only its marker.").next().unwrap();
        assert!(second.user.starts_with(prefix) && second.system == seen[0].system);
        let line = regex::Regex::new(&format!("^(?:{})$", second.regex.as_deref().unwrap())).unwrap();
        assert!(line.is_match(&format!("[S{}] The laws of Pennsylvania govern it.", labels[1])));
        assert!(!line.is_match(&format!("[S{}] The laws of Pennsylvania govern it.", labels[2])), "not quoted");
    }

    #[tokio::test]
    async fn evidence_the_model_wrote_no_usable_line_for_answers_in_its_own_words() {
        let clause = "This Agreement shall be governed by the laws of the Commonwealth of Pennsylvania.";
        // Pointed at the heading, the model stutters; the clause under it, quoted first, answers.
        let stutter = |labels: &[u32]| {
            vec![format!("[S{}]", labels[0]), format!("[S{}] 13.0000 13.0000 13.0000 13.0000 13.0000", labels[1])]
        };
        let Asked { claims, segments, .. } = ask_contract(stutter).await;
        assert_eq!(claims, vec![(clause.to_owned(), vec![segments[1].id])]);
        // A first line its span does not support is no usable line either.
        let unsupported = |labels: &[u32]| {
            vec![format!("[S{}]", labels[1]), format!("[S{}] Pennsylvania.2520.104-24, 12.2520.104-24.", labels[1])]
        };
        assert_eq!(ask_contract(unsupported).await.claims, vec![(clause.to_owned(), vec![segments[1].id])]);
        // Nor is a line its span supports by numbers it does not state: the notice sentence says
        // "12 months" and "24 hours", not "12.2520.104".
        let text = "7. Governing Law.\nNotice is due within 12 months and answered within 24 hours.\n\
                    This Agreement shall be governed by the laws of the Commonwealth of Pennsylvania.";
        let Asked { claims, segments, .. } = ask_about(text, |labels| {
            vec![format!("[S{}]", labels[2]), format!("[S{}] Notice.2520.104-24, 12.2520.104-24.", labels[1])]
        })
        .await;
        assert_eq!(claims, vec![(clause.to_owned(), vec![segments[2].id])]);
        // A supported line about something else is the model's verdict: declined.
        let elsewhere = |labels: &[u32]| {
            vec![format!("[S{}]", labels[1]), format!("[S{}] The agreement is governed by law.", labels[1])]
        };
        assert_eq!(ask_contract(elsewhere).await.claims, vec![(REFUSAL.to_owned(), vec![])]);
        // So is the refusal written as the line.
        let refused =
            |labels: &[u32]| vec![format!("[S{}]", labels[1]), format!("[S{}] The document does not say.", labels[1])];
        assert_eq!(ask_contract(refused).await.claims, vec![(REFUSAL.to_owned(), vec![])]);
    }

    #[tokio::test]
    async fn evidence_that_shares_one_word_of_the_question_does_not_answer_in_its_own_words() {
        // "law" alone of the question's words (state, country, law, govern): not about it.
        let text = "Each party shall comply with applicable law when it ships the goods.\n\
                    Payment is due thirty days after delivery.";
        let Asked { claims, .. } = ask_about(text, |labels| {
            vec![format!("[S{}]", labels[0]), format!("[S{}] 1.000 1.000 1.000 1.000 1.000 1.000", labels[0])]
        })
        .await;
        assert_eq!(claims, vec![(REFUSAL.to_owned(), vec![])]);
        // A heading is never the answer, however many of the question's words it holds.
        let segments = contract();
        assert_eq!(quoted_answer("Which law governs?", &segments, CONTRACT, &[0]), None);
        assert!(quoted_answer("Which law governs?", &segments, CONTRACT, &[0, 1]).is_some());
    }

    #[test]
    fn a_span_that_holds_the_questions_word_inflected_answers() {
        let q = "May a party terminate this agreement without cause?";
        let text = "This Agreement may be terminated by either party on thirty days' written notice.";
        let segments = cite::one_page(text);
        let line = ("Either party may end it on thirty days' written notice.".to_owned(), vec![segments[0].id]);
        assert!(answered(q, &line, &segments, text));
    }

    /// What `summarize` makes of `CONTRACT` for `step` when the engine replies with
    /// `replies(labels)`, in at most `max_tokens`.
    async fn summarize_contract(step: &Step<'_>, max_tokens: usize, replies: impl Fn(&[u32]) -> Vec<String>) -> Asked {
        let segments = contract();
        let labels = cite::labels(segments.len());
        let numbered = cite::numbered_text(CONTRACT, &segments, &labels);
        let engine =
            Script { replies: std::sync::Mutex::new(replies(&labels)), seen: std::sync::Mutex::new(Vec::new()) };
        let shown = Shown { text: CONTRACT, segments: &segments, labels: &labels, numbered: &numbered };
        let first = prompt::request(&numbered, &labels, step, max_tokens);
        let (claims, outputs) = summarize(&engine, &shown, step, first, max_tokens).await.unwrap();
        let seen = engine.seen.into_inner().unwrap();
        Asked { claims, outputs, seen, segments, labels }
    }

    const SUMMARY: TaskSpec = TaskSpec { task: Task::Summary, question: None };

    #[tokio::test]
    async fn a_summary_points_at_its_segments_then_writes_each_line_with_its_segment_quoted() {
        // The notices clause, then the law clause twice: one line each, in the document's order.
        let Asked { claims, outputs, seen, segments, labels } =
            summarize_contract(&Step::Task(&SUMMARY), 512, |labels| {
                vec![
                    format!("[S{}]\n[S{}]\n[S{}]", labels[3], labels[1], labels[1]),
                    format!("[S{}] Pennsylvania law governs the agreement.", labels[1]),
                    format!("[S{}] Notices are given in writing.", labels[3]),
                ]
            })
            .await;
        assert_eq!(
            claims,
            vec![
                ("Pennsylvania law governs the agreement.".to_owned(), vec![segments[1].id]),
                ("Notices are given in writing.".to_owned(), vec![segments[3].id]),
            ]
        );
        assert_eq!((outputs.len(), seen.len()), (3, 3));
        let markers = regex::Regex::new(&format!("^(?:{})$", seen[0].regex.as_deref().unwrap())).unwrap();
        // One marker from each part of the text: the heading and the law clause share the first.
        assert!(markers.is_match(&format!("[S{}]\n[S{}]\n[S{}]", labels[1], labels[2], labels[3])));
        assert!(markers.is_match(&format!("[S{}]\n[S{}]\n[S{}]\n", labels[0], labels[2], labels[3])));
        assert!(!markers.is_match(&format!("[S{}]\n[S{}]\n[S{}]", labels[0], labels[1], labels[3])), "two from one");
        assert!(!markers.is_match(&format!("[S{}]\n[S{}]\n[S{}]", labels[2], labels[1], labels[3])), "in order");
        assert!(!markers.is_match(&format!("[S{}] The law.\n[S{}]\n[S{}]", labels[1], labels[2], labels[3])));
        let prefix = seen[0].user.split("Write only their markers").next().unwrap();
        for (request, at) in seen.iter().skip(1).zip([1, 3]) {
            assert!(request.reuse_prefix && request.user.starts_with(prefix) && request.system == seen[0].system);
            let quote = request.user.rsplit_once("One of those segments:\n").unwrap().1;
            let body = segments[at].span.slice(CONTRACT).unwrap();
            assert!(quote.starts_with(&format!("[S{}] {body}\n\nWrite its point", labels[at])), "{quote}");
            let line = regex::Regex::new(&format!("^(?:{})$", request.regex.as_deref().unwrap())).unwrap();
            assert!(line.is_match(&format!("[S{}] It says so.", labels[at])));
            assert!(!line.is_match(&format!("[S{}] It says so.", labels[0])), "only the quoted segment");
        }
    }

    #[tokio::test]
    async fn a_summarys_lines_stop_at_its_token_budget() {
        // The script's outputs take 5 tokens each: after the markers and one line, 15 are left.
        let Asked { claims, seen, .. } = summarize_contract(&Step::Task(&SUMMARY), 25, |labels| {
            vec![
                format!("[S{}]\n[S{}]\n[S{}]", labels[1], labels[2], labels[3]),
                format!("[S{}] Pennsylvania law governs the agreement.", labels[1]),
            ]
        })
        .await;
        assert_eq!((claims.len(), seen.len()), (1, 2));
    }

    #[tokio::test]
    async fn picking_among_claims_keeps_the_picked_claims_as_they_are() {
        let Asked { claims, seen, segments, .. } = summarize_contract(&Step::Claims, 512, |labels| {
            vec![format!("[S{}]\n[S{}]\n[S{}]", labels[3], labels[1], labels[3])]
        })
        .await;
        let text = |i: usize| segments[i].span.slice(CONTRACT).unwrap().to_owned();
        assert_eq!(claims, vec![(text(1), vec![segments[1].id]), (text(3), vec![segments[3].id])]);
        assert_eq!(seen.len(), 1, "no second request");
    }

    #[tokio::test]
    async fn a_summary_from_an_engine_that_wrote_lines_instead_of_markers_is_read_as_lines() {
        // An OpenAI-compatible server without constrained decoding: no marker alone, a line.
        let Asked { claims, seen, segments, .. } = summarize_contract(&Step::Task(&SUMMARY), 512, |labels| {
            vec![format!("[S{}] Pennsylvania law governs the agreement.\n", labels[1])]
        })
        .await;
        assert_eq!(claims, vec![("Pennsylvania law governs the agreement.".to_owned(), vec![segments[1].id])]);
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn a_point_is_stated_by_a_sentence_not_a_heading_a_title_or_a_signature_block() {
        assert!(states_a_point("This Agreement shall be governed by the laws of Pennsylvania."));
        assert!(!states_a_point("7. Governing Law."));
        assert!(!states_a_point("[***] = CONFIDENTIAL TREATMENT REQUESTED"));
        assert!(!states_a_point(
            "SUPPLIER PURCHASER (Name of Company - Please Print) By: By: Title: Title: Date: Date:"
        ));
        assert!(!states_a_point("Notices shall be given."), "too short");
        assert!(states_a_point("本协议受中华人民共和国法律管辖，双方应当遵守本协议的全部条款。"));
        assert!(!states_a_point("第七条 适用法律"));
    }

    #[test]
    fn words_of_one_stem_are_one_word() {
        assert!(same_word("renew", "renewal"));
        assert!(same_word("terminate", "termination"));
        assert!(same_word("exclusive", "exclusivity"));
        assert!(!same_word("law", "lawful"));
        assert!(!same_word("term", "terminate"));
        // A known confusion of a stem rule: "governs" and "government" count as one word.
        assert!(same_word("govern", "government"));
    }

    #[tokio::test]
    async fn evidence_that_shares_no_word_with_the_question_gives_way_to_the_segment_that_does() {
        // The model names the notices clause: nothing of governing law in it.
        let Asked { claims, seen, segments, labels, .. } = ask_contract(|labels| {
            vec![format!("[S{}]", labels[3]), format!("[S{}] Pennsylvania law governs it.", labels[1])]
        })
        .await;
        assert_eq!(claims, vec![("Pennsylvania law governs it.".to_owned(), vec![segments[1].id])]);
        let quote = seen[1].user.rsplit_once("The segment that answers it:\n").unwrap().1;
        // The heading and the clause share "govern" and "law" with the question: the heading is
        // named (the first of equals), quoted with the clause under it, the longer first.
        assert!(
            quote.starts_with(&format!(
                "[S{}] This Agreement shall be governed by the laws of the Commonwealth \
                                            of Pennsylvania.\n[S{}] 7. Governing Law.",
                labels[1], labels[0]
            )),
            "{quote}"
        );
        assert!(!quote.contains("Notices"));
    }

    #[tokio::test]
    async fn off_topic_evidence_gives_way_only_to_a_segment_that_shares_two_words_with_the_question() {
        // The model names the notices clause; the only segment that shares a word with the law
        // question shares one ("state"): the question is declined without a second request.
        let text = "Notices under this contract shall be given in writing to the addresses written above.\n\
                    The Supplier shall register as a dealer in each state where it sells the goods.";
        let Asked { claims, outputs, seen, .. } = ask_about(text, |labels| {
            vec![format!("[S{}]", labels[0]), format!("[S{}] The Supplier registers in each state.", labels[1])]
        })
        .await;
        assert_eq!(claims, vec![(REFUSAL.to_owned(), vec![])]);
        assert_eq!((outputs.len(), seen.len()), (1, 1));
        // Pointed at by the model itself, the same segment is quoted (and then judged as any).
        let Asked { seen, .. } = ask_about(text, |labels| {
            vec![format!("[S{}]", labels[1]), format!("[S{}] The Supplier registers in each state.", labels[1])]
        })
        .await;
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn a_question_left_with_only_degenerate_lines_is_refused_but_a_summary_is_not() {
        let echo = "[S{1}] The bridge opened to traffic in 1932.\n";
        assert_eq!(run(echo, &question(LAW)), vec![(REFUSAL.to_owned(), vec![])]);
        assert!(run(echo, &TaskSpec { task: Task::Summary, question: None }).is_empty());
    }
}
