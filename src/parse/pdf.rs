//! PDF text extraction with `pdf-extract`, page by page, with specific errors
//! for encrypted, corrupt and image-only files.

use super::{content, layout, repair, security, streams};
use crate::error::{AppError, AppResult, ErrorCode};

/// What pdf-extract (and poppler, for pages it cannot read) found in a PDF.
pub struct PdfText {
    /// Raw text of each page, in page order.
    pub pages: Vec<String>,
    pub warnings: Vec<String>,
    /// An encrypted file, decrypted: what other readers (OCR) get instead of the original and its
    /// password, which would otherwise travel on their command lines.
    pub decrypted: Option<Vec<u8>>,
}

/// Raw text of each page, in page order. A page that fails to extract yields
/// an empty string and a warning, so one bad page does not lose the document.
pub fn extract_pages(bytes: &[u8], password: Option<&str>) -> AppResult<PdfText> {
    // pdf-extract and lopdf can panic on hostile input; a panic must become an
    // error for this upload, never take down the worker thread that runs it.
    let result = std::panic::catch_unwind(|| extract_pages_inner(bytes, password));
    match result {
        Ok(r) => r,
        Err(_) => Err(AppError::new(
            ErrorCode::PdfCorrupt,
            "the PDF could not be parsed: the parser stopped on malformed content",
        )),
    }
}

