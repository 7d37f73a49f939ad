//! PDF.js (npm `pdfjs-dist`, fetched by scripts/fetch-pdfjs.sh into static/vendor/pdfjs) is
//! embedded in the binary when it is there, so pages can render a PDF's original pages offline.
//! Without it the build still succeeds and the pages show the text only.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(docent_pdfjs)");
    println!("cargo::rerun-if-changed=static/vendor/pdfjs");
    let dir = std::path::Path::new("static/vendor/pdfjs");
    if ["pdf.min.mjs", "pdf.worker.min.mjs"].iter().all(|f| dir.join(f).is_file()) {
        println!("cargo::rustc-cfg=docent_pdfjs");
    } else {
        println!("cargo::warning=static/vendor/pdfjs is missing (scripts/fetch-pdfjs.sh): original PDF pages will not render");
    }
}
