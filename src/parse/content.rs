//! Text operators that pdf-extract does not implement, rewritten into ones it does before it
//! reads a page: `'` (next line, then show) and `"` (set word and character spacing, next line,
//! then show), which some writers (Ghostscript printing a text file, enscript) use for every line.
//! Without this their pages keep only the lines shown with `Tj`.

use lopdf::content::{Content, Operation};
use lopdf::{Dictionary, Object, Stream};

/// Rewrite `page`'s content, whose text is shown with `'` or `"`, into operators pdf-extract
/// reads; false when its content could not be decoded or the page is not a dictionary.
pub fn rewrite_page(doc: &mut lopdf::Document, page: lopdf::ObjectId) -> bool {
    let Ok(raw) = doc.get_page_content(page) else { return false };
    let Ok(content) = Content::decode(&raw) else { return false };
    let operations: Vec<Operation> = content.operations.into_iter().flat_map(expand).collect();
    let Ok(bytes) = (Content { operations }).encode() else { return false };
    let stream = doc.add_object(Stream::new(Dictionary::new(), bytes));
    match doc.get_object_mut(page).and_then(Object::as_dict_mut) {
        Ok(dict) => {
            dict.set("Contents", Object::Reference(stream));
            true
        }
        Err(_) => false,
    }
}

/// The operators pdf-extract reads that do what `op` does.
fn expand(op: Operation) -> Vec<Operation> {
    let next_line = || Operation::new("T*", Vec::new());
    match (op.operator.as_str(), op.operands.as_slice()) {
        ("'", [text]) => vec![next_line(), Operation::new("Tj", vec![text.clone()])],
        ("\"", [word, char, text]) => vec![
            Operation::new("Tw", vec![word.clone()]),
            Operation::new("Tc", vec![char.clone()]),
            next_line(),
            Operation::new("Tj", vec![text.clone()]),
        ],
        _ => vec![op],
    }
}

/// A `'` or `"` right after a string operand (`)` or `>`, white space between allowed) and
/// before white space: the operator, not a quote inside a string. A rare false positive costs
/// only a rewrite that changes nothing.
pub fn has_quote_operator(content: &[u8]) -> bool {
    let mut after_string = false;
    let mut bytes = content.iter().peekable();
    while let Some(&c) = bytes.next() {
        match c {
            b')' | b'>' => after_string = true,
            b'\'' | b'"' if after_string => {
                if bytes.peek().is_none_or(|n| n.is_ascii_whitespace()) {
                    return true;
                }
                after_string = false;
            }
            c if c.is_ascii_whitespace() => {}
            _ => after_string = false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_operators_are_found_and_quotes_inside_strings_are_not() {
        assert!(has_quote_operator(b"(first)Tj\n(second)'\n"));
        assert!(has_quote_operator(b"1 0 (x) \""));
        assert!(!has_quote_operator(b"(he said 'so' and \"no\")Tj (aren't) Tj"));
        let ops = expand(Operation::new("'", vec![Object::string_literal("line")]));
        assert_eq!(ops.iter().map(|o| o.operator.as_str()).collect::<Vec<_>>(), ["T*", "Tj"]);
    }
}
