//! Stable error codes: one table maps each code to its HTTP status, and one
//! type carries a code, a message for the client and a cause for the log.

use std::fmt;

/// Every error a client can see. The string code is part of the API and never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    /// No API key or session, or one that is not valid.
    Unauthorized,
    /// A cookie-authenticated or cross-site request that changes state without the CSRF token.
    CsrfFailed,
    MissingFile,
    UnsupportedMediaType,
    PayloadTooLarge,
    DocumentNotFound,
    AnalysisNotFound,
    ComparisonNotFound,
    BatchNotFound,
    EvalNotFound,
    PdfEncrypted,
    PdfCorrupt,
    PdfNoTextLayer,
    DocumentEmpty,
    InvalidEncoding,
    DocumentTooLong,
    /// Parsing a file passed its time limit (`--parse-timeout-s`).
    ParseTimeout,
    /// Parsing a file passed its memory limit (`--parse-memory-mb`).
    ParseMemoryLimit,
    EngineBusy,
    EngineUnavailable,
    EngineFailed,
    /// A batch item that was running each time the server stopped, `MAX_ATTEMPTS` times.
    Interrupted,
    /// The data dir's disk is full (or over quota, or past a file-size limit).
    StorageFull,
    /// The data dir is read-only.
    StorageReadOnly,
    Internal,
}

impl ErrorCode {
    /// Every code, in the order of the table (the OpenAPI document lists them).
    pub const ALL: [ErrorCode; 26] = [
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthorized,
        ErrorCode::CsrfFailed,
        ErrorCode::MissingFile,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::PayloadTooLarge,
        ErrorCode::DocumentNotFound,
        ErrorCode::AnalysisNotFound,
        ErrorCode::ComparisonNotFound,
        ErrorCode::BatchNotFound,
        ErrorCode::EvalNotFound,
        ErrorCode::PdfEncrypted,
        ErrorCode::PdfCorrupt,
        ErrorCode::PdfNoTextLayer,
        ErrorCode::DocumentEmpty,
        ErrorCode::InvalidEncoding,
        ErrorCode::DocumentTooLong,
        ErrorCode::ParseTimeout,
        ErrorCode::ParseMemoryLimit,
        ErrorCode::EngineBusy,
        ErrorCode::EngineUnavailable,
        ErrorCode::EngineFailed,
        ErrorCode::Interrupted,
        ErrorCode::StorageFull,
        ErrorCode::StorageReadOnly,
        ErrorCode::Internal,
    ];

