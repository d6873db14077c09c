// Bar charts of the metrics page, drawn as inline SVG from the page's own JSON
// (#chart-data, written by the server). No library: a few bars and labels are all we need.
// Right-to-left pages run time from right to left, like their text.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var source = document.getElementById("chart-data");
  if (!source) return;
  var data = JSON.parse(source.textContent);
  var rtl = document.documentElement.dir === "rtl";
  var lang = document.documentElement.lang || "en";

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function exponent(currency) {
    try {
      return new Intl.NumberFormat(lang, { style: "currency", currency: currency })
        .resolvedOptions().maximumFractionDigits;
    } catch (e) { return 2; }
  }

  function moneyFormatter(currency) {
    var digits = exponent(currency);
    var format;
    try {
      format = new Intl.NumberFormat(lang, { style: "currency", currency: currency,
        minimumFractionDigits: digits, maximumFractionDigits: digits });
    } catch (e) {
      format = { format: function (n) { return n.toFixed(digits) + " " + currency; } };
    }
    return function (minor) { return format.format(minor / Math.pow(10, digits)); };
  }

  // series: [{label, value, title}]; draws one bar per point with a few axis labels.
  function bars(container, series, options) {
    var width = 640, height = 200, left = 8, bottom = 22, top = 14;
    var max = Math.max.apply(null, series.map(function (p) { return p.value; }).concat([0]));
    var svg = el("svg", { viewBox: "0 0 " + width + " " + height, width: "100%",
      role: "img", "aria-label": options.title || "", class: "bar-chart" });
    var slot = (width - 2 * left) / Math.max(series.length, 1);
    var plot = height - bottom - top;
    series.forEach(function (point, index) {
      var position = rtl ? series.length - 1 - index : index;
      var h = max ? Math.max(point.value ? 1 : 0, Math.round(point.value / max * plot)) : 0;
      var x = left + position * slot + slot * 0.15;
      var bar = el("rect", { x: x.toFixed(1), y: (top + plot - h).toFixed(1),
        width: (slot * 0.7).toFixed(1), height: h, class: "bar" });
      bar.appendChild(el("title", {}, point.label + ": " + point.title));
      svg.appendChild(bar);
      var every = Math.ceil(series.length / 8);
      if (index % every === 0 || index === series.length - 1) {
        svg.appendChild(el("text", { x: (x + slot * 0.35).toFixed(1), y: height - 6,
          "text-anchor": "middle", class: "axis" }, point.label));
      }
    });
    if (max) {
      svg.appendChild(el("text", { x: rtl ? width - left : left, y: 10,
        "text-anchor": rtl ? "end" : "start", class: "axis" }, options.maxLabel(max)));
    }
    container.appendChild(svg);
  }

  var revenue = document.querySelector('[data-chart="revenue"]');
  if (revenue) {
    data.revenue.forEach(function (series) {
      var money = moneyFormatter(series.currency);
      var heading = document.createElement("p");
      heading.className = "muted";
      heading.textContent = series.currency;
      revenue.appendChild(heading);
      bars(revenue, series.points.map(function (p) {
        return { label: p.label, value: p.net, title: money(p.net) + " (" + p.paid + ")" };
      }), { title: series.currency, maxLabel: money });
    });
  }
  var hours = document.querySelector('[data-chart="hours"]');
  if (hours) {
    bars(hours, data.hours.map(function (p) {
      return { label: p.label, value: p.placed, title: p.placed + " / " + p.paid };
    }), { title: "", maxLabel: function (n) { return new Intl.NumberFormat(lang).format(n); } });
  }
})();
