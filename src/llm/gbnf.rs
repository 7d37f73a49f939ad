//! Regular expressions, as the pipelines constrain answers with, rewritten as llama.cpp GBNF
//! grammars for servers that take a grammar but no regex. The subset covers what
//! `cite::line_regex_in` and `cite::markers_regex` write: groups (`(?:…)`), alternation, bounded repetition, `* + ?`,
//! character classes with ranges and negation, `.`, `\s`, `\d`, `\w`, `\n` and escaped punctuation.
//!
//! One deliberate difference: a repetition whose upper bound exceeds `MAX_BOUND` loses that
//! bound (`{2,60}` becomes `{2,}`). llama.cpp expands bounded repetitions by copying rules and
//! refuses grammars whose nested bounds multiply past its limit, which the answer format's
//! lines × words × characters do. The structure (one marker per claim, known labels) is kept;
//! lengths are then bounded only by the request's `max_tokens`.

use anyhow::{bail, Context};

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Literal(char),
    /// Characters and ranges (inclusive); `negated` for `[^…]`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
    },
}

/// The largest upper bound kept (see the module note).
const MAX_BOUND: u32 = 8;

const SPACE: &[(char, char)] = &[(' ', ' '), ('\t', '\r')];
const DIGIT: &[(char, char)] = &[('0', '9')];
const WORD: &[(char, char)] = &[('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')];

/// The GBNF grammar (rule `root`) that accepts exactly the strings `regex` matches in full.
pub fn regex_to_gbnf(regex: &str) -> anyhow::Result<String> {
    let chars: Vec<char> = regex.chars().collect();
    let mut parser = Parser { chars: &chars, at: 0 };
    let node = parser.alternation()?;
    if parser.at != chars.len() {
        bail!("unexpected `)` at {} in the regex", parser.at);
    }
    Ok(format!("root ::= {}\n", emit(&node)))
}

struct Parser<'a> {
    chars: &'a [char],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> anyhow::Result<char> {
        let c = self.peek().context("the regex ends too early")?;
        self.at += 1;
        Ok(c)
    }

    fn alternation(&mut self) -> anyhow::Result<Node> {
        let mut branches = vec![self.concat()?];
        while self.peek() == Some('|') {
            self.at += 1;
            branches.push(self.concat()?);
        }
        Ok(if branches.len() == 1 { branches.remove(0) } else { Node::Alt(branches) })
    }

    fn concat(&mut self) -> anyhow::Result<Node> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            items.push(self.quantified(atom)?);
        }
        Ok(Node::Concat(items))
    }

    fn atom(&mut self) -> anyhow::Result<Node> {
        match self.next()? {
            '(' => {
                if self.chars.get(self.at..self.at + 2) == Some(&['?', ':']) {
                    self.at += 2;
                } else if self.peek() == Some('?') {
                    bail!("only (?:…) groups are supported");
                }
                let inner = self.alternation()?;
                if self.next()? != ')' {
                    bail!("unclosed group");
                }
                Ok(inner)
            }
            '[' => self.class(),
            '.' => Ok(Node::Class { negated: true, ranges: vec![('\n', '\n')] }),
            '\\' => self.escape(),
            c @ ('^' | '$') => bail!("anchor `{c}` is not supported (the whole output must match)"),
            c @ ('*' | '+' | '?' | '{') => bail!("`{c}` repeats nothing"),
            c => Ok(Node::Literal(c)),
        }
    }

    fn escape(&mut self) -> anyhow::Result<Node> {
        let class = |ranges: &[(char, char)], negated| Node::Class { negated, ranges: ranges.to_vec() };
        Ok(match self.next()? {
            's' => class(SPACE, false),
            'S' => class(SPACE, true),
            'd' => class(DIGIT, false),
            'D' => class(DIGIT, true),
            'w' => class(WORD, false),
            'W' => class(WORD, true),
            'n' => Node::Literal('\n'),
            't' => Node::Literal('\t'),
            'r' => Node::Literal('\r'),
            c if c.is_ascii_alphanumeric() => bail!("escape `\\{c}` is not supported"),
            c => Node::Literal(c),
        })
    }

    fn class(&mut self) -> anyhow::Result<Node> {
        let negated = self.peek() == Some('^');
        if negated {
            self.at += 1;
        }
        let mut ranges = Vec::new();
        loop {
            let c = self.next()?;
            let lo = match c {
                ']' => break,
                '\\' => match self.next()? {
                    's' => {
                        ranges.extend_from_slice(SPACE);
                        continue;
                    }
                    'd' => {
                        ranges.extend_from_slice(DIGIT);
                        continue;
                    }
                    'w' => {
                        ranges.extend_from_slice(WORD);
                        continue;
                    }
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    e if e.is_ascii_alphanumeric() => bail!("escape `\\{e}` in a class is not supported"),
                    e => e,
                },
                c => c,
            };
            if self.peek() == Some('-') && self.chars.get(self.at + 1).is_some_and(|n| *n != ']') {
                self.at += 1;
                let hi = match self.next()? {
                    '\\' => self.next()?,
                    h => h,
                };
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(Node::Class { negated, ranges })
    }

    fn quantified(&mut self, atom: Node) -> anyhow::Result<Node> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => {
                let close = self.chars.get(self.at..).and_then(|r| r.iter().position(|c| *c == '}'));
                let close = close.context("unclosed `{`")?;
                let body: String = self.chars.get(self.at + 1..self.at + close).unwrap_or_default().iter().collect();
                self.at += close;
                let (lo, hi) = match body.split_once(',') {
                    Some((lo, "")) => (lo.trim().parse()?, None),
                    Some((lo, hi)) => (lo.trim().parse()?, Some(hi.trim().parse()?)),
                    None => {
                        let n = body.trim().parse()?;
                        (n, Some(n))
                    }
                };
                (lo, hi)
            }
            _ => return Ok(atom),
        };
        self.at += 1;
        if self.peek() == Some('?') {
            bail!("lazy quantifiers are not supported");
        }
        Ok(Node::Repeat { node: Box::new(atom), min, max })
    }
}

