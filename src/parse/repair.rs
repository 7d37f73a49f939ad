//! Damaged PDFs rebuilt before they are refused, as poppler, mutool and qpdf rebuild them: the
//! cross-reference table from a scan for `N G obj` headers, and a page tree from the page
//! objects found when the document's own is lost.

use std::collections::BTreeMap;

/// What a repair did, said to the user as a warning.
pub struct Repaired {
    pub bytes: Vec<u8>,
    pub objects: usize,
}

/// The file with a new cross-reference table and trailer appended, listing the last definition
/// of every object found by scanning; the trailer takes `/Root`, `/Info`, `/Encrypt` and `/ID`
/// from the file's last trailer (or cross-reference stream) that names them, or the catalog found
/// by the scan. `None` when no object or no catalog is found: nothing to rebuild from.
pub fn rebuild_xref(bytes: &[u8]) -> Option<Repaired> {
    let objects = scan_objects(bytes);
    let root = last_reference(bytes, b"/Root")
        .filter(|(n, _)| objects.contains_key(n))
        .or_else(|| find_catalog(bytes, &objects))?;
    let size = objects.keys().next_back().map_or(1, |n| n + 1);
    let mut out = bytes.to_vec();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let xref_at = out.len();
    out.extend_from_slice(format!("xref\n0 {size}\n0000000000 65535 f\r\n").as_bytes());
    for number in 1..size {
        let entry = match objects.get(&number) {
            Some(&(offset, generation)) => format!("{offset:010} {generation:05} n\r\n"),
            None => "0000000000 65535 f\r\n".to_owned(),
        };
        out.extend_from_slice(entry.as_bytes());
    }
    let mut trailer = format!("trailer\n<< /Size {size} /Root {} {} R", root.0, root.1);
    for key in [&b"/Info"[..], b"/Encrypt"] {
        if let Some((n, g)) = last_reference(bytes, key).filter(|(n, _)| objects.contains_key(n)) {
            trailer.push_str(&format!(" {} {n} {g} R", String::from_utf8_lossy(key)));
        }
    }
    if let Some(id) = last_id(bytes) {
        trailer.push_str(" /ID ");
        trailer.push_str(&id);
    }
    trailer.push_str(&format!(" >>\nstartxref\n{xref_at}\n%%EOF\n"));
    out.extend_from_slice(trailer.as_bytes());
    Some(Repaired { bytes: out, objects: objects.len() })
}

/// Every `N G obj` header, by object number: the offset and generation of its last definition
/// (a later one is an incremental update's).
fn scan_objects(bytes: &[u8]) -> BTreeMap<u32, (usize, u16)> {
    let mut objects = BTreeMap::new();
    let mut from = 0;
    while let Some(found) = find(bytes.get(from..).unwrap_or_default(), b"obj") {
        let at = from + found;
        from = at + 3;
        let after = bytes.get(at + 3).copied();
        if after.is_some_and(|c| c.is_ascii_alphanumeric()) {
            continue;
        }
        if let Some((start, number, generation)) = header_before(bytes, at) {
            objects.insert(number, (start, generation));
        }
    }
    objects
}

/// The `N G` before an `obj` keyword at `at`, with where `N` starts: digits, white space,
/// digits, white space, preceded by a delimiter (or the file's start), as in `endobj12 0 obj`.
fn header_before(bytes: &[u8], at: usize) -> Option<(usize, u32, u16)> {
    let digits_back = |end: usize| {
        let head = bytes.get(..end)?;
        let count = head.iter().rev().take_while(|c| c.is_ascii_digit()).count();
        (1..=10).contains(&count).then(|| end - count)
    };
    let spaces_back = |end: usize| {
        let head = bytes.get(..end)?;
        let count = head.iter().rev().take_while(|c| c.is_ascii_whitespace()).count();
        (count > 0).then(|| end - count)
    };
    let gen_end = spaces_back(at)?;
    let gen_start = digits_back(gen_end)?;
    let num_end = spaces_back(gen_start)?;
    let num_start = digits_back(num_end)?;
    // `endobj` or a name may run into the number; a letter other than `j` (of `endobj`) may not.
    if let Some(&c) = num_start.checked_sub(1).and_then(|i| bytes.get(i)) {
        if c.is_ascii_alphanumeric() && c != b'j' {
            return None;
        }
    }
    let number = std::str::from_utf8(bytes.get(num_start..num_end)?).ok()?.parse().ok()?;
    let generation = std::str::from_utf8(bytes.get(gen_start..gen_end)?).ok()?.parse().ok()?;
    Some((num_start, number, generation))
}

