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
        let mut buf = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| bad("upload interrupted").with_cause(anyhow::anyhow!("{e}")))?;
            if buf.len() + chunk.len() > limit {
                return Err(if name == "file" {
                    AppError::new(
                        ErrorCode::PayloadTooLarge,
                        format!("the file is larger than {} MiB", max_bytes / (1024 * 1024)),
                    )
                } else {
                    bad("the password field is too long")
                });
            }
            buf.extend_from_slice(&chunk);
        }
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
