//! Parsers: PDF, plain text and Markdown to one normalised text with a page map.

mod content;
mod layout;
mod normalize;
mod ocr;
mod pdf;
mod repair;
mod security;
mod streams;
mod worker;

pub use normalize::normalize_page;
pub use ocr::Ocr;
pub use worker::{worker_main, Isolation};

use crate::domain::{PageSpan, ParsedText};
use crate::error::{AppError, AppResult, ErrorCode};

/// The kinds of file docent reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Pdf,
    PlainText,
    Markdown,
}

impl MediaType {
    pub fn as_mime(self) -> &'static str {
        match self {
            MediaType::Pdf => "application/pdf",
            MediaType::PlainText => "text/plain",
            MediaType::Markdown => "text/markdown",
        }
    }

    /// The type a stored document's `media_type` names.
    pub fn from_mime(mime: &str) -> Option<Self> {
        [Self::Pdf, Self::PlainText, Self::Markdown].into_iter().find(|m| m.as_mime() == mime)
    }

    pub fn extension(self) -> &'static str {
        match self {
            MediaType::Pdf => "pdf",
            MediaType::PlainText => "txt",
            MediaType::Markdown => "md",
        }
    }
}

/// Decide the type from the content first and the file name second: a file
/// named `.pdf` that is not a PDF is refused, and a PDF is read as one whatever its name.
pub fn sniff(filename: &str, bytes: &[u8]) -> AppResult<MediaType> {
    let head = bytes.get(..1024).unwrap_or(bytes);
    let is_pdf = head.windows(5).any(|w| w == b"%PDF-");
    let lower = filename.to_lowercase();
    if is_pdf {
        return Ok(MediaType::Pdf);
    }
    if lower.ends_with(".pdf") {
        return Err(AppError::new(ErrorCode::PdfCorrupt, "the file is named .pdf but is not a PDF (no %PDF- header)"));
    }
    let is_markdown = [".md", ".markdown"].iter().any(|e| lower.ends_with(e));
    let looks_textual = decode_text(bytes).is_ok();
    match (is_markdown, looks_textual) {
        (true, true) => Ok(MediaType::Markdown),
        (false, true) => Ok(MediaType::PlainText),
        (_, false) => Err(AppError::new(
            ErrorCode::UnsupportedMediaType,
            "unsupported file type: docent reads PDF, plain text (UTF-8 or UTF-16) and Markdown",
        )),
    }
}

/// How to read a file beyond its bytes.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions<'a> {
    /// Opens encrypted PDFs.
    pub password: Option<&'a str>,
    /// Reads PDF pages without a usable text layer; `None` leaves them empty.
    pub ocr: Option<Ocr>,
}

/// Parse a file of a known type into normalised text, without OCR. `password` opens encrypted PDFs.
pub fn parse(media: MediaType, bytes: &[u8], password: Option<&str>) -> AppResult<ParsedText> {
    parse_with(media, bytes, &ParseOptions { password, ocr: None })
}

/// Parse a file of a known type into normalised text.
pub fn parse_with(media: MediaType, bytes: &[u8], options: &ParseOptions<'_>) -> AppResult<ParsedText> {
    let (raw_pages, mut warnings) = match media {
        MediaType::Pdf => {
            let pdf::PdfText { mut pages, mut warnings, decrypted } = pdf::extract_pages(bytes, options.password)?;
            if let Some(ocr) = &options.ocr {
                warnings.extend(ocr_empty_pages(ocr, decrypted.as_deref().unwrap_or(bytes), &mut pages));
            }
            (pages, warnings)
        }
        MediaType::PlainText | MediaType::Markdown => {
            // A form feed is the page break of plain-text documents (RFCs, printouts).
            let text = decode_text(bytes)?;
            (text.split('\u{000C}').map(str::to_owned).collect(), Vec::new())
        }
    };
    let parsed = assemble(&raw_pages);
    if parsed.text.trim().is_empty() {
        return Err(match media {
            MediaType::Pdf if options.ocr.is_some() => AppError::new(
                ErrorCode::PdfNoTextLayer,
                format!("the PDF has {} page(s) with no text layer, and OCR found no text on them", raw_pages.len()),
            ),
            MediaType::Pdf => AppError::new(
                ErrorCode::PdfNoTextLayer,
                format!(
                    "the PDF has {} page(s) but no text layer (scanned images?) and OCR is not available here; \
                     install Tesseract or OCR the file first",
                    raw_pages.len()
                ),
            ),
            _ => AppError::new(ErrorCode::DocumentEmpty, "the document contains no text"),
        });
    }
    warnings.extend(quality_warnings(&parsed.text));
    Ok(ParsedText { warnings, ..parsed })
}

