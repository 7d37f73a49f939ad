//! Parsing untrusted files in a child process (`docent parse-worker`) with a time limit and an
//! address-space cap, so a parser that hangs, panics past its guards, overflows its stack or
//! allocates without bound loses that upload only, never the server.
//!
//! The parent writes one JSON line (the request) and the file's bytes to the child's stdin; the
//! child writes one JSON object to stdout: `{"ok": parsed}` or `{"error": {code, message}}`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{MediaType, Ocr, ParseOptions};
use crate::domain::{PageSpan, ParsedText};
use crate::error::{AppError, AppResult, ErrorCode};

/// How untrusted files are parsed.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// The docent executable to run as `<program> parse-worker`.
    pub program: PathBuf,
    /// Wall-clock limit for one file, OCR included.
    pub timeout: Duration,
    /// Address-space limit of the worker (and of the OCR programs it starts).
    pub memory_bytes: u64,
    pub ocr: Option<Ocr>,
}

#[derive(Serialize, Deserialize)]
struct Request {
    media: String,
    password: Option<String>,
    ocr_languages: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Ok { text: String, pages: Vec<PageSpan>, warnings: Vec<String> },
    Error { code: String, message: String },
}

/// The codes a parser may return; anything else from a worker is a fault of the worker.
const PARSE_CODES: &[ErrorCode] = &[
    ErrorCode::PdfEncrypted,
    ErrorCode::PdfCorrupt,
    ErrorCode::PdfNoTextLayer,
    ErrorCode::DocumentEmpty,
    ErrorCode::InvalidEncoding,
    ErrorCode::UnsupportedMediaType,
];

/// Most bytes of the worker's stderr kept for the log.
const STDERR_KEEP: usize = 16 * 1024;

impl Isolation {
    /// Parse `bytes` in a fresh worker process. Blocking: call it from `spawn_blocking`.
    pub fn parse(&self, media: MediaType, bytes: &[u8], password: Option<&str>) -> AppResult<ParsedText> {
        let request = Request {
            media: media.as_mime().to_owned(),
            password: password.map(str::to_owned),
            ocr_languages: self.ocr.as_ref().map(|o| o.languages.clone()),
        };
        let header = serde_json::to_vec(&request).map_err(AppError::internal)?;
        let mut command = Command::new(&self.program);
        command
            .arg("parse-worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // glibc reserves 64 MiB of address space per thread arena; two arenas keep the
            // address-space cap about memory actually used.
            .env("MALLOC_ARENA_MAX", "2")
            .env("RUST_LOG", "warn");
        limit_child(&mut command, self.memory_bytes, self.timeout);
        let mut child = command.spawn().map_err(|e| {
            AppError::internal(anyhow::anyhow!("starting {} parse-worker: {e}", self.program.display()))
        })?;
        let pid = child.id();
        let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(AppError::internal(anyhow::anyhow!("parse worker pipes missing")));
        };
        let outcome = std::thread::scope(|scope| {
            // A worker that dies early closes its stdin: the write fails, the exit status tells why.
            scope.spawn(move || {
                let _ = stdin
                    .write_all(&header)
                    .and_then(|()| stdin.write_all(b"\n"))
                    .and_then(|()| stdin.write_all(bytes));
            });
            let out = scope.spawn(move || {
                let mut buf = Vec::new();
                stdout.read_to_end(&mut buf).map(|_| buf)
            });
            let err = scope.spawn(move || {
                let mut buf = Vec::new();
                let _ = stderr.read_to_end(&mut buf);
                let keep = buf.len().saturating_sub(STDERR_KEEP);
                buf.split_off(keep)
            });
            let (tx, rx) = std::sync::mpsc::channel();
            let waiter = scope.spawn(move || {
                let _ = tx.send(child.wait());
            });
            let status = match rx.recv_timeout(self.timeout) {
                Ok(status) => Some(status),
                Err(_) => {
                    kill_group(pid);
                    None
                }
            };
            let _ = waiter.join();
            let stdout = out.join().ok().and_then(Result::ok).unwrap_or_default();
            let stderr = err.join().unwrap_or_default();
            (status, stdout, stderr)
        });
        let (status, stdout, stderr) = outcome;
        let stderr = String::from_utf8_lossy(&stderr);
        let status = match status {
            None => {
                tracing::warn!(timeout_s = self.timeout.as_secs(), "parse worker stopped at the time limit");
                return Err(AppError::new(
                    ErrorCode::ParseTimeout,
                    format!("parsing this file took longer than the {} s limit", self.timeout.as_secs()),
                ));
            }
            Some(status) => status.map_err(AppError::internal)?,
        };
        match serde_json::from_slice::<Reply>(&stdout) {
            Ok(Reply::Ok { text, pages, warnings }) if status.success() => Ok(ParsedText { text, pages, warnings }),
            Ok(Reply::Error { code, message }) => match PARSE_CODES.iter().find(|c| c.as_str() == code) {
                Some(&code) => Err(AppError::new(code, message)),
                None => Err(AppError::internal(anyhow::anyhow!("parse worker answered {code}: {message}"))),
            },
            _ => Err(self.failure(status, &stderr)),
        }
    }