/// The reference after the last `key` in the file, as in `/Root 176 0 R`.
fn last_reference(bytes: &[u8], key: &[u8]) -> Option<(u32, u16)> {
    let mut end = bytes.len();
    while let Some(at) = rfind(bytes.get(..end)?, key) {
        end = at;
        let rest = bytes.get(at + key.len()..)?;
        if rest.first().is_some_and(|c| c.is_ascii_alphanumeric()) {
            continue;
        }
        let text = String::from_utf8_lossy(rest.get(..rest.len().min(40))?);
        let mut parts = text.split_whitespace();
        let (n, g, r) = (parts.next(), parts.next(), parts.next());
        let reference = (|| {
            let r = r?;
            (r == "R" || r.starts_with("R/") || r.starts_with("R>")).then_some(())?;
            Some((n?.parse().ok()?, g?.parse().ok()?))
        })();
        if reference.is_some() {
            return reference;
        }
    }
    None
}

/// The file's last `/ID [<…> <…>]` array, as written.
fn last_id(bytes: &[u8]) -> Option<String> {
    let at = rfind(bytes, b"/ID")?;
    let rest = bytes.get(at + 3..)?;
    let open = rest.iter().position(|&c| c == b'[').filter(|&p| p < 4)?;
    let close = rest.iter().take(200).position(|&c| c == b']')?;
    let array = std::str::from_utf8(rest.get(open..=close)?).ok()?;
    array.bytes().all(|c| c.is_ascii_hexdigit() || b"[]<> \r\n".contains(&c)).then(|| array.to_owned())
}

/// The object that says `/Type /Catalog` when no trailer names the root.
fn find_catalog(bytes: &[u8], objects: &BTreeMap<u32, (usize, u16)>) -> Option<(u32, u16)> {
    objects.iter().rev().find_map(|(&n, &(offset, g))| {
        let body = bytes.get(offset..)?;
        let end = find(body, b"endobj").unwrap_or(body.len()).min(4096);
        let compact: Vec<u8> = body.get(..end)?.iter().copied().filter(|c| !c.is_ascii_whitespace()).collect();
        find(&compact, b"/Type/Catalog").map(|_| (n, g))
    })
}

/// A page tree for a document whose own is lost: a new `Pages` node whose kids are the page
/// objects found, in object-number order (the order writers number them in). Returns how many
/// pages it holds; 0 leaves the document as it was.
pub fn rebuild_page_tree(doc: &mut lopdf::Document) -> usize {
    use lopdf::{Dictionary, Object};
    let pages: Vec<lopdf::ObjectId> = doc
        .objects
        .iter()
        .filter(|(_, o)| o.as_dict().is_ok_and(|d| d.get(b"Type").and_then(Object::as_name).ok() == Some(b"Page")))
        .map(|(&id, _)| id)
        .collect();
    if pages.is_empty() {
        return 0;
    }
    let tree = doc.new_object_id();
    for id in &pages {
        if let Ok(page) = doc.get_object_mut(*id).and_then(Object::as_dict_mut) {
            page.set("Parent", Object::Reference(tree));
        }
    }
    let mut node = Dictionary::new();
    node.set("Type", Object::Name(b"Pages".to_vec()));
    node.set("Kids", Object::Array(pages.iter().map(|&id| Object::Reference(id)).collect()));
    node.set("Count", Object::Integer(i64::try_from(pages.len()).unwrap_or(i64::MAX)));
    doc.objects.insert(tree, Object::Dictionary(node));
    let Ok(root) = doc.trailer.get(b"Root").and_then(Object::as_reference) else { return 0 };
    match doc.get_object_mut(root).and_then(Object::as_dict_mut) {
        Ok(catalog) => catalog.set("Pages", Object::Reference(tree)),
        Err(_) => return 0,
    }
    pages.len()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_headers_are_found_even_run_together_and_not_inside_endobj() {
        let pdf = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n3 1 obj\n(x)\nendobj\n";
        let objects = scan_objects(pdf);
        assert_eq!(objects.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(objects[&2].0, pdf.windows(7).position(|w| w == b"2 0 obj").unwrap());
        assert_eq!(objects[&3].1, 1);
        assert_eq!(find_catalog(pdf, &objects), Some((1, 0)));
        assert_eq!(last_reference(b"<</Size 3/Root 1 0 R/Info 9 0 R>>", b"/Root"), Some((1, 0)));
    }
}
