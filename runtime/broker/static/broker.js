// Polls /api/dashboard every second and redraws the broker's page; no reload needed.
(function () {
  "use strict";
  var POLL_MS = 1000;

  function $(id) { return document.getElementById(id); }
  function fmt(n) {
    if (n === null || n === undefined) return "–";
    return n >= 1000 ? n.toLocaleString("en-US", { maximumFractionDigits: 0 }) : String(+n.toFixed(2));
  }
  function bytes(n) {
    var units = ["B", "KiB", "MiB", "GiB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }
  function fill(tableId, rows) {
    var body = $(tableId).querySelector("tbody");
    body.replaceChildren.apply(body, rows.map(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (text) {
        var td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      });
      return tr;
    }));
  }

  function render(s) {
    $("uptime").textContent = Math.round(s.uptime_s);
    $("connections").textContent = s.connections;
    $("status").textContent = "live";
    var t = s.throughput;
    $("records-in-rate").textContent = fmt(t.records_in_per_s);
    $("records-out-rate").textContent = fmt(t.records_out_per_s);
    $("bytes-in-rate").textContent = bytes(t.bytes_in_per_s);
    $("bytes-out-rate").textContent = bytes(t.bytes_out_per_s);
    StreamsChart.drawLines($("throughput-chart"), [
      { name: "in", cls: "in", points: t.history.map(function (h) { return [h[0], h[1]]; }) },
      { name: "out", cls: "out", points: t.history.map(function (h) { return [h[0], h[2]]; }) }
    ], { span: 120 });
    fill("topics", s.topics.filter(function (tp) { return !tp.internal; }).map(function (tp) {
      var ends = tp.partitions.map(function (p) { return p.partition + ":" + p.end; }).join(" ");
      return [tp.name, tp.partitions.length, fmt(tp.records), bytes(tp.bytes), ends];
    }));
    fill("groups", s.groups.map(function (g) { return [g.group, g.state, g.members, fmt(g.lag)]; }));
    fill("requests", s.requests.map(function (r) { return [r.api, fmt(r.count), fmt(r.p99_ms)]; }));
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
