//! Decompressing once, before the pages are read, the streams that pdf-extract would otherwise
//! decompress again on every page that uses them: fonts (`ToUnicode` maps, CMaps, font files),
//! ICC colour profiles (again on every colour change), form XObjects, and each page's content
//! (read twice: by pdf-extract and by docent's own checks). On a 183-page NIST report these
//! decompressions were a fifth of the parse.
//!
//! A stream is replaced by what `Stream::decompressed_content` gives, without its filter, so every
//! reader (pdf-extract's, lopdf's, poppler's on a written-out copy) sees the same bytes as before.
//! Images are left alone: they are large, and pdf-extract does not read them.

use std::collections::HashSet;

use lopdf::{Dictionary, Document, Object, ObjectId};

/// The most decompressed bytes kept in the document; past it, streams stay compressed and are
/// decompressed where they are read, as before. A decompression bomb fails where it did before.
const KEEP_BYTES: usize = 256 << 20;

/// Decompress in place the streams the pages' text extraction reads, in parallel.
pub fn decompress_for_reading(doc: &mut Document, pages: &[ObjectId]) {
    let ids = streams_read(doc, pages);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, ids.len().max(1));
    let per_thread = ids.len().div_ceil(threads).max(1);
    let share = KEEP_BYTES / threads;
    let shared: &Document = doc;
    let decompressed: Vec<(ObjectId, Vec<u8>)> = std::thread::scope(|scope| {
        let runs: Vec<_> = ids.chunks(per_thread).map(|run| scope.spawn(move || decompress_run(shared, run, share))).collect();
        runs.into_iter().flat_map(|run| run.join().unwrap_or_default()).collect()
    });
    for (id, content) in decompressed {
        if let Ok(stream) = doc.get_object_mut(id).and_then(Object::as_stream_mut) {
            stream.dict.remove(b"DecodeParms");
            stream.dict.remove(b"Filter");
            stream.set_content(content);
        }
    }
}

/// The decompressed content of the compressed streams in `run`, up to `budget` bytes in all.
fn decompress_run(doc: &Document, run: &[ObjectId], budget: usize) -> Vec<(ObjectId, Vec<u8>)> {
    let mut kept = 0usize;
    let mut out = Vec::new();
    for &id in run {
        let Ok(stream) = doc.get_object(id).and_then(Object::as_stream) else { continue };
        if !stream.is_compressed() {
            continue;
        }
        // Unsupported filters (DCT, JBIG2, ...) stay as they are, for readers to handle as before.
        let Ok(content) = stream.decompressed_content() else { continue };
        kept = kept.saturating_add(content.len());
        if kept > budget {
            break;
        }
        out.push((id, content));
    }
    out
}

/// Ids of the streams reached from the pages: resources first (shared by many pages), then the
/// pages' contents, each once.
fn streams_read(doc: &Document, pages: &[ObjectId]) -> Vec<ObjectId> {
    let mut walk = Walk { doc, seen: HashSet::new(), streams: Vec::new() };
    for &page in pages {
        if let Ok((own, inherited)) = doc.get_page_resources(page) {
            if let Some(resources) = own {
                walk.resources(resources);
            }
            for id in inherited {
                if let Ok(resources) = doc.get_object(id).and_then(Object::as_dict) {
                    walk.resources(resources);
                }
            }
        }
    }
    for &page in pages {
        for id in doc.get_page_contents(page) {
            walk.stream_id(id);
        }
    }
    walk.streams
}

struct Walk<'a> {
    doc: &'a Document,
    /// Objects already visited: streams, and font and XObject dictionaries.
    seen: HashSet<ObjectId>,
    streams: Vec<ObjectId>,
}

impl<'a> Walk<'a> {
    /// The object `o` refers to, with its id when it is an indirect object seen for the first time;
    /// `None` for one already visited.
    fn first_visit(&mut self, o: &'a Object) -> Option<(Option<ObjectId>, &'a Object)> {
        let (id, object) = self.doc.dereference(o).ok()?;
        match id {
            Some(id) if !self.seen.insert(id) => None,
            _ => Some((id, object)),
        }
    }

