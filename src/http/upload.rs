//! Reading a multipart upload: the `file` field (bounded in size, counted as
//! it streams) and an optional `password` field for encrypted PDFs.

use actix_multipart::Multipart;
use futures_util::StreamExt;

use crate::error::{AppError, AppResult, ErrorCode};

pub struct Upload {
    pub filename: String,
    pub bytes: Vec<u8>,
    pub password: Option<String>,
}

const MAX_PASSWORD_BYTES: usize = 1024;

pub async fn read(mut multipart: Multipart, max_bytes: usize) -> AppResult<Upload> {
    let bad = |m: &str| AppError::new(ErrorCode::InvalidRequest, m.to_owned());
    let mut file: Option<(String, Vec<u8>)> = None;
    let mut password = None;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|e| bad("malformed multipart body").with_cause(anyhow::anyhow!("{e}")))?;
        let name = field.name().unwrap_or_default().to_owned();
        let limit = match name.as_str() {
            "file" if file.is_none() => max_bytes,
            "file" => return Err(bad("send one \"file\" field per upload")),
            "password" => MAX_PASSWORD_BYTES,
            _ => {
                return Err(bad(&format!(
                    "unexpected form field \"{name}\" (expected \"file\" and optional \"password\")"
                )))
            }
        };
        let filename = field.content_disposition().and_then(|cd| cd.get_filename().map(str::to_owned));
        let Ok(buf) = collect(&mut field, limit, &mut 0, usize::MAX).await? else {
            return Err(if name == "file" {
                AppError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the file is larger than {} MiB", max_bytes / (1024 * 1024)),
                )
            } else {
                bad("the password field is too long")
            });
        };
        if name == "file" {
            file = Some((filename.unwrap_or_else(|| "upload".to_owned()), buf));
        } else {
            password =
                Some(String::from_utf8(buf).map_err(|_| bad("the password is not UTF-8"))?).filter(|p| !p.is_empty());
        }
    }
    let (filename, bytes) =
        file.ok_or_else(|| AppError::new(ErrorCode::MissingFile, "no \"file\" field in the upload"))?;
    if bytes.is_empty() && filename == "upload" {
        return Err(AppError::new(ErrorCode::MissingFile, "choose a file to upload"));
    }
    Ok(Upload { filename, bytes, password })
}

/// A batch upload: repeated `file` fields, and either an `options` JSON field (the API) or the
/// batch form's fields (`pipeline`, repeated, `task`, `question`, `chunked_model`).
pub struct BatchUpload {
    pub files: Vec<crate::service::BatchFile>,
    pub options: Option<String>,
    pub form: Vec<(String, String)>,
}

const FORM_FIELDS: &[&str] = &["pipeline", "task", "question", "chunked_model"];

const MAX_OPTIONS_BYTES: usize = 64 * 1024;

/// Read a batch upload; each file is bounded by `max_file` bytes, all of them by `max_total`.
pub async fn read_batch(mut multipart: Multipart, max_file: usize, max_total: usize) -> AppResult<BatchUpload> {
    let bad = |m: &str| AppError::new(ErrorCode::InvalidRequest, m.to_owned());
    let mut files = Vec::new();
    let mut options = None;
    let mut form = Vec::new();
    let mut total = 0usize;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|e| bad("malformed multipart body").with_cause(anyhow::anyhow!("{e}")))?;
        let name = field.name().unwrap_or_default().to_owned();
        let limit = match name.as_str() {
            "file" if files.len() >= crate::service::MAX_BATCH_FILES => {
                return Err(bad(&format!("a batch holds at most {} files", crate::service::MAX_BATCH_FILES)))
            }
            "file" => max_file,
            "options" => MAX_OPTIONS_BYTES,
            n if FORM_FIELDS.contains(&n) => MAX_OPTIONS_BYTES,
            _ => return Err(bad(&format!("unexpected form field \"{name}\" (expected \"file\" and \"options\")"))),
        };
        let filename = field.content_disposition().and_then(|cd| cd.get_filename().map(str::to_owned));
        let buf = match collect(&mut field, limit, &mut total, max_total).await? {
            Ok(buf) => buf,
            Err(over) => {
                let message = match over {
                    _ if name != "file" => format!("the {name} field is too long"),
                    Overflow::Total => format!("the files together are larger than {} MiB", max_total / (1024 * 1024)),
                    Overflow::Field => format!("a file is larger than {} MiB", max_file / (1024 * 1024)),
                };
                return Err(AppError::new(ErrorCode::PayloadTooLarge, message));
            }
        };
        if name == "file" {
            // A browser sends an empty file field when no file was chosen.
            if !buf.is_empty() || filename.as_deref().is_some_and(|f| !f.is_empty()) {
                files.push(crate::service::BatchFile {
                    filename: filename.unwrap_or_else(|| "upload".into()),
                    bytes: buf,
                });
            }
        } else {
            let value = String::from_utf8(buf).map_err(|_| bad(&format!("the {name} field is not UTF-8")))?;
            if name == "options" {
                options = Some(value);
            } else {
                form.push((name, value));
            }
        }
    }
    if files.is_empty() {
        return Err(AppError::new(ErrorCode::MissingFile, "no \"file\" field in the upload"));
    }
    Ok(BatchUpload { files, options, form })
}

/// Which bound a field passed.
enum Overflow {
    Field,
    Total,
}

/// A field's bytes, counted as they stream: at most `limit` for the field, and at most
/// `max_total` for `total`, the bytes of the whole body so far (updated here).
async fn collect(
    field: &mut actix_multipart::Field,
    limit: usize,
    total: &mut usize,
    max_total: usize,
) -> AppResult<Result<Vec<u8>, Overflow>> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|e| {
            AppError::new(ErrorCode::InvalidRequest, "upload interrupted").with_cause(anyhow::anyhow!("{e}"))
        })?;
        *total += chunk.len();
        if *total > max_total {
            return Ok(Err(Overflow::Total));
        }
        if buf.len() + chunk.len() > limit {
            return Ok(Err(Overflow::Field));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Ok(buf))
}
