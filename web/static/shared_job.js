// A shared job's page (/training-jobs/{id}): its loss curve from .../points, kept live by its own
// read-only stream .../stream (points, progress, end; "revoked" when the job stops being shared).
(function () {
  "use strict";
  var dataNode = document.getElementById("shared-job-data");
  var chartNode = document.getElementById("loss-chart");
  if (!dataNode || !chartNode) return;
  var page = JSON.parse(dataNode.textContent);
  var data = [[], [], []], plot = null, lastStep = -1, lastEval = -1;

  function text(id, value) { var n = document.getElementById(id); if (n) n.textContent = value; }
  function fmt(v) { return v == null ? "—" : Number(v).toFixed(4); }

  function merge(points) {
    for (var k = 0; k < points.steps.length; k++) {
      var step = points.steps[k], n = data[0].length;
      if (!n || step > data[0][n - 1]) { data[0].push(step); data[1].push(points.loss[k]); data[2].push(points.eval[k]); continue; }
      var at = data[0].indexOf(step);
      if (at >= 0) {
        if (points.loss[k] != null) data[1][at] = points.loss[k];
        if (points.eval[k] != null) data[2][at] = points.eval[k];
      }
    }
    lastStep = Math.max(lastStep, points.last_step);
    lastEval = Math.max(lastEval, points.last_eval_step);
  }

  function draw() {
    chartNode.dataset.points = data[0].length;
    chartNode.classList.remove("jd-skeleton");
    if (!data[0].length) { chartNode.dataset.state = "empty"; return; }
    chartNode.dataset.state = "drawn";
    if (plot) { plot.setData(data); return; }
    plot = new uPlot({
      width: Math.max(280, chartNode.clientWidth), height: 300, scales: { x: { time: false } },
      series: [{ label: "Step" },
        { label: "Training loss", stroke: "#2563eb", width: 1.5, value: function (u, v) { return fmt(v); } },
        { label: "Validation loss", stroke: "#ea580c", dash: [6, 4], spanGaps: true, points: { show: true, size: 5 },
          value: function (u, v) { return fmt(v); } }],
      axes: [{ label: "Step" }, { label: "Loss" }]
    }, data, chartNode);
  }

  function progress(p) {
    text("sj-percent", p.percent + "%");
    text("sj-status", p.status_text);
    text("sj-step", p.total_steps ? p.step.toLocaleString("en-US") + " of " + p.total_steps.toLocaleString("en-US") : "No steps yet");
    text("sj-epoch", p.epoch || "—");
    text("sj-loss", fmt(p.loss));
    var bar = document.getElementById("sj-bar");
    if (bar) bar.style.width = p.percent + "%";
  }

  function listen() {
    var source = new EventSource(page.stream + "?after=" + lastStep + "&eval_after=" + lastEval);
    source.addEventListener("points", function (e) { merge(JSON.parse(e.data)); draw(); });
    source.addEventListener("progress", function (e) { progress(JSON.parse(e.data)); });
    source.addEventListener("end", function () { source.close(); });
    source.addEventListener("revoked", function (e) {
      source.close();
      var note = document.getElementById("sj-revoked");
      if (note) { note.textContent = JSON.parse(e.data).message; note.hidden = false; }
    });
  }

  fetch(page.points, { headers: { Accept: "application/json" } })
    .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
    .then(function (points) { merge(points); draw(); if (page.live) listen(); })
    .catch(function () { chartNode.dataset.state = "error"; });
})();
