// Traffic charts drawn with uPlot (static/vendor/uplot-1.6.32) from the analytics JSON.
//
// Markup: <div class="chart" data-chart-url="/analytics/charts/traffic.json?range=24h"
//                data-refresh-seconds="30"></div>
// The server downsamples to the width sent (one point per pixel at most), so the browser
// draws what it gets. A chart is created when its element appears (page load or an htmx
// swap), refreshed in place with setData() while the tab is visible, resized with its
// container, redrawn when the colour scheme changes, and destroyed before htmx removes it.
// Clicking a point opens the events explorer on that bucket (and on failures only when
// the pointer is nearer the failures line).
// Optional in the JSON (the alert page's chart): "requests" may be absent (a network's
// failures only); "counted" (+ counted_label, counted_filter) a third series; "threshold"
// {value, label} drawn as a horizontal line and "marker" {x, label} as a vertical one.
(() => {
  "use strict";
  const charts = new Map(); // element -> {plot, data, timer, observer}
  const HEIGHT = 240;

  function color(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function theme() {
    return {
      text: color("--pico-muted-color", "#646b79"),
      grid: color("--pico-muted-border-color", "#e7eaf0"),
      requests: color("--pico-primary", "#0172ad"),
      failures: color("--pico-del-color", "#c52f21"),
      counted: color("--kw-counted-color", "#b45309"),
    };
  }

  function width(element) {
    return Math.max(200, Math.floor(element.clientWidth || element.parentElement.clientWidth));
  }

  // The series a JSON may carry, in drawing order: [key (also its colour), label].
  const SERIES = [["requests", "Requests"], ["failures", "Failures"], ["counted", null]];

  function present(json) {
    return SERIES.filter(([key]) => Array.isArray(json[key]))
      .map(([key, label]) => [key, label || json.counted_label || key]);
  }

  function columns(json) {
    return [json.x, ...present(json).map(([key]) => json[key])];
  }

  // The threshold (horizontal, dashed) and the marker (vertical, dotted), over the plot.
  function guides(json, colors) {
    return (u) => {
      const ctx = u.ctx;
      const { left, top, width: w, height: h } = u.bbox;
      ctx.save();
      ctx.lineWidth = 2 * devicePixelRatio;
      ctx.strokeStyle = colors.text;
      ctx.fillStyle = colors.text;
      ctx.font = `${12 * devicePixelRatio}px system-ui, sans-serif`;
      ctx.textBaseline = "bottom";
      if (json.threshold) {
        const y = Math.round(u.valToPos(json.threshold.value, "y", true));
        ctx.setLineDash([8 * devicePixelRatio, 6 * devicePixelRatio]);
        ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + w, y); ctx.stroke();
        ctx.textAlign = "left";
        ctx.fillText(json.threshold.label, left + 6 * devicePixelRatio, y - 4 * devicePixelRatio);
      }
      if (json.marker) {
        const x = Math.round(u.valToPos(json.marker.x, "x", true));
        if (x >= left && x <= left + w) {
          ctx.setLineDash([2 * devicePixelRatio, 4 * devicePixelRatio]);
          ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + h); ctx.stroke();
          // Its label on the side with room: left of a marker in the right half.
          const right = x > left + w / 2;
          ctx.textAlign = right ? "right" : "left";
          const gap = (right ? -4 : 4) * devicePixelRatio;
          ctx.fillText(json.marker.label, x + gap, top + 16 * devicePixelRatio);
        }
      }
      ctx.restore();
    };
  }

  function stamp(seconds) {
    return new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ");
  }

  // Tick labels in UTC, 24-hour: "14:00", a date at midnight, dates alone beyond two days.
  function ticks(u, splits) {
    const span = splits.length > 1 ? splits[splits.length - 1] - splits[0] : 0;
    return splits.map((ts) => {
      const iso = new Date(ts * 1000).toISOString();
      const time = iso.slice(11, 16);
      // A date with its time ("11-27 08:00") is too wide for uPlot's tick spacing and the
      // labels overlap; the grid line still marks the hour.
      if (span > 2 * 86400) return time === "00:00" ? iso.slice(5, 10) : "";
      return time === "00:00" ? iso.slice(5, 10) : time;
    });
  }

  function options(element, json) {
    const colors = theme();
    const axis = { stroke: colors.text, grid: { stroke: colors.grid, width: 1 },
                   ticks: { stroke: colors.grid, width: 1 } };
    return {
      width: width(element),
      height: HEIGHT,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      cursor: { points: { size: 8 }, focus: { prox: 16 } },
      legend: { live: true },
      scales: {
        x: { time: true },
        // Room for the threshold line even while the traffic stays far below it.
        y: { range: (u, min, max) => [0, Math.max(1, max, json.threshold ? json.threshold.value * 1.15 : 0)] },
      },
      hooks: { draw: [guides(json, colors)] },
      axes: [
        { ...axis, label: "Time (UTC)", labelSize: 20, values: ticks },
        { ...axis, label: json.unit, labelSize: 20, size: 60 },
      ],
      series: [
        { label: "UTC", value: (u, ts) => (ts == null ? "—" : stamp(ts)) },
        ...present(json).map(([key, label]) => ({
          label, stroke: colors[key], width: 2, points: { show: false },
          value: (u, v) => (v == null ? "—" : v.toLocaleString("en")),
        })),
      ],
    };
  }

  function chartUrl(element) {
    const url = new URL(element.dataset.chartUrl, window.location.href);
    url.searchParams.set("width", String(width(element)));
    return url;
  }

  async function load(element) {
    const response = await fetch(chartUrl(element), {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (!response.ok) throw new Error(`chart data: HTTP ${response.status}`);
    return response.json();
  }

  function explore(element, state) {
    const plot = state.plot;
    const index = plot.cursor.idx;
    if (index == null) return;
    const json = state.data;
    const from = json.x[index];
    const url = new URL(json.explore, window.location.href);
    url.searchParams.set("from", new Date(from * 1000).toISOString().replace(".000", ""));
    url.searchParams.set("to", new Date((from + json.step_seconds) * 1000).toISOString().replace(".000", ""));
    // The line nearest the pointer: all requests, the failures, or the counted ones.
    const value = plot.posToVal(plot.cursor.top, "y");
    const nearest = present(json).reduce((best, [key]) =>
      Math.abs(value - json[key][index]) < Math.abs(value - json[best][index]) ? key : best,
      present(json)[0][0]);
    if (nearest === "failures") url.searchParams.set("outcome", "failure");
    if (nearest === "counted") {
      Object.entries(json.counted_filter || {}).forEach(([k, v]) => url.searchParams.set(k, v));
    }
    window.location.assign(url.toString());
  }

  function draw(element, json) {
    const state = charts.get(element) || {};
    state.data = json;
    if (state.plot) state.plot.destroy();
    element.replaceChildren();
    state.plot = new uPlot(options(element, json), columns(json), element);
    state.plot.over.addEventListener("click", () => explore(element, state));
    state.plot.over.classList.add("chart-clickable");
    element.dataset.chartReady = "true";
    charts.set(element, state);
  }

  async function refresh(element) {
    const state = charts.get(element);
    if (!state || document.hidden) return;
    try {
      const json = await load(element);
      // Another width may bring another step, and with it a threshold or none: redraw.
      if (JSON.stringify(json.threshold) !== JSON.stringify(state.data.threshold)) {
        draw(element, json);
        return;
      }
      state.data = json;
      state.plot.setData(columns(json));
    } catch (error) {
      console.warn(error.message);
    }
  }

  async function create(element) {
    if (charts.has(element)) return;
    charts.set(element, {});
    let json;
    try {
      json = await load(element);
    } catch (error) {
      element.textContent = "The chart could not be loaded; the table below has the same data.";
      console.warn(error.message);
      return;
    }
    if (!element.isConnected) { charts.delete(element); return; }
    draw(element, json);
    const state = charts.get(element);
    const seconds = Number(element.dataset.refreshSeconds || 0);
    if (seconds > 0) state.timer = window.setInterval(() => refresh(element), seconds * 1000);
    let lastWidth = width(element);
    state.observer = new ResizeObserver(() => {
      const now = width(element);
      if (now === lastWidth || !state.plot) return;
      state.plot.setSize({ width: now, height: HEIGHT });
      // Much wider or narrower: ask for the point count that suits the new width.
      if (Math.abs(now - lastWidth) / lastWidth > 0.25) refresh(element);
      lastWidth = now;
    });
    state.observer.observe(element.parentElement);
  }

  function destroy(element) {
    const state = charts.get(element);
    if (!state) return;
    if (state.timer) window.clearInterval(state.timer);
    if (state.observer) state.observer.disconnect();
    if (state.plot) state.plot.destroy();
    charts.delete(element);
  }

  function createWithin(root) {
    if (!root.querySelectorAll) return;
    const found = root.matches && root.matches("[data-chart-url]") ? [root] : [];
    found.push(...root.querySelectorAll("[data-chart-url]"));
    found.forEach(create);
  }

  function destroyWithin(root) {
    for (const element of [...charts.keys()]) {
      if (root === element || root.contains(element)) destroy(element);
    }
  }

  // htmx:load fires for the first page and for every piece of content htmx swaps in.
  document.addEventListener("htmx:load", (event) => createWithin(event.detail.elt));
  document.addEventListener("htmx:beforeCleanupElement", (event) => destroyWithin(event.detail.elt));
  document.addEventListener("DOMContentLoaded", () => createWithin(document));
  // Back in view: bring every chart up to date at once instead of at its next tick.
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) charts.forEach((state, element) => refresh(element));
  });
  // Colours come from Pico's variables: redraw when the scheme changes.
  const redraw = () => charts.forEach((state, element) => state.data && draw(element, state.data));
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redraw);
  new MutationObserver(redraw).observe(document.documentElement, {
    attributes: true,
    attributeFilter: ["data-theme"],
  });
})();
