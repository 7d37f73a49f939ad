//! PDF text extraction with `pdf-extract`, page by page, with specific errors
//! for encrypted, corrupt and image-only files.

use crate::error::{AppError, AppResult, ErrorCode};

/// Raw text of each page, in page order. A page that fails to extract yields
/// an empty string and a warning, so one bad page does not lose the document.
pub fn extract_pages(bytes: &[u8], password: Option<&str>) -> AppResult<(Vec<String>, Vec<String>)> {
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

fn extract_pages_inner(bytes: &[u8], password: Option<&str>) -> AppResult<(Vec<String>, Vec<String>)> {
    let doc = lopdf::Document::load_mem(bytes).map_err(|e| classify_load_error(&e))?;
    // A password matters only for an encrypted file; many are encrypted with an
    // empty user password (owner restrictions only).
    let doc = if doc.is_encrypted() {
        lopdf::Document::load_mem_with_options(bytes, lopdf::LoadOptions::with_password(password.unwrap_or("")))
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
    let page_numbers: Vec<u32> = doc.get_pages().keys().copied().collect();
    if page_numbers.is_empty() {
        return Err(AppError::new(ErrorCode::PdfCorrupt, "the PDF has no pages"));
    }
    let mut pages = Vec::with_capacity(page_numbers.len());
    let mut warnings = Vec::new();
    for number in page_numbers {
        let mut text = String::new();
        let outcome = {
            let mut out = pdf_extract::PlainTextOutput::new(&mut text);
            pdf_extract::output_doc_page(&doc, &mut out, number)
        };
        if let Err(e) = outcome {
            tracing::warn!(page = number, error = %e, "page extraction failed");
            warnings.push(format!("page {number}: text could not be extracted"));
            text.clear();
        }
        pages.push(text);
    }
    Ok((pages, warnings))
}

fn classify_load_error(e: &lopdf::Error) -> AppError {
    let detail = e.to_string();
    if detail.to_lowercase().contains("decrypt") || detail.to_lowercase().contains("encrypt") {
        return AppError::new(ErrorCode::PdfEncrypted, "the PDF is encrypted and cannot be opened");
    }
    tracing::info!(error = %detail, "PDF rejected as corrupt");
    AppError::new(ErrorCode::PdfCorrupt, "the PDF is damaged and could not be read")
}
