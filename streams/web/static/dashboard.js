// Polls /api/dashboard every second and redraws the page; no reload needed.
(function () {
  "use strict";
  var POLL_MS = 1000;

  function $(id) { return document.getElementById(id); }
  function fmt(n) {
    if (n === null || n === undefined) return "–";
    if (typeof n !== "number") return String(n);
    return n >= 1000 ? n.toLocaleString("en-US", { maximumFractionDigits: 0 }) : String(+n.toFixed(2));
  }
  function bytes(n) {
    if (n === null || n === undefined) return "–";
    var units = ["B", "KiB", "MiB", "GiB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }
  function cell(text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }
  function fill(tableId, rows) {
    var body = $(tableId).querySelector("tbody");
    body.replaceChildren.apply(body, rows.map(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (c) { tr.appendChild(c instanceof Node ? c : cell(c)); });
      return tr;
    }));
  }

  function render(s) {
    $("app").textContent = s.app;
    $("broker").textContent = s.broker;
    $("uptime").textContent = Math.round(s.uptime_s);
    $("status").textContent = "live";
    var t = s.throughput;
    $("events-in-rate").textContent = fmt(t.events_in_per_s);
    $("events-out-rate").textContent = fmt(t.events_out_per_s);
    $("events-in-total").textContent = fmt(t.events_in_total);
    $("lag").textContent = fmt(s.lag);
    StreamsChart.drawLines($("throughput-chart"), [
      { name: "in", cls: "in", points: t.history.map(function (h) { return [h[0], h[1]]; }) },
      { name: "out", cls: "out", points: t.history.map(function (h) { return [h[0], h[2]]; }) }
    ], { span: 120 });
    fill("agents", s.agents.map(function (a) {
      return [a.name, a.topic, cell(a.state, "state-" + a.state), fmt(a.events), fmt(a.p99_ms)];
    }));
    fill("tables", s.tables.map(function (tb) {
      return [tb.name, tb.windowed ? "windowed" : "table", tb.partitions_here + " of " + tb.partitions,
              fmt(tb.keys), bytes(tb.bytes)];
    }));
    fill("topics", s.topics.map(function (tp) {
      var ends = tp.partitions.map(function (p) { return p.partition + ":" + p.end; }).join(" ");
      return [tp.name, tp.partitions.length, fmt(tp.records), fmt(tp.records_per_s), bytes(tp.bytes),
              cell(ends, "offsets")];
    }));
    fill("groups", s.groups.map(function (g) { return [g.group, g.partitions.length, fmt(g.lag)]; }));
    var r = s.recovery;
    $("recovery").textContent = r.in_progress.length
      ? r.in_progress.map(function (p) { return p.topic + "[" + p.partition + "] " + p.done + "/" + p.total; }).join(", ")
      : r.recovered.length + " table partitions recovered, " +
        r.recovered.reduce(function (n, x) { return n + x.records; }, 0) + " records replayed";
  }

  function poll() {
    fetch("/api/dashboard", { cache: "no-store" })
      .then(function (response) { return response.json(); })
      .then(render)
      .catch(function () { $("status").textContent = "disconnected, retrying…"; })
      .finally(function () { setTimeout(poll, POLL_MS); });
  }
  poll();
})();
