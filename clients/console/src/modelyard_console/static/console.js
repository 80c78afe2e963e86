// The console's own script: ticking elapsed times and uPlot charts. Loaded as a file (the CSP allows
// no inline script); every number it shows comes from the console's endpoints.
(function () {
  "use strict";

  var PALETTE = ["#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#a16207", "#0f766e", "#be123c", "#334155"];
  var CHART_REFRESH_MS = 2000;  // besides the refresh on each finished epoch
  var plots = new WeakMap();

  function formatDuration(seconds) {
    var whole = Math.max(0, Math.round(seconds));
    var hours = Math.floor(whole / 3600);
    var minutes = Math.floor((whole % 3600) / 60);
    var secs = whole % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (hours) { return hours + "h " + pad(minutes) + "m"; }
    return minutes ? minutes + "m " + pad(secs) + "s" : secs + "s";
  }

  function tickElapsed() {
    document.querySelectorAll("time[data-ticking='true'][data-started-at]").forEach(function (el) {
      var started = Date.parse(el.getAttribute("data-started-at"));
      if (!isNaN(started)) { el.textContent = formatDuration((Date.now() - started) / 1000); }
    });
  }

  function seriesOptions(series, index) {
    // Validation curves are dashed, so train and validation differ by more than colour.
    var dashed = /val /.test(series.label) && /loss/.test(series.label);
    return {
      label: series.label,
      stroke: PALETTE[index % PALETTE.length],
      width: 2,
      dash: dashed ? [6, 4] : undefined,
      spanGaps: true,
      points: { show: true, size: 5 },
    };
  }

  function draw(el, chart) {
    var data = [chart.x].concat(chart.series.map(function (s) { return s.values; }));
    var old = plots.get(el);
    el.setAttribute("data-points", String(chart.x.length));
    if (old && old.series.length === chart.series.length + 1) {
      old.setData(data);
      return;
    }
    if (old) { old.destroy(); }
    var options = {
      width: Math.max(320, el.clientWidth || 600),
      height: 260,
      scales: { x: { time: false } },
      axes: [{ label: "epoch", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }, {}],  // whole epochs
      series: [{ label: "epoch" }].concat(chart.series.map(seriesOptions)),
    };
    plots.set(el, new uPlot(options, data, el));
  }

  function loadChart(el) {
    return fetch(el.getAttribute("data-chart-url"), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (body && body[el.getAttribute("data-chart-key")]) { draw(el, body[el.getAttribute("data-chart-key")]); }
      })
      .catch(function () { /* the next refresh tries again */ });
  }

  function refreshLiveCharts() {
    var live = document.querySelectorAll(".chart[data-live='true']");
    if (!live.length) { return; }
    var finished = document.querySelector(".job-live[data-finished='true']");
    live.forEach(function (el) {
      loadChart(el);
      if (finished) { el.setAttribute("data-live", "false"); }  // one last read after the job finished
    });
  }

  // A job page's live part arrives over SSE: when it says another epoch is done (or the job finished),
  // its curves are read again at once, so they grow epoch by epoch.
  var lastEpochsDone = null;
  function onLiveSwap() {
    var live = document.querySelector(".job-live[data-epochs-done]");
    if (!live) { return; }
    var done = live.getAttribute("data-epochs-done") + "/" + live.getAttribute("data-finished");
    if (lastEpochsDone !== null && done !== lastEpochsDone) { refreshLiveCharts(); }
    lastEpochsDone = done;
  }

  // A live stream whose session was signed out (here or in another tab) sends one last part saying so,
  // then ends: go to the sign-in page rather than leave a stale page open.
  function onSignedOut() {
    if (document.querySelector("[data-signed-out='true']")) { window.location.assign("/signin"); }
  }

  // The training log panel appends each page of lines; it keeps only the newest data-max-lines, each
  // line once (a stream htmx had to reopen, rather than the browser resume, starts from the first line).
  function trimLogLines() {
    document.querySelectorAll("ol.log-lines[data-max-lines]").forEach(function (list) {
      var seen = {};
      Array.prototype.slice.call(list.children).forEach(function (line) {
        var cursor = line.getAttribute("data-cursor");
        if (cursor && seen[cursor]) { list.removeChild(line); } else if (cursor) { seen[cursor] = true; }
      });
      var extra = list.children.length - parseInt(list.getAttribute("data-max-lines"), 10);
      for (; extra > 0; extra--) { list.removeChild(list.firstElementChild); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.body.addEventListener("htmx:afterSettle", trimLogLines);
    document.body.addEventListener("htmx:afterSettle", onLiveSwap);
    document.body.addEventListener("htmx:afterSettle", onSignedOut);
    onLiveSwap();
    document.querySelectorAll(".chart[data-chart-url]").forEach(loadChart);
    tickElapsed();
    setInterval(tickElapsed, 1000);
    setInterval(refreshLiveCharts, CHART_REFRESH_MS);
  });
})();
