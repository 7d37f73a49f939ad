// The original page of a PDF beside its text, drawn by PDF.js (vendored, served by docent):
// opening the panel shows the page of the citation in the address (or page 1), and clicking a
// citation turns to its page. Loaded only on pages of PDF documents; the text works without it.
import * as pdfjs from "/static/vendor/pdfjs/pdf.min.mjs";

pdfjs.GlobalWorkerOptions.workerSrc = "/static/vendor/pdfjs/pdf.worker.min.mjs";
const box = document.getElementById("original");
const canvas = document.getElementById("original-canvas");
const label = document.getElementById("original-page");
let loading = null;
let wanted = 1;
let queue = Promise.resolve();

const pageOf = (id) => {
  const mark = id && document.getElementById(id);
  return mark && mark.dataset.page ? Number(mark.dataset.page) : null;
};

function show(n) {
  wanted = n;
  if (!box.open) return queue;
  // Hostile PDFs: no eval in the worker.
  loading = loading || pdfjs.getDocument({ url: box.dataset.src, isEvalSupported: false }).promise;
  queue = queue.then(async () => {
    const doc = await loading;
    const n = Math.min(Math.max(1, wanted), doc.numPages);
    if (canvas.dataset.page === String(n)) return;
    const page = await doc.getPage(n);
    const width = page.getViewport({ scale: 1 }).width;
    const viewport = page.getViewport({ scale: Math.min(2, Math.max(0.5, box.clientWidth / width)) });
    canvas.width = Math.floor(viewport.width);
    canvas.height = Math.floor(viewport.height);
    await page.render({ canvas, canvasContext: canvas.getContext("2d"), viewport }).promise;
    canvas.dataset.page = String(n);
    label.textContent = `page ${n} of ${doc.numPages}`;
  }).catch((e) => { label.textContent = `could not draw the page: ${e.message || e}`; });
  return queue;
}

box.addEventListener("toggle", () => show(pageOf(location.hash.slice(1)) || wanted));
document.addEventListener("click", (ev) => {
  const link = ev.target.closest && ev.target.closest("a.cite");
  const n = link && pageOf(link.dataset.anchor);
  if (n) show(n);
});
window.addEventListener("hashchange", () => { const n = pageOf(location.hash.slice(1)); if (n) show(n); });
