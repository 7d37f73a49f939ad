// Progressive enhancement only: every page works without this script.
(function () {
  // Clicking a citation highlights its span (the :target rule does the same without JS).
  document.addEventListener("click", function (ev) {
    var link = ev.target.closest && ev.target.closest("a.cite");
    if (!link) return;
    var span = document.getElementById(link.dataset.anchor);
    if (!span) return;
    ev.preventDefault();
    document.querySelectorAll("mark.span.active").forEach(function (m) { m.classList.remove("active"); });
    span.classList.add("active");
    span.scrollIntoView({ behavior: "smooth", block: "center" });
    history.replaceState(null, "", "#" + link.dataset.anchor);
  });
  // Long requests: say what is happening and how long it has taken.
  document.querySelectorAll("form[data-busy]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var note = document.querySelector(".busy") || form.appendChild(document.createElement("p"));
      var started = Date.now();
      note.hidden = false;
      note.className = "busy";
      var tick = function () { note.textContent = form.dataset.busy + " " + Math.round((Date.now() - started) / 1000) + " s"; };
      tick();
      setInterval(tick, 1000);
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    });
  });
})();
