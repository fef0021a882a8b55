// Budget dashboard (FR7.2.1): the month's daily spending accumulation, the forecast to the month's
// end (dotted), the limit and the alert zone (red shading from 80 % of the limit up). The page
// shows the same figures as a table without JavaScript.
(function () {
  "use strict";
  const holder = document.getElementById("budget-chart");
  const source = holder && document.getElementById(holder.dataset.chartSource);
  if (!holder || !source || typeof uPlot === "undefined") return;
  const data = JSON.parse(source.textContent);
  const money = (v) => v == null ? "—" : "$" + v.toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});
  const limitLine = data.days.map(() => data.limit);
  const highest = Math.max(data.limit, ...data.spent.filter((v) => v != null), ...data.forecast.filter((v) => v != null));

  function alertZone(u) {
    if (!data.limit) return;
    const ctx = u.ctx;
    const from = u.valToPos(data.limit * 0.8, "y", true);
    const top = u.bbox.top;
    ctx.save();
    ctx.fillStyle = "rgba(200, 30, 30, 0.08)";
    ctx.fillRect(u.bbox.left, top, u.bbox.width, Math.max(0, from - top));
    ctx.restore();
  }

  const options = {
    width: Math.max(280, holder.clientWidth),
    height: 260,
    scales: {x: {time: false}, y: {range: [0, Math.max(1, highest * 1.1)]}},
    axes: [
      {values: (u, ticks) => ticks.map((d) => data.month.slice(5) + "-" + String(d).padStart(2, "0"))},
      {values: (u, ticks) => ticks.map((v) => "$" + v.toLocaleString("en-US")), size: 70},
    ],
    series: [
      {label: "Day", value: (u, d) => d == null ? "—" : data.month + "-" + String(d).padStart(2, "0")},
      {label: "Spent", stroke: "#2563eb", width: 2, fill: "rgba(37, 99, 235, 0.08)", value: (u, v) => money(v)},
      {label: "Forecast", stroke: "#8d5b00", width: 2, dash: [6, 6], spanGaps: true, points: {show: false}, value: (u, v) => money(v)},
      {label: "Limit", stroke: "#c81e1e", width: 1.5, points: {show: false}, value: (u, v) => money(v)},
    ],
    hooks: {drawClear: [alertZone]},
  };
  const plot = new uPlot(options, [data.days, data.spent, data.forecast, limitLine], holder);
  new ResizeObserver(() => plot.setSize({width: Math.max(280, holder.clientWidth), height: 260})).observe(holder);
})();