    /// A stream `o` refers to (streams are always indirect objects).
    fn stream(&mut self, o: &'a Object) {
        if let Some((Some(id), Object::Stream(_))) = self.first_visit(o) {
            self.streams.push(id);
        }
    }

    fn stream_id(&mut self, id: ObjectId) {
        if matches!(self.doc.get_object(id), Ok(Object::Stream(_))) && self.seen.insert(id) {
            self.streams.push(id);
        }
    }

    fn resources(&mut self, resources: &'a Dictionary) {
        let doc = self.doc;
        let entries = |key: &[u8]| {
            resources.get_deref(key, doc).and_then(Object::as_dict).map(|d| d.iter().map(|(_, v)| v).collect::<Vec<_>>())
        };
        for font in entries(b"Font").unwrap_or_default() {
            if let Some((_, Object::Dictionary(font))) = self.first_visit(font) {
                self.font(font);
            }
        }
        for space in entries(b"ColorSpace").unwrap_or_default() {
            self.colour_space(space);
        }
        for xobject in entries(b"XObject").unwrap_or_default() {
            self.form(xobject);
        }
    }

    /// What pdf-extract reads of a font: its `ToUnicode` map, a CMap as its encoding, and its
    /// descriptor's font files.
    fn font(&mut self, font: &'a Dictionary) {
        for key in [b"ToUnicode".as_slice(), b"Encoding"] {
            if let Ok(o) = font.get(key) {
                self.stream(o);
            }
        }
        if let Ok(descriptor) = font.get_deref(b"FontDescriptor", self.doc).and_then(Object::as_dict) {
            for key in [b"FontFile".as_slice(), b"FontFile2", b"FontFile3"] {
                if let Ok(o) = descriptor.get(key) {
                    self.stream(o);
                }
            }
        }
    }

    /// ICC profiles, alone (`[/ICCBased s]`) or as a separation's alternate space.
    fn colour_space(&mut self, space: &'a Object) {
        let Ok((_, Object::Array(parts))) = self.doc.dereference(space) else { return };
        match parts.as_slice() {
            [Object::Name(kind), profile, ..] if kind == b"ICCBased" => self.stream(profile),
            [Object::Name(kind), _, alternate, ..] if kind == b"Separation" => self.colour_space(alternate),
            _ => {}
        }
    }

    /// A form XObject, which pdf-extract reads as content, and the resources it has of its own.
    fn form(&mut self, xobject: &'a Object) {
        let Some((Some(id), Object::Stream(form))) = self.first_visit(xobject) else { return };
        if form.dict.get(b"Subtype").and_then(Object::as_name).is_ok_and(|s| s == b"Form") {
            self.streams.push(id);
            if let Ok(resources) = form.dict.get_deref(b"Resources", self.doc).and_then(Object::as_dict) {
                self.resources(resources);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fonts_and_contents_are_decompressed_and_read_the_same() {
        let bytes = include_bytes!("../../corpora/bitcoin.pdf");
        let mut doc = Document::load_mem(bytes).unwrap();
        let pages: Vec<ObjectId> = doc.get_pages().into_values().collect();
        let before: Vec<Vec<u8>> = pages.iter().map(|&p| doc.get_page_content(p).unwrap()).collect();
        let ids = streams_read(&doc, &pages);
        assert!(ids.len() > pages.len(), "fonts are found besides the contents");
        let compressed = |doc: &Document| ids.iter().filter(|&&id| doc.get_object(id).unwrap().as_stream().unwrap().is_compressed()).count();
        assert!(compressed(&doc) > 0);
        decompress_for_reading(&mut doc, &pages);
        assert_eq!(compressed(&doc), 0);
        let after: Vec<Vec<u8>> = pages.iter().map(|&p| doc.get_page_content(p).unwrap()).collect();
        assert_eq!(before, after);
    }
}