    /// The error for a worker that ended without an answer.
    fn failure(&self, status: ExitStatus, stderr: &str) -> AppError {
        tracing::warn!(%status, stderr = %stderr.trim(), "parse worker failed");
        if stderr.contains("memory allocation of") || stderr.contains("out of memory") {
            return AppError::new(
                ErrorCode::ParseMemoryLimit,
                format!("parsing this file needed more than the {} MiB memory limit", self.memory_bytes >> 20),
            );
        }
        AppError::new(ErrorCode::PdfCorrupt, "the parser crashed on this file; it is probably malformed")
    }
}

/// Caps for the worker, set between fork and exec: its own process group (so a timeout also
/// stops the OCR programs it started), address space, CPU seconds, no core files.
fn limit_child(command: &mut Command, memory_bytes: u64, timeout: Duration) {
    use std::os::unix::process::CommandExt;
    // The wall-clock limit is the one that matters; this one only catches a worker whose parent
    // is gone, so it allows every core busy for the whole time.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let cpu_seconds = timeout.as_secs().saturating_mul(cores).saturating_add(1);
    let set = |resource, value: u64| {
        let limit = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
        // SAFETY: setrlimit is async-signal-safe and `limit` outlives the call.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the closure calls only async-signal-safe functions (setpgid, prctl, setrlimit) and
    // allocates nothing, as `pre_exec` requires.
    unsafe {
        command.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A worker never outlives a server that was killed: the kernel kills it too.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            set(libc::RLIMIT_AS, memory_bytes)?;
            set(libc::RLIMIT_CPU, cpu_seconds)?;
            set(libc::RLIMIT_CORE, 0)
        });
    }
}

fn kill_group(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: plain syscall; the group is the worker's own (setpgid in `limit_child`).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// `docent parse-worker`: read a request and a file from stdin, write the reply to stdout.
pub fn worker_main() -> anyhow::Result<()> {
    let mut input = Vec::new();
    std::io::stdin().lock().read_to_end(&mut input)?;
    let newline = input.iter().position(|&b| b == b'\n').ok_or_else(|| anyhow::anyhow!("no request line"))?;
    let body = input.split_off(newline + 1);
    let request: Request = serde_json::from_slice(&input)?;
    let media = MediaType::from_mime(&request.media).ok_or_else(|| anyhow::anyhow!("unknown media type"))?;
    let options = ParseOptions {
        password: request.password.as_deref(),
        ocr: request.ocr_languages.map(|languages| Ocr { languages }),
    };
    let reply = match super::parse_with(media, &body, &options) {
        Ok(p) => Reply::Ok { text: p.text, pages: p.pages, warnings: p.warnings },
        Err(e) => Reply::Error { code: e.code.as_str().to_owned(), message: e.message },
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &reply)?;
    out.flush()?;
    Ok(())
}
