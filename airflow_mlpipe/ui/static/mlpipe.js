/* Line charts of the step run and compare pages, drawn with the bundled uPlot from the JSON next to each chart. */
(function () {
  var PALETTE = ["#3b82f6", "#f97316", "#10b981", "#e11d48", "#8b5cf6", "#eab308", "#06b6d4", "#64748b"];
  window.mlpipeCharts = {};

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  function toData(spec) {
    if (spec.runs) { // compare: one series per run, on the union of their x values
      var xs = [];
      spec.runs.forEach(function (r) { r.x.forEach(function (x) { if (xs.indexOf(x) < 0) xs.push(x); }); });
      xs.sort(function (a, b) { return a - b; });
      var ys = spec.runs.map(function (r) {
        var at = {};
        r.x.forEach(function (x, i) { at[x] = r.y[i]; });
        return xs.map(function (x) { return x in at ? at[x] : null; });
      });
      return { x: xs, labels: spec.runs.map(function (r) { return r.step_run_id.split(".").slice(-3).join(".") + " " + r.label; }), ys: ys };
    }
    var labels = Object.keys(spec.series);
    return { x: spec.x, labels: labels, ys: labels.map(function (l) { return spec.series[l]; }) };
  }

  function draw(figure) {
    var spec = JSON.parse(figure.querySelector("script.chart-data").textContent);
    var data = toData(spec);
    var plot = figure.querySelector(".plot");
    plot.innerHTML = "";
    var text = css("--fg") || "#222", grid = css("--grid") || "#ddd";
    var axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    var whole = data.x.every(function (x) { return Math.round(x) === x; });
    var xAxis = Object.assign({ label: spec.x_label || "" }, axis);
    if (whole) xAxis.incrs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 1e5, 1e6];
    var opts = {
      width: Math.max(plot.clientWidth || 480, 240),
      height: parseInt(plot.dataset.height || "220", 10),
      scales: { x: { time: false } },
      axes: [xAxis, axis],
      series: [{ label: spec.x_label || "x" }].concat(data.labels.map(function (l, i) {
        return { label: l, stroke: PALETTE[i % PALETTE.length], width: 2, points: { show: data.x.length <= 60 }, spanGaps: true };
      })),
      legend: { show: true }
    };
    var chart = new uPlot(opts, [data.x].concat(data.ys), plot);
    figure.dataset.points = String(data.x.length);
    figure.classList.add("rendered");
    window.mlpipeCharts[figure.dataset.chartName] = { x: data.x, series: data.ys, labels: data.labels, chart: chart };
  }

  function drawAll() {
    document.querySelectorAll("figure.chart").forEach(function (f) {
      try { draw(f); } catch (e) { f.classList.add("failed"); f.querySelector(".plot").textContent = "chart failed: " + e; }
    });
  }

  var timer = null;
  window.addEventListener("resize", function () { clearTimeout(timer); timer = setTimeout(drawAll, 150); });
  document.addEventListener("mlpipe-theme", drawAll);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll); else drawAll();
})();