    /// The table: snake_case code and HTTP status. An exhaustive match, so a new
    /// code cannot ship without deciding both.
    pub fn info(self) -> (&'static str, u16) {
        match self {
            ErrorCode::InvalidRequest => ("invalid_request", 400),
            ErrorCode::Unauthorized => ("unauthorized", 401),
            ErrorCode::CsrfFailed => ("csrf_failed", 403),
            ErrorCode::MissingFile => ("missing_file", 400),
            ErrorCode::UnsupportedMediaType => ("unsupported_media_type", 415),
            ErrorCode::PayloadTooLarge => ("payload_too_large", 413),
            ErrorCode::DocumentNotFound => ("document_not_found", 404),
            ErrorCode::AnalysisNotFound => ("analysis_not_found", 404),
            ErrorCode::ComparisonNotFound => ("comparison_not_found", 404),
            ErrorCode::BatchNotFound => ("batch_not_found", 404),
            ErrorCode::EvalNotFound => ("eval_not_found", 404),
            ErrorCode::PdfEncrypted => ("pdf_encrypted", 422),
            ErrorCode::PdfCorrupt => ("pdf_corrupt", 422),
            ErrorCode::PdfNoTextLayer => ("pdf_no_text_layer", 422),
            ErrorCode::DocumentEmpty => ("document_empty", 422),
            ErrorCode::InvalidEncoding => ("invalid_encoding", 422),
            ErrorCode::DocumentTooLong => ("document_too_long", 422),
            ErrorCode::ParseTimeout => ("parse_timeout", 422),
            ErrorCode::ParseMemoryLimit => ("parse_memory_limit", 422),
            ErrorCode::EngineBusy => ("engine_busy", 503),
            ErrorCode::EngineUnavailable => ("engine_unavailable", 503),
            ErrorCode::EngineFailed => ("engine_failed", 502),
            ErrorCode::Interrupted => ("interrupted", 500),
            ErrorCode::StorageFull => ("storage_full", 507),
            ErrorCode::StorageReadOnly => ("storage_read_only", 503),
            ErrorCode::Internal => ("internal", 500),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.info().0
    }

    pub fn status(self) -> u16 {
        self.info().1
    }
}

/// An error with a stable code. `message` is safe to show to a client; `cause`
/// (if any) is only logged, never serialised.
#[derive(Debug)]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    pub cause: Option<anyhow::Error>,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), cause: None }
    }

    pub fn with_cause(mut self, cause: impl Into<anyhow::Error>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// An internal failure: the client gets a generic message, the log the cause. A failure to
    /// write the data dir because it is full or read-only says so, so the operator knows what to fix.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let cause = cause.into();
        let code = storage_failure(&cause);
        let message = match code {
            Some(ErrorCode::StorageFull) => "the server's disk is full; nothing was stored, retry when space is freed",
            Some(_) => "the server's storage is read-only; nothing was stored, reading still works",
            None => "internal error; see the server log",
        };
        Self::new(code.unwrap_or(ErrorCode::Internal), message).with_cause(cause)
    }
}

/// A full or read-only disk anywhere in the cause chain: an OS error (ENOSPC, EDQUOT, EFBIG,
/// EROFS) or SQLite's own codes for them.
fn storage_failure(e: &anyhow::Error) -> Option<ErrorCode> {
    e.chain().find_map(|cause| {
        // tantivy keeps its I/O errors behind an Arc.
        let io = cause
            .downcast_ref::<std::io::Error>()
            .or_else(|| cause.downcast_ref::<std::sync::Arc<std::io::Error>>().map(AsRef::as_ref));
        if let Some(io) = io {
            // The kind survives wrappers that add a path (tempfile, fs-err); the OS code may not.
            use std::io::ErrorKind as K;
            return match (io.kind(), io.raw_os_error()) {
                (K::StorageFull | K::QuotaExceeded | K::FileTooLarge, _) => Some(ErrorCode::StorageFull),
                (_, Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG)) => Some(ErrorCode::StorageFull),
                (K::ReadOnlyFilesystem, _) | (_, Some(libc::EROFS)) => Some(ErrorCode::StorageReadOnly),
                _ => None,
            };
        }
        match cause.downcast_ref::<rusqlite::Error>()?.sqlite_error_code()? {
            rusqlite::ErrorCode::DiskFull => Some(ErrorCode::StorageFull),
            rusqlite::ErrorCode::ReadOnly => Some(ErrorCode::StorageReadOnly),
            _ => None,
        }
    })
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)?;
        if let Some(cause) = &self.cause {
            write!(f, " ({cause:#})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_or_read_only_disk_is_named_even_behind_a_path_wrapper() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(AppError::internal(full).code, ErrorCode::StorageFull);
        // tempfile and fs-err keep the kind and hide the OS code behind their path message.
        let wrapped = std::io::Error::new(std::io::ErrorKind::ReadOnlyFilesystem, "at path /data/docs/x");
        let err = AppError::internal(anyhow::Error::from(wrapped).context("writing the original"));
        assert_eq!((err.code, err.code.status()), (ErrorCode::StorageReadOnly, 503));
        let other = AppError::internal(std::io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!((other.code, other.message.as_str()), (ErrorCode::Internal, "internal error; see the server log"));
    }
}