fn extract_pages_inner(bytes: &[u8], password: Option<&str>) -> AppResult<PdfText> {
    let mut warnings = Vec::new();
    let (doc, repaired) = load_or_repair(bytes)?;
    if let Some(r) = &repaired {
        warnings.push(format!(
            "repaired: the PDF's cross-reference table is damaged; docent rebuilt it from the {} objects \
             found in the file (as poppler does), so check quotes against the original",
            r.objects
        ));
    }
    let bytes = repaired.as_ref().map_or(bytes, |r| r.bytes.as_slice());
    // A password matters only for an encrypted file; many are encrypted with an
    // empty user password (owner restrictions only).
    let encrypted = doc.is_encrypted();
    let mut doc = if encrypted {
        // An owner password opens a revision 2–4 file through the user password it unlocks.
        let given = password.unwrap_or("");
        let opening = security::user_password_from_owner(&doc, given).unwrap_or_else(|| given.to_owned());
        lopdf::Document::load_mem_with_options(bytes, lopdf::LoadOptions::with_password(&opening))
            .map_err(|e| {
                tracing::info!(error = %e, "PDF did not open with the password");
                AppError::new(
                    ErrorCode::PdfEncrypted,
                    if password.is_some() {
                        "the PDF is encrypted and the supplied password does not open it"
                    } else {
                        "the PDF is encrypted with a password; supply it to open the file"
                    },
                )
            })?
    } else {
        doc
    };
    if doc.get_pages().is_empty() {
        let found = repair::rebuild_page_tree(&mut doc);
        if found > 0 {
            warnings.push(format!(
                "repaired: the PDF's page tree is lost; its {found} page object(s) were read in the order \
                 they are numbered, which may not be the printed order"
            ));
        }
    }
    let page_ids: Vec<(u32, lopdf::ObjectId)> = doc.get_pages().into_iter().collect();
    let page_numbers: Vec<u32> = page_ids.iter().map(|&(n, _)| n).collect();
    if page_numbers.is_empty() {
        return Err(AppError::new(ErrorCode::PdfCorrupt, "the PDF has no pages, and none could be found in it"));
    }
    streams::decompress_for_reading(&mut doc, &page_ids.iter().map(|&(_, id)| id).collect::<Vec<_>>());
    let mut reads = read_pages(&doc, &page_ids);
    // Pages that show text with `'` or `"`: rewritten into operators pdf-extract reads, read again.
    for (read, &(number, id)) in reads.iter_mut().zip(&page_ids) {
        if read.quote_operators && content::rewrite_page(&mut doc, id) {
            let empty = lopdf::Dictionary::new();
            read.text = extract_page(&mut pdf_extract::PageReader::new(&doc, &empty), number, id);
        }
    }
    // Pages drawn with a CJK font that has no Unicode map go to poppler below, also when
    // pdf-extract could not read them at all (it stops on some of those fonts' encodings).
    let unmapped: Vec<u32> =
        doc.get_pages().iter().filter(|(_, &id)| has_unmapped_cjk_font(&doc, id)).map(|(&n, _)| n).collect();
    if reads.iter().zip(&page_numbers).all(|(r, n)| r.text.is_err() && !unmapped.contains(n)) {
        return Err(AppError::new(
            ErrorCode::PdfCorrupt,
            "the PDF could not be parsed: the parser stopped on malformed content on every page",
        ));
    }
    let mut pages = Vec::with_capacity(reads.len());
    let scanned: Vec<String> =
        page_numbers.iter().zip(&reads).filter(|(_, r)| r.ocr_layer).map(|(n, _)| n.to_string()).collect();
    if !scanned.is_empty() {
        warnings.push(format!(
            "ocr_layer: the text of page(s) {} is an invisible OCR layer over a scanned image, made before upload; \
             its accuracy is unknown, so check quotes against the original page",
            scanned.join(", ")
        ));
    }
    // Pages pdf-extract stopped on (it panics on some malformed content) go to poppler too.
    let mut failed = Vec::new();
    for (number, read) in page_numbers.iter().zip(reads) {
        match read.text {
            Ok(text) => pages.push(text),
            Err(e) => {
                tracing::warn!(page = number, error = %e, "page extraction failed");
                if !unmapped.contains(number) {
                    failed.push(*number);
                }
                pages.push(String::new());
            }
        }
    }
    // lopdf decrypted every object on loading and dropped the encryption dictionary. A copy that
    // cannot be written out costs only what poppler would have added (OCR, CJK pages), not the text.
    let decrypted = if encrypted {
        let mut plain = Vec::new();
        match doc.save_to(&mut plain) {
            Ok(()) => Some(plain),
            Err(e) => {
                tracing::warn!(error = %e, "the decrypted PDF could not be written out for poppler");
                None
            }
        }
    } else {
        None
    };
    if !unmapped.is_empty() || !failed.is_empty() {
        let readable = decrypted.as_deref().unwrap_or(bytes);
        let both: Vec<u32> = unmapped.iter().chain(&failed).copied().collect();
        let read = reread_pages("pdftotext", readable, &page_numbers, &both, &mut pages);
        if !unmapped.is_empty() {
            warnings.push(cjk_warning(&unmapped, read));
        }
        if read {
            if !failed.is_empty() {
                warnings.push(format!(
                    "page(s) {}: the PDF parser stopped on malformed content there; poppler's pdftotext read them",
                    page_ranges(&failed)
                ));
            }
        } else {
            warnings.extend(failed.iter().map(|number| format!("page {number}: text could not be extracted")));
        }
    }
    Ok(PdfText { pages, warnings, decrypted })
}

/// CID orderings whose character collections poppler maps to Unicode without the font's help.
const CJK_ORDERINGS: &[&[u8]] = &[b"GB1", b"CNS1", b"Japan1", b"Korea1"];

