// Compare training runs (FR5.1.1): the jobs' loss curves on one chart (training solid, validation
// dashed; each job in its colour from the page's data, web/comparison.py JOB_COLOURS, as in the PDF),
// toggles per kind of loss, zoom by dragging; and a picker that
// stops at four jobs. Without JavaScript the page shows the tables and the picker still submits.
(function () {
  "use strict";

  function drawCurves() {
    const holder = document.getElementById("compare-chart");
    const source = holder && document.getElementById(holder.dataset.chartSource);
    if (!holder || !source || typeof uPlot === "undefined") return;
    const jobs = JSON.parse(source.textContent).jobs;
    const data = uPlot.join(jobs.map((job) => [job.steps, job.loss, job.eval_loss]));
    const series = [{label: "Step"}];
    const kinds = [];
    const loss = (u, v) => v == null ? "—" : v.toFixed(4);
    jobs.forEach((job, i) => {
      const name = "Job " + (i + 1) + ": " + job.name;
      series.push({label: name + " · training", stroke: job.colour, width: 2, value: loss, spanGaps: true, points: {show: false}});
      series.push({label: name + " · validation", stroke: job.colour, width: 2, dash: [7, 5], value: loss, spanGaps: true,
                   points: {show: true, size: 5, fill: job.colour}});
      kinds.push("loss", "eval_loss");
    });
    const size = () => ({width: Math.max(280, holder.clientWidth), height: 320});
    const plot = new uPlot({...size(), series: series, scales: {x: {time: false}},
                            axes: [{label: "Step"}, {label: "Loss", size: 60}], cursor: {drag: {x: true, y: false}}},
                           data, holder);
    new ResizeObserver(() => plot.setSize(size())).observe(holder);
    const toggles = document.getElementById("curve-toggles");
    if (!toggles) return;
    toggles.hidden = false;
    toggles.addEventListener("change", (event) => {
      const kind = event.target.dataset.kind;
      kinds.forEach((k, i) => { if (k === kind) plot.setSeries(i + 1, {show: event.target.checked}); });
    });
  }

  function limitPicker() {
    const results = document.querySelector(".picker-results");
    if (!results) return;
    const max = Number(results.dataset.max || 4);
    const count = document.getElementById("picker-count");
    const button = document.getElementById("compare-selected");
    const update = () => {
      const boxes = Array.from(results.querySelectorAll("input[type=checkbox]"));
      const checked = boxes.filter((b) => b.checked).length;
      boxes.forEach((b) => { b.disabled = !b.checked && checked >= max; });
      if (count) count.textContent = checked + " selected (choose 2 to " + max + ")";
      if (button) button.disabled = checked < 2 || checked > max;
    };
    results.addEventListener("change", update);
    update();
  }

  drawCurves();
  limitPicker();
})();
