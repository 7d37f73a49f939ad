//! Optical character recognition for PDF pages without a usable text layer: poppler's
//! `pdftoppm` renders a page, Tesseract reads it. Both are separate programs, found on `PATH`
//! (Debian: `poppler-utils`, `tesseract-ocr`, `tesseract-ocr-chi-sim`).

use std::io::Write;
use std::process::{Command, Stdio};

/// Rendering resolution: Tesseract reads best at about 300 dpi.
const DPI: &str = "300";

/// Tesseract with the languages to read, checked installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ocr {
    /// Tesseract's `-l` value, e.g. `eng+chi_sim`.
    pub languages: String,
}

/// Languages `auto` reads, when installed.
const AUTO_LANGUAGES: &[&str] = &["eng", "chi_sim"];

impl Ocr {
    /// OCR as configured: `off`, `auto` (English and Simplified Chinese, those installed), or a
    /// Tesseract language list such as `eng+deu`. `None` when OCR is off or unavailable; an error
    /// when a language asked for by name is not installed.
    pub fn detect(setting: &str) -> anyhow::Result<Option<Self>> {
        if setting == "off" {
            return Ok(None);
        }
        let Some(installed) = installed_languages() else {
            if setting != "auto" {
                anyhow::bail!("OCR languages {setting} asked for, but tesseract or pdftoppm is not installed");
            }
            return Ok(None);
        };
        let wanted: Vec<&str> = match setting {
            "auto" => AUTO_LANGUAGES.iter().copied().filter(|l| installed.iter().any(|i| i == l)).collect(),
            list => list.split('+').collect(),
        };
        if let Some(missing) = wanted.iter().find(|l| !installed.iter().any(|i| i == *l)) {
            anyhow::bail!("the Tesseract language {missing} is not installed (installed: {})", installed.join(", "));
        }
        Ok((!wanted.is_empty()).then(|| Self { languages: wanted.join("+") }))
    }

    /// The text of each page named (1-based) in `pages`, in that order. Pages run in parallel,
    /// one Tesseract thread each (its own threads help less than whole pages at once).
    /// `pdf` is not encrypted (the caller decrypts it): a password would be visible on the command line.
    pub fn read_pages(&self, pdf: &[u8], pages: &[u32]) -> Vec<Result<String, String>> {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => return pages.iter().map(|_| Err(format!("no scratch directory for OCR: {e}"))).collect(),
        };
        let input = dir.path().join("input.pdf");
        if let Err(e) = std::fs::File::create(&input).and_then(|mut f| f.write_all(pdf)) {
            return pages.iter().map(|_| Err(format!("could not write the PDF for OCR: {e}"))).collect();
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, pages.len().max(1));
        let per_thread = pages.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let runs: Vec<_> = pages
                .chunks(per_thread)
                .map(|run| {
                    let (dir, input) = (dir.path(), &input);
                    (
                        run.len(),
                        scope.spawn(move || run.iter().map(|&n| self.read_page(dir, input, n)).collect::<Vec<_>>()),
                    )
                })
                .collect();
            runs.into_iter()
                .flat_map(|(len, run)| {
                    run.join().unwrap_or_else(|_| vec![Err("the OCR thread stopped".to_owned()); len])
                })
                .collect()
        })
    }

    fn read_page(&self, dir: &std::path::Path, input: &std::path::Path, page: u32) -> Result<String, String> {
        let root = dir.join(format!("page-{page}"));
        let n = page.to_string();
        let mut render = Command::new("pdftoppm");
        render.args(["-r", DPI, "-gray", "-png", "-singlefile", "-f", &n, "-l", &n]);
        let rendered =
            render.arg(input).arg(&root).stdin(Stdio::null()).output().map_err(|e| format!("pdftoppm: {e}"))?;
        if !rendered.status.success() {
            return Err(format!(
                "pdftoppm failed on page {page}: {}",
                String::from_utf8_lossy(&rendered.stderr).trim()
            ));
        }
        let image = root.with_extension("png");
        let read = Command::new("tesseract")
            .arg(&image)
            .args(["stdout", "-l", &self.languages])
            .env("OMP_THREAD_LIMIT", "1")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("tesseract: {e}"))?;
        // Each page image is about 8 MB: gone before the next page is rendered.
        let _ = std::fs::remove_file(&image);
        if !read.status.success() {
            return Err(format!("tesseract failed on page {page}: {}", String::from_utf8_lossy(&read.stderr).trim()));
        }
        Ok(String::from_utf8_lossy(&read.stdout).into_owned())
    }
}

/// Tesseract's installed languages, or `None` when Tesseract or pdftoppm is missing.
fn installed_languages() -> Option<Vec<String>> {
    let poppler = Command::new("pdftoppm").arg("-v").stdin(Stdio::null()).output().ok()?;
    // pdftoppm -v prints its version and exits 0 (older releases 99): it ran, which is enough.
    drop(poppler);
    let out = Command::new("tesseract").arg("--list-langs").stdin(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    // The first line says where the data lives; the rest name one language each.
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect(),
    )
}