/// A page that draws with a CJK CID font that has no `ToUnicode` map (common in PDFs made with
/// Adobe's CJK fonts). pdf-extract drops its glyphs; poppler maps them through the Adobe character
/// collection the font names.
fn has_unmapped_cjk_font(doc: &lopdf::Document, page: lopdf::ObjectId) -> bool {
    let Ok(fonts) = doc.get_page_fonts(page) else { return false };
    fonts.values().any(|font| {
        let name = |key: &[u8]| font.get_deref(key, doc).and_then(lopdf::Object::as_name).ok();
        if name(b"Subtype") != Some(b"Type0") || font.has(b"ToUnicode") {
            return false;
        }
        let ordering = font
            .get_deref(b"DescendantFonts", doc)
            .and_then(lopdf::Object::as_array)
            .ok()
            .and_then(|d| d.first())
            .and_then(|d| doc.dereference(d).ok())
            .and_then(|(_, d)| d.as_dict().ok())
            .and_then(|d| d.get_deref(b"CIDSystemInfo", doc).and_then(lopdf::Object::as_dict).ok())
            .and_then(|info| info.get_deref(b"Ordering", doc).ok())
            .and_then(|o| o.as_str().or_else(|_| o.as_name()).ok());
        ordering.is_some_and(|o| CJK_ORDERINGS.contains(&o))
    })
}

/// Replace the text of the `wanted` pages with poppler's `pdftotext`, where it is installed and
/// counts the same pages; whether it did. `pdf` is not encrypted.
fn reread_pages(program: &str, pdf: &[u8], page_numbers: &[u32], wanted: &[u32], pages: &mut [String]) -> bool {
    match pdftotext(program, pdf) {
        // One page per form feed; a count that differs from the document's means the two
        // parsers disagree about the pages, and pdf-extract's text stays.
        Ok(poppler) if poppler.len() == page_numbers.len() => {
            for ((number, page), text) in page_numbers.iter().zip(pages.iter_mut()).zip(poppler) {
                if wanted.contains(number) {
                    *page = text;
                }
            }
            return true;
        }
        Ok(poppler) => {
            tracing::warn!(pages = page_numbers.len(), poppler = poppler.len(), "pdftotext counted other pages")
        }
        Err(e) => tracing::warn!(error = %e, "pdftotext did not read the PDF"),
    }
    false
}

/// What the reader is told about the `unmapped` pages: poppler read them, or their CJK text is
/// missing.
fn cjk_warning(unmapped: &[u32], read: bool) -> String {
    let list = page_ranges(unmapped);
    if read {
        format!(
            "cjk_fonts: page(s) {list} use CJK fonts without a Unicode map, which pdf-extract cannot \
             read; poppler's pdftotext read them"
        )
    } else {
        format!(
            "cjk_fonts: page(s) {list} use CJK fonts without a Unicode map; their CJK text is missing \
             (poppler's pdftotext, from Debian's poppler-utils, reads it but could not be used here)"
        )
    }
}

/// `1–29, 31` for pages 1 to 29 and 31 (sorted page numbers).
fn page_ranges(pages: &[u32]) -> String {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &n in pages {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == n => *end = n,
            _ => runs.push((n, n)),
        }
    }
    runs.iter().map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}–{b}") }).collect::<Vec<_>>().join(", ")
}

/// The text of every page by poppler's `pdftotext`, in reading order.
fn pdftotext(program: &str, pdf: &[u8]) -> Result<Vec<String>, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut file = tempfile::NamedTempFile::new().map_err(|e| format!("no scratch file: {e}"))?;
    file.write_all(pdf).map_err(|e| format!("could not write the PDF: {e}"))?;
    let mut command = Command::new(program);
    command.args(["-q", "-enc", "UTF-8"]);
    let out = command.arg(file.path()).arg("-").stdin(Stdio::null()).output().map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{program} exited with {}", out.status));
    }
    let text = String::from_utf8(out.stdout).map_err(|_| "pdftotext wrote invalid UTF-8".to_owned())?;
    // pdftotext ends every page with a form feed.
    let mut pages: Vec<String> = text.split('\u{c}').map(str::to_owned).collect();
    if pages.last().is_some_and(|p| p.trim().is_empty()) {
        pages.pop();
    }
    Ok(pages)
}

/// What one page gave: its text, and what its content says about it.
struct PageRead {
    text: Result<String, String>,
    /// An invisible OCR layer over a scanned image.
    ocr_layer: bool,
    /// Text shown with `'` or `"`, which pdf-extract skips.
    quote_operators: bool,
}

