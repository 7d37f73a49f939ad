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
  // A batch page follows its items live through the server-sent event stream.
  var batch = document.getElementById("batch");
  if (batch && batch.dataset.finished !== "true" && window.EventSource) {
    var source = new EventSource("/api/v1/batches/" + batch.dataset.id + "/events");
    var setState = function (item, state, note) {
      var row = document.getElementById("item-" + item);
      if (!row) return;
      row.dataset.state = state;
      var cell = row.querySelector(".state");
      cell.className = "state " + state;
      cell.textContent = state + (note || "");
    };
    source.addEventListener("item_started", function (e) {
      var d = JSON.parse(e.data);
      setState(d.item, "running", d.attempt > 1 ? " (attempt " + d.attempt + ")" : "");
    });
    source.addEventListener("item_progress", function (e) {
      var d = JSON.parse(e.data);
      var note = " " + Math.round(d.elapsed_ms / 1000) + " s" + (d.document_tokens ? ", " + d.document_tokens + " tokens" : "");
      setState(d.item, "running", note);
    });
    source.addEventListener("item_done", function (e) {
      var d = JSON.parse(e.data);
      setState(d.item, "done");
      var row = document.getElementById("item-" + d.item);
      if (row) {
        var link = document.createElement("a");
        link.href = "/analyses/" + d.analysis_id;
        link.textContent = "answer";
        row.querySelector(".result").replaceChildren(link);
      }
    });
    source.addEventListener("item_failed", function (e) {
      var d = JSON.parse(e.data);
      setState(d.item, "failed");
      var row = document.getElementById("item-" + d.item);
      if (row) row.querySelector(".result").textContent = d.error.code + ": " + d.error.message;
    });
    source.addEventListener("batch", function (e) {
      var b = JSON.parse(e.data);
      ["done", "failed", "cancelled"].forEach(function (k) { document.getElementById("count-" + k).textContent = b[k]; });
      document.getElementById("count-open").textContent = b.queued + b.running;
      var status = document.getElementById("batch-status");
      status.textContent = b.status;
      status.className = "state " + b.status;
      if (b.status === "done" || b.status === "cancelled") {
        source.close();
        batch.dataset.finished = "true";
      }
    });
  }
})();