fn emit(node: &Node) -> String {
    match node {
        Node::Literal(c) => format!("\"{}\"", escape(*c, false)),
        Node::Class { negated, ranges } => {
            let body: String =
                ranges
                    .iter()
                    .map(|(lo, hi)| {
                        if lo == hi {
                            escape(*lo, true)
                        } else {
                            format!("{}-{}", escape(*lo, true), escape(*hi, true))
                        }
                    })
                    .collect();
            format!("[{}{body}]", if *negated { "^" } else { "" })
        }
        Node::Concat(items) if items.is_empty() => "\"\"".to_owned(),
        Node::Concat(items) => {
            let mut out: Vec<String> = Vec::new();
            let mut literal = String::new();
            for item in items {
                match item {
                    Node::Literal(c) => literal.push_str(&escape(*c, false)),
                    other => {
                        if !literal.is_empty() {
                            out.push(format!("\"{}\"", std::mem::take(&mut literal)));
                        }
                        out.push(emit(other));
                    }
                }
            }
            if !literal.is_empty() {
                out.push(format!("\"{literal}\""));
            }
            if out.len() == 1 {
                out.remove(0)
            } else {
                format!("({})", out.join(" "))
            }
        }
        Node::Alt(branches) => format!("({})", branches.iter().map(emit).collect::<Vec<_>>().join(" | ")),
        Node::Repeat { node, min, max } => {
            let inner = emit(node);
            match max {
                Some(max) if *max <= MAX_BOUND => format!("{inner}{{{min},{max}}}"),
                _ => format!("{inner}{{{min},}}"),
            }
        }
    }
}

/// A character inside a GBNF string literal or character class.
fn escape(c: char, in_class: bool) -> String {
    match c {
        '\n' => "\\n".to_owned(),
        '\t' => "\\t".to_owned(),
        '\r' => "\\r".to_owned(),
        '\\' => "\\\\".to_owned(),
        '"' if !in_class => "\\\"".to_owned(),
        '[' | ']' | '^' | '-' if in_class => format!("\\{c}"),
        c if (c as u32) < 0x20 => format!("\\x{:02X}", c as u32),
        c => c.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_groups_classes_repetition_and_alternation() {
        let g = regex_to_gbnf(r"(?:[^\s\[\].!?]{0,3} ){2,60}\[S(?:12|4111)\]\n").unwrap();
        // {0,3} is kept; {2,60} loses its upper bound.
        assert_eq!(g, "root ::= (([^ \\t-\\r\\[\\].!?]{0,3} \" \"){2,} \"[S\" (\"12\" | \"4111\") \"]\\n\")\n");
    }

    #[test]
    fn escapes_quotes_and_backslashes_and_refuses_what_it_cannot_mean() {
        assert_eq!(regex_to_gbnf(r#"a"b\\c"#).unwrap(), "root ::= \"a\\\"b\\\\c\"\n");
        assert_eq!(regex_to_gbnf("x|").unwrap(), "root ::= (\"x\" | \"\")\n");
        for bad in ["^a", "a(?=b)", "(a", "a)", "a*?", r"\b", "{2}"] {
            assert!(regex_to_gbnf(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_answer_format_rewrites() {
        let alphabet = crate::cite::Alphabet::of(&["Governed by the laws of Texas."]);
        let re = crate::cite::line_regex_in(&[4111, 12030], crate::cite::MAX_CLAIM_WORDS, &alphabet);
        let g = regex_to_gbnf(&re).unwrap();
        assert!(g.starts_with("root ::= (\"[S\" (\"4111\" | \"12030\") \"] \" [A-Za-z] "), "{g}");
        // A word's two inner stops keep their bound, the longer bounds (39 and 40 letters, 24
        // words) lose theirs.
        assert!(g.contains("){0,2}") && g.contains("{2,}"), "{g}");
        assert!(!g.contains("{1,40}") && !g.contains("{0,39}") && !g.contains("{2,24}"), "{g}");
        let evidence = regex_to_gbnf(&crate::cite::markers_regex(&[4111, 12030], 3, 5)).unwrap();
        assert!(evidence.contains("{2,4}"), "{evidence}");
    }
}