/// Every page, in parallel, a contiguous run per core (a 183-page report parses in about half
/// the time on two cores, `docent bench cpu`), each run with one pdf-extract reader, so that a
/// font is made once per run rather than once per page; each page's content is read once here
/// for what is looked up in it, besides pdf-extract's own reading.
fn read_pages(doc: &lopdf::Document, pages: &[(u32, lopdf::ObjectId)]) -> Vec<PageRead> {
    let read_run = |run: &[(u32, lopdf::ObjectId)]| {
        let empty = lopdf::Dictionary::new();
        let mut reader = pdf_extract::PageReader::new(doc, &empty);
        run.iter()
            .map(|&(number, id)| {
                let content = doc.get_page_content(id).unwrap_or_default();
                PageRead {
                    text: extract_page(&mut reader, number, id),
                    ocr_layer: has_ocr_layer(&content),
                    quote_operators: content::has_quote_operator(&content),
                }
            })
            .collect::<Vec<_>>()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, pages.len().max(1));
    let per_thread = pages.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let runs: Vec<_> = pages.chunks(per_thread).map(|run| (run.len(), scope.spawn(|| read_run(run)))).collect();
        runs.into_iter()
            .flat_map(|(len, run)| {
                run.join().unwrap_or_else(|_| {
                    let stopped = || PageRead {
                        text: Err("the extraction thread stopped".to_owned()),
                        ocr_layer: false,
                        quote_operators: false,
                    };
                    (0..len).map(|_| stopped()).collect()
                })
            })
            .collect()
    })
}

/// One page's text. pdf-extract panics on some malformed content: that page is lost, with a
/// warning, and the rest of the document is kept. The reader keeps only fonts it made whole, so
/// it reads the next page as a fresh one would.
fn extract_page(reader: &mut pdf_extract::PageReader<'_>, number: u32, id: lopdf::ObjectId) -> Result<String, String> {
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut page = layout::PageText::default();
        reader.output_page(&mut page, number, id).map(|()| page.finish()).map_err(|e| e.to_string())
    }));
    run.unwrap_or_else(|_| Err("the parser stopped on malformed content".to_owned()))
}

/// A scanner's OCR layer: an image drawn on the page and text in render mode 3 (invisible).
fn has_ocr_layer(content: &[u8]) -> bool {
    let invisible = content.windows(5).any(|w| matches!(w, [b' ' | b'\n' | b'\r', b'3', b' ', b'T', b'r']));
    let draws_xobject = content.windows(3).any(|w| w == b" Do");
    invisible && draws_xobject
}

/// The document, rebuilt (`Some`) when its cross-reference table could not be read. An encrypted
/// file that cannot be opened is not rebuilt: its objects are unreadable without the key anyway.
fn load_or_repair(bytes: &[u8]) -> AppResult<(lopdf::Document, Option<repair::Repaired>)> {
    let error = match lopdf::Document::load_mem(bytes) {
        Ok(doc) => return Ok((doc, None)),
        Err(e) => classify_load_error(&e),
    };
    if error.code == ErrorCode::PdfEncrypted {
        return Err(error);
    }
    let Some(repaired) = repair::rebuild_xref(bytes) else { return Err(error) };
    match lopdf::Document::load_mem(&repaired.bytes) {
        Ok(doc) => Ok((doc, Some(repaired))),
        Err(e) => {
            tracing::info!(error = %e, "the rebuilt PDF did not load either");
            Err(error)
        }
    }
}

fn classify_load_error(e: &lopdf::Error) -> AppError {
    let detail = e.to_string();
    if detail.to_lowercase().contains("decrypt") || detail.to_lowercase().contains("encrypt") {
        return AppError::new(ErrorCode::PdfEncrypted, "the PDF is encrypted and cannot be opened");
    }
    tracing::info!(error = %detail, "PDF rejected as corrupt");
    AppError::new(ErrorCode::PdfCorrupt, "the PDF is damaged and could not be read")
}

