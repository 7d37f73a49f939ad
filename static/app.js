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
  // Pointing at a sentence of an answer (or moving the keyboard focus into it) highlights every
  // span it cites.
  var spansOf = function (sentence) {
    return Array.prototype.map.call(sentence.querySelectorAll("a.cite"), function (a) {
      return document.getElementById(a.dataset.anchor);
    }).filter(Boolean);
  };
  var hover = function (ev, on) {
    var sentence = ev.target.closest && ev.target.closest("li.sentence");
    if (!sentence) return;
    spansOf(sentence).forEach(function (m) { m.classList.toggle("hover", on); });
    sentence.classList.toggle("hover", on);
  };
  document.addEventListener("mouseover", function (ev) { hover(ev, true); });
  document.addEventListener("mouseout", function (ev) { hover(ev, false); });
  document.addEventListener("focusin", function (ev) { hover(ev, true); });
  document.addEventListener("focusout", function (ev) { hover(ev, false); });
  // An analysis streams: the prompt's prefill as a progress bar with an estimate of what is left,
  // then the answer as the model writes it; the finished analysis replaces the page. Without
  // fetch streaming the form posts as usual (the handler below says it is busy).
  var live = document.getElementById("live");
  var streams = !!(window.fetch && window.ReadableStream && window.TextDecoder && live);
  var secs = function (ms) { return Math.max(0, Math.round(ms / 1000)) + " s"; };
  document.querySelectorAll("form[data-stream]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (!streams) return;
      ev.preventDefault();
      var data = new FormData(form);
      var choice = data.get("pipeline") || "full";
      var body = { task: data.get("task"), pipeline: choice === "full" ? "full" : "chunked" };
      if (choice === "chunked_same") body.chunked_model = "same";
      if (data.get("question")) body.question = data.get("question");
      var progress = document.getElementById("live-progress");
      var status = document.getElementById("live-status");
      var text = document.getElementById("live-text");
      var buttons = document.querySelectorAll(".actions button");
      buttons.forEach(function (b) { b.disabled = true; });
      live.hidden = false;
      live.setAttribute("aria-busy", "true");
      text.textContent = "";
      progress.removeAttribute("value");
      status.textContent = "Sending the request…";
      var started = Date.now(), first = null, draft = "";
      var fail = function (message) {
        status.textContent = message;
        live.setAttribute("aria-busy", "false");
        buttons.forEach(function (b) { b.disabled = false; });
      };
      var handle = function (name, d) {
        if (name === "prefill") {
          progress.max = d.total;
          progress.value = d.done;
          if (first === null) first = d;
          var left = "";
          if (d.done > first.done && d.done < d.total) {
            var rate = (d.done - first.done) / Math.max(1, d.elapsed_ms - first.elapsed_ms);
            left = ", about " + secs((d.total - d.done) / rate) + " left";
          }
          status.textContent = "Reading the document: " + d.done + " of " + d.total + " tokens, " + secs(d.elapsed_ms) + left;
        } else if (name === "text") {
          progress.value = progress.max;
          draft += d.text;
          // The markers become citations once the answer is checked (one may be half written).
          text.textContent = draft.replace(/ ?\[S\d+\] ?/g, "").replace(/ ?\[S?\d*$/, "");
          status.textContent = "Writing the answer… " + secs(Date.now() - started);
        } else if (name === "analysis") {
          status.textContent = "Checking citations done; opening the answer.";
          window.location.assign("/analyses/" + d.id);
        } else if (name === "error") {
          fail(d.code + ": " + d.message);
        }
      };
      var headers = { "content-type": "application/json", accept: "text/event-stream" };
      // Signed in with a session cookie: state-changing requests carry the session's CSRF token.
      var csrf = document.querySelector('meta[name="csrf-token"]');
      if (csrf) headers["x-csrf-token"] = csrf.content;
      fetch(form.dataset.stream, {
        method: "POST",
        headers: headers,
        body: JSON.stringify(body)
      }).then(function (resp) {
        if (!resp.ok) {
          return resp.json().then(function (e) { fail(e.error.code + ": " + e.error.message); }, function () { fail("HTTP " + resp.status); });
        }
        var reader = resp.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        var pump = function () {
          return reader.read().then(function (chunk) {
            if (chunk.done) return;
            buffer += decoder.decode(chunk.value, { stream: true });
            var frames = buffer.split("\n\n");
            buffer = frames.pop();
            frames.forEach(function (frame) {
              var name = "message", payload = "";
              frame.split("\n").forEach(function (line) {
                if (line.indexOf("event: ") === 0) name = line.slice(7);
                else if (line.indexOf("data: ") === 0) payload += line.slice(6);
              });
              if (payload) handle(name, JSON.parse(payload));
            });
            return pump();
          });
        };
        return pump();
      }).catch(function (e) { fail("The connection failed: " + e); });
    });
  });
  // Long requests: say what is happening and how long it has taken.
  document.querySelectorAll("form[data-busy]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (ev.defaultPrevented) return;
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
      var note = " " + Math.round(d.elapsed_ms / 1000) + " s" + (d.document_tokens ? ", " + d.document_tokens + " tokens" : "") +
        (d.prompt_total ? ", read " + d.prompt_done + " of " + d.prompt_total : "");
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
