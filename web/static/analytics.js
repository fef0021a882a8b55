// Training analytics (FR5.1.2 "Success Rate Trends"): the monthly success rate as a line, the
// jobs per month as bars on a second axis. The page has the same figures as a table.
(function () {
  "use strict";
  const holder = document.getElementById("analytics-chart");
  const source = holder && document.getElementById(holder.dataset.chartSource);
  if (!holder || !source || typeof uPlot === "undefined") return;
  const data = JSON.parse(source.textContent);
  const xs = data.months.map((_, i) => i);
  const options = {
    width: Math.max(280, holder.clientWidth),
    height: 240,
    scales: {x: {time: false, range: [-0.5, Math.max(0.5, xs.length - 0.5)]}, pct: {range: [0, 100]}, n: {range: (u, lo, hi) => [0, Math.max(1, hi * 1.2)]}},
    axes: [
      {values: (u, ticks) => ticks.map((i) => Number.isInteger(i) ? (data.months[i] || "") : ""), incrs: [1]},
      {scale: "pct", values: (u, ticks) => ticks.map((v) => v + "%")},
      {scale: "n", side: 1, grid: {show: false}},
    ],
    series: [
      {label: "Month", value: (u, i) => i == null ? "—" : data.months[i]},
      {label: "Success rate", scale: "pct", stroke: "#0e9f6e", width: 2, value: (u, v) => v == null ? "—" : v.toFixed(1) + "%"},
      {label: "Jobs", scale: "n", stroke: "#9fb3c8", fill: "rgba(159, 179, 200, 0.35)", paths: uPlot.paths.bars({size: [0.5, 40]}), points: {show: false}},
    ],
  };
  const plot = new uPlot(options, [xs, data.success_rate, data.jobs], holder);
  new ResizeObserver(() => plot.setSize({width: Math.max(280, holder.clientWidth), height: 240})).observe(holder);
})();