#[cfg(test)]
mod tests {
    use super::*;

    const YELLOWPAPER_ZH: &[u8] = include_bytes!("../../corpora/ethereum-yellowpaper-zh.pdf");

    #[test]
    fn poppler_reads_an_encrypted_pdf_decrypted_in_process_without_its_password() {
        let original = include_bytes!("../../corpora/encrypted_rc4_userpw-openpassword.pdf");
        let text = extract_pages(original, Some("openpassword")).unwrap();
        let decrypted = text.decrypted.expect("an encrypted file is handed on decrypted");
        let with_password = std::process::Command::new("pdftotext")
            .args(["-q", "-enc", "UTF-8", "-upw", "openpassword"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/corpora/encrypted_rc4_userpw-openpassword.pdf"))
            .arg("-")
            .output()
            .expect("pdftotext (poppler-utils) is installed by scripts/test.sh");
        assert!(with_password.status.success());
        let expected = String::from_utf8(with_password.stdout).unwrap();
        assert!(expected.split_whitespace().count() > 50, "{expected}");
        assert_eq!(pdftotext("pdftotext", &decrypted).unwrap().concat(), expected.replace('\u{c}', ""));
        // Without the password poppler cannot read the original at all.
        assert!(pdftotext("pdftotext", original).is_err());
        assert!(extract_pages(include_bytes!("../../corpora/bitcoin.pdf"), None).unwrap().decrypted.is_none());
    }

    #[test]
    fn one_reader_for_many_pages_gives_each_page_the_text_a_fresh_reader_gives() {
        // The German notes make pdf-extract panic on page 14: the reader is used on after it.
        for bytes in [
            include_bytes!("../../corpora/german_geotopo_117p.pdf").as_slice(),
            include_bytes!("../../corpora/bitcoin_ar.pdf"),
        ] {
            let doc = lopdf::Document::load_mem(bytes).unwrap();
            let empty = lopdf::Dictionary::new();
            let mut shared = pdf_extract::PageReader::new(&doc, &empty);
            let mut failed = 0;
            for (number, id) in doc.get_pages() {
                let alone = extract_page(&mut pdf_extract::PageReader::new(&doc, &empty), number, id);
                failed += usize::from(alone.is_err());
                assert_eq!(extract_page(&mut shared, number, id), alone, "page {number}");
            }
            assert!(failed < doc.get_pages().len() / 2);
        }
    }

    #[test]
    fn page_lists_are_written_as_ranges() {
        assert_eq!(page_ranges(&[1, 2, 3, 5, 7, 8]), "1–3, 5, 7–8");
        assert_eq!(page_ranges(&[4]), "4");
    }

    #[test]
    fn cjk_fonts_without_a_unicode_map_are_found_and_latin_fonts_are_not() {
        let doc = lopdf::Document::load_mem(YELLOWPAPER_ZH).unwrap();
        assert!(doc.get_pages().values().all(|&id| has_unmapped_cjk_font(&doc, id)));
        let doc = lopdf::Document::load_mem(include_bytes!("../../corpora/bitcoin.pdf")).unwrap();
        assert!(!doc.get_pages().values().any(|&id| has_unmapped_cjk_font(&doc, id)));
    }

    #[test]
    fn without_pdftotext_the_pages_keep_their_text_and_the_warning_says_chinese_is_missing() {
        let mut pages = vec!["first".to_owned(), "second".to_owned()];
        let read = reread_pages("docent-no-such-program", YELLOWPAPER_ZH, &[1, 2], &[2], &mut pages);
        assert!(!read);
        assert_eq!(pages, ["first", "second"]);
        let warning = cjk_warning(&[2], read);
        assert!(warning.starts_with("cjk_fonts: page(s) 2 ") && warning.contains("missing"), "{warning}");
    }
}
