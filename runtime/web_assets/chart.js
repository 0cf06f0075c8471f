// A tiny SVG line chart: drawLines(svg, series, options). No dependencies.
// series: [{name, cls, points: [[x, y], ...]}]; x and y are numbers.
(function (global) {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, text) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceMax(value) {
    if (value <= 0) return 1;
    var magnitude = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (value <= steps[i] * magnitude) return steps[i] * magnitude;
    }
    return 10 * magnitude;
  }

  function label(value) {
    var abs = Math.abs(value);
    if (abs >= 1e9) return +(value / 1e9).toFixed(1) + "G";
    if (abs >= 1e6) return +(value / 1e6).toFixed(1) + "M";
    if (abs >= 1e3) return +(value / 1e3).toFixed(1) + "k";
    return String(+value.toFixed(1));
  }

  function drawLines(svg, series, options) {
    options = options || {};
    var width = options.width || 800, height = options.height || 200;
    var left = 44, right = 8, top = 8, bottom = 20;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var xs = [], ys = [];
    series.forEach(function (s) {
      s.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); });
    });
    if (!xs.length) {
      svg.appendChild(el("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "waiting for data…"));
      return;
    }
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    if (options.span && x1 - x0 < options.span) x0 = x1 - options.span;
    var yMax = niceMax(Math.max.apply(null, ys));
    function sx(x) { return left + (x1 === x0 ? 0 : (x - x0) / (x1 - x0)) * (width - left - right); }
    function sy(y) { return top + (1 - y / yMax) * (height - top - bottom); }
    var grid = el("g", { "class": "grid" });
    for (var i = 0; i <= 4; i++) {
      var y = yMax * i / 4;
      grid.appendChild(el("line", { x1: left, x2: width - right, y1: sy(y), y2: sy(y) }));
      grid.appendChild(el("text", { x: left - 4, y: sy(y) + 4, "text-anchor": "end" }, label(y)));
    }
    var ago = Math.round(x1 - x0);
    grid.appendChild(el("text", { x: left, y: height - 4 }, "-" + ago + " s"));
    grid.appendChild(el("text", { x: width - right, y: height - 4, "text-anchor": "end" }, "now"));
    svg.appendChild(grid);
    series.forEach(function (s) {
      var d = s.points.map(function (p, i) {
        return (i ? "L" : "M") + sx(p[0]).toFixed(1) + " " + sy(p[1]).toFixed(1);
      }).join(" ");
      svg.appendChild(el("path", { d: d, "class": s.cls }));
    });
  }

  global.StreamsChart = { drawLines: drawLines };
})(window);
