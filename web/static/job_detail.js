// Job detail page: the live loss curve (uPlot), its zoom and PNG export, and the live cards fed by
// Server-Sent Events (/jobs/{id}/events-stream). Without this script the page reads as served.
(function () {
  "use strict";
  var root = document.getElementById("job-detail");
  var dataNode = document.getElementById("job-data");
  if (!root || !dataNode) return;
  var page = JSON.parse(dataNode.textContent);
  var chartNode = document.getElementById("loss-chart");
  var BLUE = "#2563eb", ORANGE = "#ea580c", GRID = "#e4e7eb";
  // FR2.1.1 "smart tick intervals": every 100 steps under 1,000, every 500 past 5,000 (uPlot picks by width).
  var STEP_TICKS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000, 100000];
  var data = [[], [], []];
  var plot = null, follow = true, lastStep = -1, lastEvalStep = -1, stream = null, failures = 0;
  var lastUpdate = Date.now();

  function fmt(v) { return v == null ? "—" : Number(v).toFixed(3); }
  // Axis labels with as many decimals as the tick step needs (uPlot's default keeps three).
  function ticks(u, splits, axis, space, incr) {
    var places = Math.max(0, Math.min(8, -Math.floor(Math.log10(incr) + 1e-9)));
    return splits.map(function (v) { return v == null ? "" : v.toFixed(places); });
  }

  // --- chart ---------------------------------------------------------------------------------

  function options(width, height, scale) {
    var font = Math.round(12 * scale) + "px system-ui, sans-serif";
    var labelFont = "600 " + Math.round(13 * scale) + "px system-ui, sans-serif";
    var axis = function (extra) {
      return Object.assign({ font: font, labelFont: labelFont, stroke: "#3e4c59", size: 50 * scale, space: 40 * scale,
        labelSize: 22 * scale, grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID } }, extra);
    };
    return {
      width: width, height: height, legend: { show: scale === 1 },
      scales: { x: { time: false }, loss: { auto: true }, val: { auto: true } },
      cursor: { drag: { x: true, y: false, setScale: true } },
      series: [
        { label: "Step" },
        { label: "Training loss", scale: "loss", stroke: BLUE, width: 1.5 * scale,
          value: function (u, v) { return fmt(v); } },
        { label: "Validation loss", scale: "val", stroke: ORANGE, width: 1.5 * scale, dash: [6 * scale, 4 * scale],
          spanGaps: true, points: { show: true, size: 5 * scale, stroke: ORANGE, fill: "#fff" },
          value: function (u, v) { return fmt(v); } }
      ],
      axes: [
        axis({ label: "Step", space: 60 * scale, incrs: STEP_TICKS }),
        axis({ scale: "loss", label: "Training loss", stroke: BLUE, size: 64 * scale, values: ticks }),
        axis({ scale: "val", label: "Validation loss", side: 1, stroke: ORANGE, size: 64 * scale, values: ticks,
          grid: { show: false } })
      ],
      hooks: scale === 1 ? {
        setCursor: [showTip],
        setSelect: [function () { follow = false; }],
        draw: [function () {
          if (chartNode.dataset.state === "drawn") return;
          chartNode.dataset.state = "drawn"; chartNode.classList.remove("jd-skeleton");
          chartNode.dataset.drawnMs = Math.round(performance.now());  // time to first chart (bench/detail_page.py)
        }]
      } : {}
    };
  }

  function showTip(u) {
    var tip = document.getElementById("jd-tip");
    var i = u.cursor.idx;
    if (i == null || !tip) return;
    var v = null;
    for (var j = i; j >= 0 && j > i - 1000 && v == null; j--) v = data[2][j];
    tip.textContent = "Step " + data[0][i].toLocaleString("en-US") + ": Training Loss " + fmt(data[1][i]) +
      ", Validation Loss " + fmt(v);
  }

  function chartWidth() { return Math.max(280, chartNode.clientWidth); }

  function draw() {
    chartNode.dataset.points = data[0].length;  // how many steps the chart holds (tests read it)
    if (!data[0].length) { chartNode.dataset.state = "empty"; chartNode.classList.remove("jd-skeleton"); return; }
    if (!plot) {
      plot = new uPlot(options(chartWidth(), 320, 1), data, chartNode);
      plot.over.addEventListener("dblclick", function () { follow = true; });
      document.getElementById("jd-chart-tools").hidden = false;
    } else {
      plot.setData(data, follow);
    }
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
    if (min >= first && max <= last && min === first && max === last) follow = true;
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
    // uPlot draws on its next microtask: compose the image once it has.
    opts.hooks = { draw: [function (big) {
      if (done) return;
      done = true; compose(big, W, H, HEAD); big.destroy(); holder.remove();
    }] };
    new uPlot(opts, data, holder);
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
    ctx.fillText("Loss curve · exported " + now.toISOString().slice(0, 19).replace("T", " ") + " UTC", 40, 104);
    ctx.fillStyle = BLUE; ctx.fillRect(W - 760, 84, 40, 6);
    ctx.fillStyle = "#1f2933"; ctx.fillText("Training loss (left)", W - 705, 96);
    ctx.fillStyle = ORANGE; ctx.fillRect(W - 400, 84, 16, 6); ctx.fillRect(W - 376, 84, 16, 6);
    ctx.fillStyle = "#1f2933"; ctx.fillText("Validation loss (right)", W - 345, 96);
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

  // --- live cards ------------------------------------------------------------------------------

  function toast(text) {
    var node = document.createElement("div");
    node.className = "jd-toast"; node.setAttribute("role", "status"); node.textContent = text;
    document.body.appendChild(node);
    setTimeout(function () { node.remove(); }, 2500);
  }

  function applyCards(found) {
    Object.keys(found.html).forEach(function (id) {
      var node = document.getElementById(id);
      if (node) node.innerHTML = found.html[id];
    });
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
      "&version=" + encodeURIComponent(page.version) + "&attempt=" + page.attempt);
    stream.addEventListener("open", function () { failures = 0; liveError(false); });
    stream.addEventListener("points", function (e) {
      if (!chartNode) return;
      merge(JSON.parse(e.data)); draw(); lastUpdate = Date.now();
    });
    stream.addEventListener("cards", function (e) { applyCards(JSON.parse(e.data)); });
    stream.addEventListener("reset", function (e) {
      var told = e.data ? JSON.parse(e.data) : {};
      // The next connection asks from the attempt that replaced the steps, or it would be told again.
      page.attempt = told.attempt != null ? told.attempt : page.attempt + 1;
      if (!chartNode) return;
      data = [[], [], []]; lastStep = lastEvalStep = -1;
      loadPoints(-1).then(connect);
    });
    stream.addEventListener("end", function () { stream.close(); window.location.reload(); });
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

  document.getElementById("jd-refresh").addEventListener("click", refresh);
  var retryLive = document.getElementById("jd-retry-live");
  if (retryLive) {
    retryLive.addEventListener("click", function () { document.getElementById("jd-refresh").click(); connect(); });
  }

  if (chartNode) {
    document.querySelectorAll("[data-zoom]").forEach(function (b) {
      b.addEventListener("click", function () { zoom(b.dataset.zoom); });
    });
    document.getElementById("jd-export-png").addEventListener("click", exportPng);
    var resizing = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizing);
      resizing = setTimeout(function () { if (plot) plot.setSize({ width: chartWidth(), height: 320 }); }, 150);
    });
    loadPoints(-1).then(connect, function () {
      chartNode.classList.remove("jd-skeleton"); liveError(true); connect();
    });
  } else {
    connect();
  }
})();