/// OCR the pages that have no text (scans, scanned signature pages). Pages with a text layer
/// keep it, however poor: a heuristic that swaps a real text layer for OCR output would lose exact
/// text; a poor one is flagged by `quality_warnings` instead. Returns warnings that say which
/// pages were read by OCR and which could not be.
fn ocr_empty_pages(ocr: &Ocr, pdf: &[u8], pages: &mut [String]) -> Vec<String> {
    let empty: Vec<u32> =
        (1u32..).zip(pages.iter()).filter(|(_, text)| text.trim().is_empty()).map(|(n, _)| n).collect();
    if empty.is_empty() {
        return Vec::new();
    }
    let mut read_pages = Vec::new();
    let mut warnings = Vec::new();
    for (&number, read) in empty.iter().zip(ocr.read_pages(pdf, &empty)) {
        let Some(page) = usize::try_from(number).ok().and_then(|n| pages.get_mut(n.saturating_sub(1))) else {
            continue;
        };
        match read {
            Ok(text) if !text.trim().is_empty() => {
                *page = text;
                read_pages.push(number.to_string());
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(page = number, error = %e, "OCR failed");
                warnings.push(format!("page {number}: OCR failed"));
            }
        }
    }
    if !read_pages.is_empty() {
        warnings.push(format!(
            "ocr: page(s) {} gave no text, so Tesseract ({}) read them from the page image; quotes may differ from the print",
            read_pages.join(", "),
            ocr.languages
        ));
    }
    warnings
}

/// Join normalised pages with a blank line and record where each page lies.
fn assemble(raw_pages: &[String]) -> ParsedText {
    let mut text = String::new();
    let mut pages = Vec::with_capacity(raw_pages.len());
    for (i, raw) in raw_pages.iter().enumerate() {
        let page = normalize_page(raw);
        if !text.is_empty() && !page.is_empty() {
            text.push_str("\n\n");
        }
        let start = text.len();
        text.push_str(&page);
        let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
        pages.push(PageSpan { number, start, end: text.len() });
    }
    ParsedText { text, pages, warnings: Vec::new() }
}

fn decode_text(bytes: &[u8]) -> AppResult<String> {
    let invalid =
        || AppError::new(ErrorCode::InvalidEncoding, "the text is not valid UTF-8 or UTF-16 (with a byte-order mark)");
    let utf16 = |le: bool, body: &[u8]| -> AppResult<String> {
        let units: Vec<u16> = body
            .chunks_exact(2)
            .map(|c| match c {
                [a, b] if le => u16::from_le_bytes([*a, *b]),
                [a, b] => u16::from_be_bytes([*a, *b]),
                _ => 0,
            })
            .collect();
        String::from_utf16(&units).map_err(|_| invalid())
    };
    let text = match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => std::str::from_utf8(rest).map(str::to_owned).map_err(|_| invalid())?,
        [0xFF, 0xFE, rest @ ..] => utf16(true, rest)?,
        [0xFE, 0xFF, rest @ ..] => utf16(false, rest)?,
        _ => std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| invalid())?,
    };
    if text.contains('\0') {
        return Err(invalid());
    }
    Ok(text)
}

/// Flag text that is probably a bad OCR layer or mis-encoded fonts: few letters
/// among the visible characters.
fn quality_warnings(text: &str) -> Vec<String> {
    let visible = text.chars().filter(|c| !c.is_whitespace()).count();
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    if visible > 200 && letters * 2 < visible {
        let share = 100 * letters / visible.max(1);
        vec![format!(
            "low_quality_text: only {share}% of visible characters are letters (bad OCR layer or font encoding?)"
        )]
    } else {
        Vec::new()
    }
}

/// Word count as a reader would count it.
pub fn count_words(text: &str) -> usize {
    text.split_whitespace().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_feeds_split_plain_text_into_pages_with_exact_offsets() {
        let parsed = parse(MediaType::PlainText, b"first page\x0csecond  page", None).unwrap();
        assert_eq!(parsed.text, "first page\n\nsecond page");
        let p2 = parsed.pages[1];
        assert_eq!(parsed.text.get(p2.start..p2.end), Some("second page"));
    }

    #[test]
    fn a_fake_pdf_is_refused_by_content_not_name() {
        let err = sniff("contract.pdf", b"hello").unwrap_err();
        assert_eq!(err.code, ErrorCode::PdfCorrupt);
        assert_eq!(sniff("notes.bin", b"%PDF-1.7 ...").unwrap(), MediaType::Pdf);
    }

    #[test]
    fn binary_and_empty_files_get_specific_errors() {
        assert_eq!(sniff("x.bin", &[0xff, 0x00, 0x12]).unwrap_err().code, ErrorCode::UnsupportedMediaType);
        assert_eq!(parse(MediaType::PlainText, b" \n\n ", None).unwrap_err().code, ErrorCode::DocumentEmpty);
    }

    #[test]
    fn utf16_with_bom_is_decoded() {
        let mut bytes = vec![0xFF, 0xFE];
        for u in "héllo".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(parse(MediaType::PlainText, &bytes, None).unwrap().text, "héllo");
    }
}
