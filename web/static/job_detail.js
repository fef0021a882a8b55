// Job detail page: the live loss curve (uPlot) — training and validation loss on one axis, EMA
// smoothing, log scale, a legend with the latest values, zoom and PNG export — and the live cards and
// actions fed by Server-Sent Events (/jobs/{id}/events-stream). Without this script the page reads as served.
(function () {
  "use strict";
  var root = document.getElementById("job-detail");
  var dataNode = document.getElementById("job-data");
  if (!root || !dataNode) return;
  var page = JSON.parse(dataNode.textContent);
  var chartNode = document.getElementById("loss-chart");
  var BLUE = "#2563eb", FAINT = "rgba(37, 99, 235, 0.28)", ORANGE = "#ea580c", GRID = "#e4e7eb";
  // FR2.1.1 "smart tick intervals": every 100 steps under 1,000, every 500 past 5,000 (uPlot picks by width).
  var STEP_TICKS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000, 100000];
  var RAW = 1, SMOOTH = 2, VAL = 3;
  var data = [[], [], []];  // steps, training loss, validation loss (as the server sends them)
  var shown = [[], [], [], []];  // steps, raw training, smoothed training, validation (what uPlot draws)
  var plot = null, follow = true, lastStep = -1, lastEvalStep = -1, stream = null, failures = 0;
  var lastUpdate = Date.now();
  var prefs = loadPrefs();

  function fmt(v) { return v == null ? "—" : Number(v).toFixed(3); }
  // Axis labels with as many decimals as the tick step needs (uPlot's default keeps three).
  function ticks(u, splits, axis, space, incr) {
    if (prefs.log) return splits.map(function (v) { return v == null ? "" : String(Number(v.toPrecision(2))); });
    var places = Math.max(0, Math.min(8, -Math.floor(Math.log10(incr) + 1e-9)));
    return splits.map(function (v) { return v == null ? "" : v.toFixed(places); });
  }

  function loadPrefs() {
    var saved = {};
    try { saved = JSON.parse(window.localStorage.getItem("jd-chart") || "{}"); } catch (e) { saved = {}; }
    var smoothing = Number(saved.smoothing);
    return { smoothing: isFinite(smoothing) && smoothing >= 0 && smoothing < 1 ? smoothing : 0.6, log: saved.log === true };
  }

  function savePrefs() {
    try { window.localStorage.setItem("jd-chart", JSON.stringify(prefs)); } catch (e) { /* private mode */ }
  }

  // --- what is drawn ---------------------------------------------------------------------------

  // W&B's and TensorBoard's smoothing: an exponential moving average, debiased so the first
  // values are not pulled towards zero; gaps (a diverged step) stay gaps.
  function smooth(values, weight) {
    var out = new Array(values.length), last = 0, n = 0;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v == null || !isFinite(v)) { out[i] = null; continue; }
      last = last * weight + (1 - weight) * v; n += 1;
      out[i] = weight ? last / (1 - Math.pow(weight, n)) : v;
    }
    return out;
  }

  function rebuild() {
    shown = [data[0], data[1], prefs.smoothing > 0 ? smooth(data[1], prefs.smoothing) : data[1], data[2]];
  }

  // The loss axis spans what the window shows of the curve the eye follows (the smoothed training
  // loss, or the raw one unsmoothed) and every validation point in it: a spike of the raw values or a
  // window without evaluations does not squash or collapse it.
  function usable(v) { return v != null && isFinite(v) && !(prefs.log && v <= 0); }

  function lossRange(u, dataMin, dataMax) {
    var idxs = u.series[0].idxs || [0, shown[0].length - 1];
    var first = Math.max(0, idxs[0]), last = Math.min(shown[0].length - 1, idxs[1]);
    var lo = Infinity, hi = -Infinity, raw = [];
    [SMOOTH, VAL].forEach(function (c) {
      if (u.series[c] && !u.series[c].show) return;
      for (var i = first; i <= last; i++) {
        var v = shown[c][i];
        if (!usable(v)) continue;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    });
    // The raw values count too, but their rare spikes (the outer 2 % of a long window) do not.
    if (u.series[RAW].show) {
      for (var j = first; j <= last; j++) if (usable(shown[RAW][j])) raw.push(shown[RAW][j]);
      raw.sort(function (a, b) { return a - b; });
      var cut = raw.length > 50 ? Math.floor(raw.length * 0.02) : 0;
      if (raw.length) { lo = Math.min(lo, raw[cut]); hi = Math.max(hi, raw[raw.length - 1 - cut]); }
    }
    if (lo === Infinity) { lo = dataMin; hi = dataMax; }
    if (lo == null || hi == null) return prefs.log ? [0.1, 10] : [0, 1];
    if (prefs.log) {
      lo = Math.max(lo, 1e-6);
      return [lo / 1.15, Math.max(hi * 1.15, lo * 1.5)];
    }
    var pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 0.1;
    return [Math.max(0, lo - pad), hi + pad];
  }

  function options(width, height, scale) {
    var font = Math.round(12 * scale) + "px system-ui, sans-serif";
    var labelFont = "600 " + Math.round(13 * scale) + "px system-ui, sans-serif";
    var axis = function (extra) {
      return Object.assign({ font: font, labelFont: labelFont, stroke: "#3e4c59", size: 50 * scale, space: 40 * scale,
        labelSize: 22 * scale, grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID } }, extra);
    };
    var lossScale = { auto: true, range: lossRange };
    if (prefs.log) { lossScale.distr = 3; lossScale.log = 10; }
    return {
      width: width, height: height, legend: { show: false },
      scales: { x: { time: false }, loss: lossScale },
      cursor: { drag: { x: true, y: false, setScale: true } },
      series: [
        { label: "Step" },
        { label: "Training loss (raw)", scale: "loss", stroke: prefs.smoothing > 0 ? FAINT : BLUE,
          width: (prefs.smoothing > 0 ? 1 : 1.5) * scale, spanGaps: false },
        { label: "Training loss", scale: "loss", stroke: BLUE, width: 2 * scale, show: prefs.smoothing > 0 },
        { label: "Validation loss", scale: "loss", stroke: ORANGE, width: 1.5 * scale, dash: [6 * scale, 4 * scale],
          spanGaps: true, points: { show: true, size: 5 * scale, stroke: ORANGE, fill: "#fff" } }
      ],
      axes: [
        axis({ label: "Step", space: 60 * scale, incrs: STEP_TICKS }),
        axis({ scale: "loss", label: "Loss" + (prefs.log ? " (log)" : ""), size: 60 * scale, values: ticks })
      ],
      hooks: scale === 1 ? {
        setCursor: [function (u) { legend(u.cursor.idx); }],
        setSelect: [function () { follow = false; }],
        draw: [function () {
          if (chartNode.dataset.state === "drawn") return;
          chartNode.dataset.state = "drawn"; chartNode.classList.remove("jd-skeleton");
          chartNode.dataset.drawnMs = Math.round(performance.now());  // time to first chart (bench/detail_page.py)
        }]
      } : {}
    };
  }

  // --- the legend: values without hovering ------------------------------------------------------

  function latest(col, before) {
    for (var j = before; j >= 0; j--) if (shown[col][j] != null) return j;
    return -1;
  }

  // The latest values, or the step under the cursor; each entry hides or shows its line.
  function legend(idx) {
    var node = document.getElementById("jd-legend");
    if (!node || !shown[0].length) return;
    var hovering = idx != null && idx >= 0;
    var at = hovering ? idx : shown[0].length - 1;
    var t = latest(RAW, at), v = latest(VAL, at);
    var smoothed = prefs.smoothing > 0;
    var entries = [
      { series: smoothed ? SMOOTH : RAW, swatch: "", label: "Training loss",
        value: t >= 0 ? fmt(shown[smoothed ? SMOOTH : RAW][t]) : "—",
        extra: smoothed && t >= 0 ? "raw " + fmt(shown[RAW][t]) : "" },
      { series: VAL, swatch: " jd-swatch-val", label: "Validation loss", value: v >= 0 ? fmt(shown[VAL][v]) : "—",
        extra: v >= 0 && shown[0][v] !== shown[0][at] ? "at step " + shown[0][v].toLocaleString("en-US") : "" }
    ];
    var html = entries.map(function (e) {
      var on = !plot || plot.series[e.series].show;
      return '<li><button type="button" data-series="' + e.series + '" aria-pressed="' + on + '" title="Show or hide this line">' +
        '<span class="jd-swatch' + e.swatch + '" style="border-color: ' + (e.series === VAL ? ORANGE : BLUE) + '"></span>' +
        e.label + '</button> <strong>' + e.value + '</strong>' + (e.extra ? ' <span class="hint jd-legend-extra">' + e.extra + '</span>' : '') + '</li>';
    });
    html.push('<li class="hint jd-legend-step">' + (hovering ? "Step " : "Latest: step ") + shown[0][at].toLocaleString("en-US") + '</li>');
    node.innerHTML = html.join("");
    node.dataset.step = shown[0][at];
  }

  function toggleSeries(event) {
    var button = event.target.closest("button[data-series]");
    if (!button || !plot) return;
    var i = Number(button.dataset.series);
    plot.setSeries(i, { show: !plot.series[i].show });
    if (i === SMOOTH || i === RAW) plot.setSeries(i === SMOOTH ? RAW : SMOOTH, { show: plot.series[i].show && prefs.smoothing > 0 });
    legend(plot.cursor.idx);
  }

  // --- the chart ---------------------------------------------------------------------------------

  function chartWidth() { return Math.max(260, chartNode.clientWidth); }
  function chartHeight() { return window.innerWidth < 640 ? 220 : 300; }

  function draw() {
    chartNode.dataset.points = data[0].length;  // how many steps the chart holds (tests read it)
    if (!data[0].length) { chartNode.dataset.state = "empty"; chartNode.classList.remove("jd-skeleton"); return; }
    rebuild();
    if (!plot) {
      plot = new uPlot(options(chartWidth(), chartHeight(), 1), shown, chartNode);
      plot.over.addEventListener("dblclick", function () { follow = true; });
      plot.over.addEventListener("mouseleave", function () { legend(null); });
      document.getElementById("jd-chart-tools").hidden = false;
    } else {
      plot.setData(shown, follow);
    }
    legend(plot.cursor.idx);
  }

  // Smoothing and the log scale change how the same points are drawn: the chart is made again
  // with the window it showed.
  function redraw() {
    if (!plot) return;
    var min = plot.scales.x.min, max = plot.scales.x.max;
    plot.destroy(); plot = null;
    draw();
    if (!follow && plot) plot.setScale("x", { min: min, max: max });
  }

  function search(step) {
    var lo = 0, hi = data[0].length - 1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1, s = data[0][mid];
      if (s === step) return mid;
      if (s < step) lo = mid + 1; else hi = mid - 1;
    }
    return -1 - lo;
  }

  // New rows go at the end; an evaluation merged into a step already shown updates that step.
  function merge(points) {
    for (var k = 0; k < points.steps.length; k++) {
      var step = points.steps[k], loss = points.loss[k], val = points.eval[k];
      var n = data[0].length;
      if (!n || step > data[0][n - 1]) { data[0].push(step); data[1].push(loss); data[2].push(val); continue; }
      var at = search(step);
      if (at >= 0) {
        if (loss != null) data[1][at] = loss;
        if (val != null) data[2][at] = val;
      } else {
        at = -1 - at;
        data[0].splice(at, 0, step); data[1].splice(at, 0, loss); data[2].splice(at, 0, val);
      }
    }
    lastStep = Math.max(lastStep, points.last_step);
    lastEvalStep = Math.max(lastEvalStep, points.last_eval_step);
  }

  function loadPoints(after) {
    return fetch(page.points + "?after=" + after, { headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (points) { merge(points); draw(); });
  }

  function zoom(how) {
    if (!plot || !data[0].length) return;
    var first = data[0][0], last = data[0][data[0].length - 1];
    var min = plot.scales.x.min, max = plot.scales.x.max, span = max - min;
    if (how === "reset") { follow = true; plot.setScale("x", { min: first, max: last }); return; }
    follow = false;
    if (how === "in") { min = Math.max(first, last - 500); max = last; }
    if (how === "out") { min = Math.max(first, min - span / 2); max = Math.min(last, max + span / 2); }
    if (how === "left") { min = Math.max(first, min - span / 2); max = min + span; }
    if (how === "right") { max = Math.min(last, max + span / 2); min = max - span; }
    if (min === first && max === last) follow = true;
    plot.setScale("x", { min: min, max: max });
  }

  // FR2.1.1: a 2000×1200 PNG with the job name, the time and the axis labels (the visible steps).
  function exportPng() {
    if (!plot) return;
    var W = 2000, H = 1200, HEAD = 130, done = false;
    var holder = document.createElement("div");
    holder.style.position = "absolute"; holder.style.left = "-10000px"; holder.style.top = "0";
    document.body.appendChild(holder);
    var opts = options(W, H - HEAD - 20, 2);
    opts.scales.x.range = [plot.scales.x.min, plot.scales.x.max];
    opts.series.forEach(function (s, i) { if (i) s.show = plot.series[i].show; });
    // uPlot draws on its next microtask: compose the image once it has.
    opts.hooks = { draw: [function (big) {
      if (done) return;
      done = true; compose(big, W, H, HEAD); big.destroy(); holder.remove();
    }] };
    new uPlot(opts, shown, holder);
  }

  function compose(big, W, H, HEAD) {
    var canvas = document.createElement("canvas");
    canvas.width = W; canvas.height = H;
    var ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    var now = new Date();
    var stamp = now.toISOString().replace(/[-:]/g, "").replace(/\..*/, "Z");
    ctx.fillStyle = "#1f2933"; ctx.font = "700 44px system-ui, sans-serif"; ctx.fillText(page.name, 40, 62);
    ctx.font = "26px system-ui, sans-serif"; ctx.fillStyle = "#616e7c";
    var how = (prefs.smoothing > 0 ? "smoothing " + prefs.smoothing.toFixed(2) : "unsmoothed") + (prefs.log ? ", log scale" : "");
    ctx.fillText("Loss curve (" + how + ") · exported " + now.toISOString().slice(0, 19).replace("T", " ") + " UTC", 40, 104);
    ctx.fillStyle = BLUE; ctx.fillRect(W - 700, 84, 40, 6);
    ctx.fillStyle = "#1f2933"; ctx.fillText("Training loss", W - 645, 96);
    ctx.fillStyle = ORANGE; ctx.fillRect(W - 400, 84, 16, 6); ctx.fillRect(W - 376, 84, 16, 6);
    ctx.fillStyle = "#1f2933"; ctx.fillText("Validation loss", W - 345, 96);
    ctx.drawImage(big.ctx.canvas, 0, HEAD, W, H - HEAD - 20);
    canvas.toBlob(function (blob) {
      var a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      var safe = page.name.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[-.]+|[-.]+$/g, "") || "job";
      a.download = safe + "-loss-curve-" + stamp + ".png";
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(function () { URL.revokeObjectURL(a.href); }, 5000);
    }, "image/png");
  }

  function setUpControls() {
    var slider = document.getElementById("jd-smoothing"), output = document.getElementById("jd-smoothing-value");
    var log = document.getElementById("jd-log");
    slider.value = prefs.smoothing; output.textContent = prefs.smoothing.toFixed(2); log.checked = prefs.log;
    var pending = null;
    slider.addEventListener("input", function () {
      prefs.smoothing = Number(slider.value); output.textContent = prefs.smoothing.toFixed(2);
      clearTimeout(pending);
      pending = setTimeout(function () { savePrefs(); redraw(); }, 60);
    });
    log.addEventListener("change", function () { prefs.log = log.checked; savePrefs(); redraw(); });
    document.getElementById("jd-legend").addEventListener("click", toggleSeries);
    document.querySelectorAll("[data-zoom]").forEach(function (b) {
      b.addEventListener("click", function () { zoom(b.dataset.zoom); });
    });
    document.getElementById("jd-export-png").addEventListener("click", exportPng);
    var resizing = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizing);
      resizing = setTimeout(function () { if (plot) plot.setSize({ width: chartWidth(), height: chartHeight() }); }, 150);
    });
  }

  // --- live cards and actions ----------------------------------------------------------------------

  function toast(text) {
    var node = document.createElement("div");
    node.className = "jd-toast"; node.setAttribute("role", "status"); node.textContent = text;
    document.body.appendChild(node);
    setTimeout(function () { node.remove(); }, 2500);
  }

  // The actions follow the job's state (Pause appears once it trains, Resume once paused): they are
  // redrawn only when what is offered changed, so a half-filled cancel form is never replaced.
  function applyActions(actions) {
    var holder = document.getElementById("jd-actions");
    var current = holder && holder.querySelector(".jd-actions");
    if (!holder || !actions || (current && current.dataset.key === actions.key)) return;
    if (holder.querySelector("details[open]")) return;  // someone is using them: at the next update
    holder.innerHTML = actions.html;
  }

  function applyCards(found) {
    Object.keys(found.html).forEach(function (id) {
      var node = document.getElementById(id);
      if (node) node.innerHTML = found.html[id];
    });
    applyActions(found.actions);
    var card = document.getElementById("jd-int-card");
    if (card) card.hidden = !found.html["job-interruptions"].trim();
    var count = document.getElementById("jd-event-count");
    if (count && Number(count.textContent) !== found.event_count) {
      count.textContent = found.event_count;
      var fresh = document.getElementById("jd-new-events");
      if (fresh) fresh.hidden = false;
    }
    lastUpdate = Date.now();
    document.getElementById("jd-updated").textContent = "Updated " + found.updated;
  }

  function liveError(show) {
    var node = document.getElementById("jd-live-error");
    if (!node) return;
    node.hidden = !show;
    if (show) {
      var minutes = Math.round((Date.now() - lastUpdate) / 60000);
      var ago = minutes < 1 ? "less than a minute" : minutes + " minute" + (minutes === 1 ? "" : "s");
      document.getElementById("jd-updated").textContent = "Last updated: " + ago + " ago";
    }
  }

  function connect() {
    if (!page.live || !window.EventSource) return;
    if (stream) stream.close();
    var after = chartNode ? lastStep : 2147483647, evalAfter = chartNode ? lastEvalStep : 2147483647;
    stream = new EventSource(page.stream + "?after=" + after + "&eval_after=" + evalAfter +
      "&version=" + encodeURIComponent(page.version) + "&attempt=" + page.attempt +
      (page.confirm ? "&confirm=" + page.confirm : ""));
    stream.addEventListener("open", function () { failures = 0; liveError(false); });
    stream.addEventListener("points", function (e) {
      if (!chartNode) return;
      merge(JSON.parse(e.data)); draw(); lastUpdate = Date.now();
    });
    stream.addEventListener("cards", function (e) {
      var found = JSON.parse(e.data);
      if (page.confirm && found.row_version >= page.confirm) page.confirm = 0;  // the read model has it now
      page.version = found.version;
      applyCards(found);
      // A command's outcome ("Training queued") is history once the job has moved on from it.
      var outcome = document.getElementById("jd-outcome");
      if (outcome && found.status !== page.status) outcome.remove();
    });
    stream.addEventListener("reset", function (e) {
      var told = e.data ? JSON.parse(e.data) : {};
      // The next connection asks from the attempt that replaced the steps, or it would be told again.
      page.attempt = told.attempt != null ? told.attempt : page.attempt + 1;
      if (!chartNode) return;
      data = [[], [], []]; lastStep = lastEvalStep = -1;
      loadPoints(-1).then(connect);
    });
    stream.addEventListener("end", function () {
      stream.close();
      if (page.reload_at_end) window.location.replace(cleanUrl());  // the job ended while watched: its last page
    });
    stream.addEventListener("error", function () {
      failures += 1;
      if (stream.readyState === EventSource.CLOSED || failures >= 2) liveError(true);
    });
  }

  function refresh(event) {
    event.preventDefault();
    var button = event.currentTarget;
    if (button.getAttribute("aria-disabled") === "true") return;
    button.setAttribute("aria-disabled", "true");
    var cards = fetch(page.cards, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(applyCards);
    var points = chartNode ? loadPoints(lastStep) : Promise.resolve();
    Promise.all([cards, points])
      .then(function () {
        liveError(false); toast("Metrics updated");
        if (page.live && (!stream || stream.readyState === EventSource.CLOSED)) connect();
      })
      .catch(function () { liveError(true); })
      .then(function () { button.removeAttribute("aria-disabled"); });
  }

  // A command's outcome (?notice=) is said once: the address loses it, so a reload or the page drawn
  // again when the job ends does not repeat a stale "Training queued".
  function cleanUrl() {
    var url = new URL(window.location.href);
    ["notice", "error", "cancel", "template"].forEach(function (name) { url.searchParams.delete(name); });
    return url.pathname + (url.searchParams.toString() ? "?" + url.searchParams.toString() : "") + url.hash;
  }

  // Menu entries that open a panel further down (Share Job, Save as Template) open it and go there.
  function openPanels(event) {
    var link = event.target.closest("a[data-opens]");
    if (!link) return;
    var panel = document.getElementById(link.dataset.opens);
    if (!panel) return;
    event.preventDefault();
    panel.open = true;
    var menu = link.closest("details");
    if (menu) menu.open = false;
    panel.scrollIntoView({ block: "start" });
    var summary = panel.querySelector("summary");
    if (summary) summary.focus({ preventScroll: true });
  }

  function showWhatWasAsked() {
    var params = new URLSearchParams(window.location.search);
    var asked = params.get("share") ? "share-job" : params.get("template") ? "save-template" : null;
    if (params.has("notice") || params.has("error")) window.history.replaceState(null, "", cleanUrl());
    var problem = document.querySelector(".jd-form-error");
    if (problem) { problem.scrollIntoView({ block: "center" }); problem.focus({ preventScroll: true }); return; }
    if (asked && document.getElementById(asked)) document.getElementById(asked).scrollIntoView({ block: "start" });
  }

  document.getElementById("jd-refresh").addEventListener("click", refresh);
  root.addEventListener("click", openPanels);
  var retryLive = document.getElementById("jd-retry-live");
  if (retryLive) {
    retryLive.addEventListener("click", function () { document.getElementById("jd-refresh").click(); connect(); });
  }
  showWhatWasAsked();

  if (chartNode) {
    setUpControls();
    loadPoints(-1).then(connect, function () {
      chartNode.classList.remove("jd-skeleton"); liveError(true); connect();
    });
  } else {
    connect();
  }
})();
