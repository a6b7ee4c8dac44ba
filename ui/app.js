// The web UI of metrics-server (docs/UI.md). It reads only this server's
// Prometheus HTTP API (/api/v1/...) and draws with uPlot (embedded next to
// this file); nothing is loaded from any other host.
//
// Pages (the URL's fragment, so a link can be shared):
//   #/instances?filter=..        every (instance, job): up/down, last push, memory
//   #/instance?instance=..&job=.. charts of every series of one instance
//   #/explore?q=..&tab=graph     a PromQL query with a graph and a table
//   #/alerts, #/rules            alerting state
// Every page takes range= (5m..24h) and refresh= (0 = off) as well.
"use strict";

(function () {
  // ---- Paths: the UI may sit under a prefix (a reverse proxy's).
  const BASE = location.pathname.replace(/\/ui\/[^/]*$/, "");
  const API = BASE + "/api/v1/";

  // ---- The API ------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, type, status) {
      super(message);
      this.type = type || "";
      this.status = status || 0;
    }
    describe() {
      return (this.type ? this.type + ": " : "") + this.message;
    }
  }

  // GET /api/v1/<path>; resolves to `data`, rejects with ApiError carrying
  // the API's own errorType and error text.
  async function api(path, params, signal) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v === undefined || v === null) continue;
      if (Array.isArray(v)) v.forEach((x) => qs.append(k, x));
      else qs.append(k, String(v));
    }
    const url = API + path + (qs.toString() ? "?" + qs : "");
    let res;
    try {
      // Same-origin credentials: the Basic login the browser asked for when
      // the page loaded (--web-config) goes with every call; nothing of it is
      // ever put in a URL or stored by the page.
      res = await fetch(url, {
        signal,
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError("the server did not answer (" + e.message + ")", "network");
    }
    if (res.status === 401) {
      throw new ApiError(
        "not signed in (or the login was changed on the server): reload the page to sign in",
        "unauthorized",
        401
      );
    }
    const text = await res.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch (_) {
      /* not JSON: reported below */
    }
    if (body && body.status === "success") return body.data;
    if (body && body.status === "error") {
      throw new ApiError(body.error || "error", body.errorType, res.status);
    }
    throw new ApiError(
      "HTTP " + res.status + " from " + path + ": " + (text.trim().slice(0, 300) || res.statusText),
      "http",
      res.status
    );
  }

  // ---- Names, units and formatting ----------------------------------------

  // What the agent's names mean (docs/AGENT.md "Metrics").
  const DESCRIPTIONS = {
    Alloc: "bytes of live allocations",
    HeapAlloc: "bytes of live heap allocations (= Alloc)",
    HeapInuse: "bytes in heap spans in use",
    HeapIdle: "bytes free in the heap",
    HeapSys: "bytes the heap obtained from the OS",
    HeapReleased: "bytes given back to the OS but kept reserved",
    HeapObjects: "live allocated blocks",
    Mallocs: "allocations (cumulative)",
    Frees: "frees (cumulative)",
    TotalAlloc: "bytes ever allocated (cumulative)",
    MCacheInuse: "bytes of thread caches in use",
    MCacheSys: "bytes of thread caches",
    MSpanInuse: "bytes of allocator metadata in use",
    MSpanSys: "bytes of allocator metadata",
    OtherSys: "other bytes the allocator obtained",
    StackSys: "bytes mapped for thread stacks",
    StackInuse: "resident bytes of thread stacks",
    Sys: "bytes obtained from the OS (heap + stacks + other)",
    PollCount: "samples taken by the agent",
    RandomValue: "a uniform random number per sample",
    ProcessRSS: "resident memory of the process",
    ProcessPeakRSS: "peak resident memory",
    ProcessVirtualMemory: "virtual memory size",
    ProcessThreads: "threads of the process",
    ProcessOpenFDs: "open file descriptors",
    ProcessMinorFaults: "minor page faults (cumulative)",
    ProcessMajorFaults: "major page faults (cumulative)",
    ProcessCPUUserSeconds: "CPU time in user mode",
    ProcessCPUSystemSeconds: "CPU time in the kernel",
    TotalMemory: "memory of the machine",
    FreeMemory: "free memory of the machine",
    GlibcArena: "glibc arena space",
    GlibcMmapped: "bytes in chunks mmapped on their own",
    GlibcTopReleasable: "what malloc_trim could return",
    agent_up: "1 while the instance pushes, 0 once it is stale",
    agent_last_push_timestamp_seconds: "time of the last accepted push",
  };

  // Gauges that carry a cumulative total: shown as a rate per second.
  const CUMULATIVE = new Set([
    "Mallocs",
    "Frees",
    "TotalAlloc",
    "PollCount",
    "ProcessMinorFaults",
    "ProcessMajorFaults",
    "ProcessCPUUserSeconds",
    "ProcessCPUSystemSeconds",
    "NumGC",
    "NumForcedGC",
    "PauseTotalNs",
    "Lookups",
  ]);
  const NOT_BYTES = new Set(["HeapObjects", "Mallocs", "Frees", "PollCount", "RandomValue"]);

  // The charts that answer "how much memory, how is it changing" come first.
  const KEY_NAMES = [
    "ProcessRSS",
    "HeapInuse",
    "HeapAlloc",
    "Mallocs",
    "Frees",
    "TotalAlloc",
    "ProcessThreads",
    "ProcessOpenFDs",
    "Sys",
    "HeapSys",
    "StackSys",
    "ProcessCPUUserSeconds",
    "ProcessCPUSystemSeconds",
  ];

  // "bytes", "seconds", "percent", "ns" or "" (a plain number).
  function unitOf(name) {
    if (!name) return "";
    if (NOT_BYTES.has(name)) return "";
    if (/_bytes(_total)?$/.test(name) || /Bytes$/.test(name)) return "bytes";
    if (/(Alloc|Inuse|Idle|Sys|Released|RSS|Memory|Arena|Mmapped|Free|Releasable|Mapped|Resident|Metadata|Committed)$/.test(name))
      return /Chunks$/.test(name) ? "" : "bytes";
    if (/^CPUutilization\d+$/.test(name)) return "percent";
    if (/Ns$/.test(name)) return "ns";
    if (/_seconds(_total)?$/.test(name) || /Seconds$/.test(name)) return "seconds";
    return "";
  }

  function isCumulative(name, type) {
    return CUMULATIVE.has(name) || type === "counter" || /_total$/.test(name);
  }

  const intFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const numFmt = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 4 });

  function humanBytes(v) {
    const a = Math.abs(v);
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    let x = a;
    while (x >= 1024 && i < units.length - 1) {
      x /= 1024;
      i++;
    }
    const digits = i === 0 ? 0 : x >= 100 ? 0 : x >= 10 ? 1 : 2;
    return (v < 0 ? "-" : "") + x.toFixed(digits) + " " + units[i];
  }

  function humanNumber(v) {
    const a = Math.abs(v);
    if (a >= 1e15) return v.toExponential(3);
    if (a >= 1e5 || (Number.isInteger(v) && a >= 1)) return intFmt.format(v);
    if (a === 0) return "0";
    if (a < 1e-4) return v.toExponential(2);
    return numFmt.format(v);
  }

  const compactFmt = new Intl.NumberFormat("en-US", { notation: "compact", maximumSignificantDigits: 3 });
  // Axis ticks: short ("210M") where a legend shows every digit.
  function axisNumber(v) {
    return Math.abs(v) >= 1e4 ? compactFmt.format(v) : humanNumber(v);
  }

  // The unit of a query's result: its series' common name, else the names
  // it mentions when they agree; rate() and friends make it per second.
  function guessUnit(query, result) {
    const names = new Set((result || []).map((s) => (s.metric || {}).__name__).filter(Boolean));
    let unit = "";
    if (names.size === 1) unit = unitOf([...names][0]);
    else {
      const units = new Set((query.match(/[A-Za-z_:][A-Za-z0-9_:]*/g) || []).map(unitOf).filter(Boolean));
      if (units.size === 1) unit = [...units][0];
    }
    const rate = /^\s*(\w+\s*(by|without)\s*\([^)]*\)\s*)?\(?\s*(\w+\s*\(\s*)?(rate|irate|deriv)\s*\(/.test(query) || /^\s*(rate|irate|deriv)\s*\(/.test(query);
    return { unit, rate };
  }

  function humanSeconds(v) {
    const a = Math.abs(v);
    if (a === 0) return "0 s";
    if (a < 1e-3) return numFmt.format(v * 1e6) + " µs";
    if (a < 1) return numFmt.format(v * 1e3) + " ms";
    if (a < 120) return numFmt.format(v) + " s";
    if (a < 7200) return numFmt.format(v / 60) + " min";
    if (a < 172800) return numFmt.format(v / 3600) + " h";
    return numFmt.format(v / 86400) + " d";
  }

  // A value with its unit; `rate` appends "/s".
  function formatValue(v, unit, rate) {
    if (v === null || v === undefined) return "–";
    if (Number.isNaN(v)) return "NaN";
    if (!Number.isFinite(v)) return v > 0 ? "+Inf" : "-Inf";
    const per = rate ? "/s" : "";
    switch (unit) {
      case "bytes":
        return humanBytes(v) + per;
      case "seconds":
        return rate ? numFmt.format(v) + " s/s" : humanSeconds(v);
      case "ns":
        return rate ? humanSeconds(v / 1e9) + "/s" : humanSeconds(v / 1e9);
      case "percent":
        return numFmt.format(v) + " %" + per;
      default:
        return humanNumber(v) + per;
    }
  }

  function parseValue(s) {
    // Prometheus sends numbers as strings ("NaN", "+Inf" included).
    if (s === "+Inf" || s === "Inf") return Infinity;
    if (s === "-Inf") return -Infinity;
    return parseFloat(s);
  }

  function ago(seconds) {
    if (!Number.isFinite(seconds)) return "never";
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s ago";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min ago";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h ago";
  }

  function timeText(unixSeconds) {
    if (!Number.isFinite(unixSeconds) || unixSeconds <= 0) return "–";
    return new Date(unixSeconds * 1000).toLocaleString();
  }

  // "5m", "1h30m", "90" (seconds) -> seconds; NaN when malformed.
  function parseDuration(text) {
    if (text === undefined || text === null || text === "") return NaN;
    if (/^\d+(\.\d+)?$/.test(text)) return parseFloat(text);
    const re = /(\d+)(ms|s|m|h|d|w|y)/g;
    const mult = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
    let total = 0;
    let used = 0;
    let m;
    while ((m = re.exec(text))) {
      total += parseInt(m[1], 10) * mult[m[2]];
      used += m[0].length;
    }
    return used === text.length && used > 0 ? total : NaN;
  }

  function durationText(seconds) {
    if (seconds % 86400 === 0) return seconds / 86400 + "d";
    if (seconds % 3600 === 0) return seconds / 3600 + "h";
    if (seconds % 60 === 0) return seconds / 60 + "m";
    return seconds + "s";
  }

  // ---- PromQL helpers -----------------------------------------------------

  function quoteLabel(v) {
    return '"' + String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") + '"';
  }

  // name{k="v",...} (or {__name__="..."} for names PromQL cannot spell).
  function selector(name, labels) {
    const parts = [];
    const plain = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name);
    if (!plain) parts.push("__name__=" + quoteLabel(name));
    for (const [k, v] of Object.entries(labels)) parts.push(k + "=" + quoteLabel(v));
    return (plain ? name : "") + "{" + parts.join(",") + "}";
  }

  // {k="v",...}: a selector of labels only.
  function matchers(labels) {
    return "{" + Object.entries(labels).map(([k, v]) => k + "=" + quoteLabel(v)).join(",") + "}";
  }

  function labelText(metric, skipName) {
    const keys = Object.keys(metric || {})
      .filter((k) => !(skipName && k === "__name__"))
      .sort();
    const name = !skipName && metric && metric.__name__ ? metric.__name__ : "";
    const inner = keys
      .filter((k) => k !== "__name__")
      .map((k) => k + "=" + quoteLabel(metric[k]))
      .join(", ");
    return name + "{" + inner + "}";
  }

  // Steps that make round numbers on the axis.
  const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400];
  function stepFor(range, points) {
    const want = range / (points || 600);
    for (const s of STEPS) if (s >= want) return s;
    return Math.ceil(want);
  }

  // ---- DOM helpers --------------------------------------------------------

  // h("div.cls", {attr}, children...): attributes as properties except
  // data-*, aria-* and role (no inline style attributes: the CSP forbids them).
  function h(tag, attrs, ...children) {
    const [name, ...classes] = tag.split(".");
    const el = document.createElement(name || "div");
    if (classes.length) el.className = classes.join(" ");
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("data-") || k.startsWith("aria-") || k === "role" || k === "for" || k === "scope")
        el.setAttribute(k, v === true ? "" : String(v));
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el[k] = v;
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function errorBox(err, what) {
    const text = err instanceof ApiError ? err.describe() : String(err && err.message ? err.message : err);
    return h("div.error", { role: "alert" }, (what ? what + ": " : "") + text);
  }

  function emptyBox(text) {
    return h("div.empty", {}, text);
  }

  function badge(state) {
    return h("span.badge." + state, {}, state);
  }

  function labelChips(metric, skip) {
    return h(
      "span.chips",
      {},
      Object.keys(metric || {})
        .filter((k) => !(skip || []).includes(k))
        .sort()
        .map((k) => h("span.chip", {}, k + "=" + metric[k]))
    );
  }

  // ---- State in the URL ---------------------------------------------------

  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, "");
    const q = raw.indexOf("?");
    const page = (q < 0 ? raw : raw.slice(0, q)) || "instances";
    const params = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
    return { page, params };
  }

  function hashFor(page, params) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, v);
    const s = p.toString();
    return "#/" + page + (s ? "?" + s : "");
  }

  // The shared controls: range (seconds) and refresh (seconds, 0 = off).
  const settings = { range: 3600, refresh: 10 };

  function globalParams() {
    return { range: durationText(settings.range), refresh: settings.refresh ? durationText(settings.refresh) : "off" };
  }

  function link(page, params) {
    return hashFor(page, Object.assign({}, params, globalParams()));
  }

  // Rewrites the fragment without a new history entry or a re-render.
  function replaceParams(extra) {
    const { page, params } = parseHash();
    const all = Object.fromEntries(params.entries());
    Object.assign(all, extra, globalParams());
    history.replaceState(null, "", hashFor(page, all));
  }

  // ---- Charts -------------------------------------------------------------

  const BYTE_INCRS = [];
  for (let p = 0; p <= 60; p += 10) for (const m of [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]) BYTE_INCRS.push(m * 2 ** p);

  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];

  // A time-series chart of one query_range result. The container's data-*
  // attributes say what it shows (the browser test reads them).
  class Chart {
    constructor(parent, opts) {
      this.opts = Object.assign({ height: 180, title: "", unit: "", rate: false }, opts);
      this.el = h("figure.chart", { "data-state": "loading" });
      this.head = h("figcaption", {});
      this.body = h("div.plot", {});
      this.note = h("div.note", {});
      this.el.append(this.head, this.body, this.note);
      parent.append(this.el);
      this.setTitle(this.opts.title, this.opts.subtitle, this.opts.extra);
      this.plot = null;
      this.keys = "";
      this.resize = new ResizeObserver(() => {
        if (this.plot) {
          const w = this.width();
          if (Math.abs(w - this.plot.width) > 2) this.plot.setSize({ width: w, height: this.opts.height });
        }
      });
      this.resize.observe(this.body);
    }

    setTitle(title, subtitle, extra) {
      this.head.replaceChildren(...[h("span.title", {}, title), subtitle ? h("span.sub", {}, subtitle) : null, extra].filter(Boolean));
    }

    width() {
      return Math.max(200, this.body.clientWidth || this.el.clientWidth || 600);
    }

    setError(err) {
      this.el.dataset.state = "error";
      this.note.replaceChildren(errorBox(err));
    }

    // result: query_range's data.result (a matrix).
    setData(result, start, end, step, query) {
      const n = Math.floor((end - start) / step) + 1;
      const xs = new Array(n);
      for (let i = 0; i < n; i++) xs[i] = start + i * step;
      const series = [];
      let points = 0;
      for (const s of result) {
        const ys = new Array(n).fill(null);
        for (const [t, v] of s.values || []) {
          const i = Math.round((t - start) / step);
          if (i < 0 || i >= n) continue;
          const y = parseValue(v);
          ys[i] = Number.isFinite(y) ? y : null;
          if (ys[i] !== null) points++;
        }
        series.push({ metric: s.metric || {}, ys });
      }
      series.sort((a, b) => labelText(a.metric).localeCompare(labelText(b.metric)));
      const keys = series.map((s) => labelText(s.metric)).join("\n");
      const data = [xs, ...series.map((s) => s.ys)];
      Object.assign(this.el.dataset, {
        query: query || "",
        start: String(start),
        end: String(end),
        step: String(step),
        points: String(points),
        series: String(series.length),
      });
      if (!series.length || points === 0) {
        this.destroyPlot();
        this.el.dataset.state = "empty";
        this.note.replaceChildren(emptyBox(series.length ? "No samples in this range." : "No series match in this range."));
        return;
      }
      this.note.replaceChildren();
      if (this.opts.auto) {
        const g = guessUnit(query || "", result);
        if (g.unit !== this.opts.unit || g.rate !== this.opts.rate) {
          Object.assign(this.opts, g);
          this.keys = ""; // new formatters: a new plot
        }
      }
      if (this.plot && keys === this.keys) {
        this.plot.setData(data);
      } else {
        this.destroyPlot();
        this.keys = keys;
        this.plot = new uPlot(this.options(series), data, this.body);
      }
      this.el.dataset.state = "ready";
    }

    options(series) {
      const { unit, rate, height } = this.opts;
      const fmt = (v) => formatValue(v, unit, rate);
      const tick = (v) => (unit ? fmt(v) : axisNumber(v) + (rate ? "/s" : ""));
      const multi = series.length > 1;
      return {
        width: this.width(),
        height,
        scales: { x: { time: true } },
        cursor: { drag: { x: true, y: false } },
        legend: { live: true },
        series: [
          { label: "time", value: (u, v) => (v === null ? "–" : new Date(v * 1000).toLocaleString()) },
          ...series.map((s, i) => ({
            label: multi || Object.keys(s.metric).length ? labelText(s.metric, true) : this.opts.title,
            stroke: PALETTE[i % PALETTE.length],
            width: 1.5,
            spanGaps: false,
            value: (u, v) => fmt(v),
          })),
        ],
        axes: [
          { stroke: "#333", grid: { stroke: "#e5e5e5" }, ticks: { stroke: "#ccc" } },
          {
            stroke: "#333",
            size: 78,
            grid: { stroke: "#e5e5e5" },
            ticks: { stroke: "#ccc" },
            values: (u, splits) => splits.map(tick),
            // Bytes tick at 1, 2, 4, 8 ... of B, KiB, MiB, GiB: round in their unit.
            incrs: unit === "bytes" ? BYTE_INCRS : undefined,
          },
        ],
      };
    }

    destroyPlot() {
      if (this.plot) {
        this.plot.destroy();
        this.plot = null;
        this.keys = "";
      }
      this.body.replaceChildren();
    }

    destroy() {
      this.resize.disconnect();
      this.destroyPlot();
      this.el.remove();
    }
  }

  // Fetches a range query into a chart over the current range.
  async function fillChart(chart, query, signal, points) {
    const end = Date.now() / 1000;
    const step = stepFor(settings.range, points);
    // Steps on multiples of the step: a refresh redraws the same instants.
    const alignedEnd = Math.ceil(end / step) * step;
    const start = alignedEnd - settings.range;
    try {
      const data = await api("query_range", { query, start, end: alignedEnd, step }, signal);
      if (data.resultType !== "matrix") throw new ApiError("expected a matrix, got " + data.resultType, "ui");
      chart.setData(data.result, start, alignedEnd, step, query);
    } catch (e) {
      if (e.name === "AbortError") return;
      chart.setError(e);
    }
  }

  // A small line of the values, for the instances table (a canvas of its own).
  function sparkline(values, width, height) {
    const c = h("canvas.spark", { width: width * devicePixelRatio, height: height * devicePixelRatio, "aria-hidden": "true" });
    c.width = width * devicePixelRatio;
    c.height = height * devicePixelRatio;
    c.style.width = width + "px";
    c.style.height = height + "px";
    const ys = values.filter((v) => v !== null);
    if (ys.length < 2) return c;
    const min = Math.min(...ys);
    const max = Math.max(...ys);
    const g = c.getContext("2d");
    g.scale(devicePixelRatio, devicePixelRatio);
    g.strokeStyle = "#1f77b4";
    g.lineWidth = 1.25;
    g.beginPath();
    let started = false;
    values.forEach((v, i) => {
      if (v === null) {
        started = false;
        return;
      }
      const x = (i / (values.length - 1)) * (width - 2) + 1;
      const y = max === min ? height / 2 : height - 1 - ((v - min) / (max - min)) * (height - 2);
      if (started) g.lineTo(x, y);
      else g.moveTo(x, y);
      started = true;
    });
    g.stroke();
    return c;
  }

  // ---- Pages --------------------------------------------------------------
  // Each page: mount(main, params) -> { refresh(signal), destroy() }.

  function instanceKey(m) {
    return (m.instance || "") + "\u0000" + (m.job || "");
  }

  function byInstance(result) {
    const out = new Map();
    for (const s of result || []) out.set(instanceKey(s.metric), parseValue(s.value[1]));
    return out;
  }

  // One collator for every comparison (String.localeCompare builds its
  // rules at each call); numeric: web-2 before web-10.
  const collate = new Intl.Collator(undefined, { numeric: true }).compare;

  const INSTANCE_COLUMNS = [
    { key: "up", label: "Status" },
    { key: "instance", label: "Instance" },
    { key: "job", label: "Job" },
    { key: "last", label: "Last push" },
    { key: "rss", label: "Resident memory" },
    { key: "heap", label: "Heap in use" },
    { key: "allocs", label: "Allocations /s" },
  ];

  function instancesPage(main, params) {
    let filter = params.get("filter") || "";
    let sort = params.get("sort") || "up";
    let desc = params.get("desc") === "1";
    let rows = [];
    let built = null; // the rows whose elements are in the table, in order
    let builtSort = "";
    const filterBox = h("input.filter", {
      type: "search",
      placeholder: "filter: instance or job (regular expression)",
      value: filter,
      "aria-label": "Filter instances",
      oninput: () => {
        filter = filterBox.value;
        replaceParams({ filter });
        draw();
      },
    });
    const summary = h("p.summary", { role: "status" });
    const errors = h("div.errors");
    const tbody = h("tbody");
    const headRow = h("tr");
    const table = h("table.instances", {}, h("thead", {}, headRow), tbody);
    main.replaceChildren(h("h1", {}, "Instances"), h("div.toolbar", {}, filterBox, summary), errors, table);

    function drawHead() {
      headRow.replaceChildren(
        ...INSTANCE_COLUMNS.map((c) =>
          h(
            "th",
            { scope: "col", "aria-sort": sort === c.key ? (desc ? "descending" : "ascending") : "none" },
            h(
              "button.sort",
              {
                type: "button",
                onclick: () => {
                  if (sort === c.key) desc = !desc;
                  else {
                    sort = c.key;
                    desc = false;
                  }
                  replaceParams({ sort, desc: desc ? "1" : "" });
                  drawHead();
                  draw();
                },
              },
              c.label,
              sort === c.key ? (desc ? " ▼" : " ▲") : ""
            )
          )
        )
      );
    }
    drawHead();

    function compare(a, b) {
      let r = 0;
      const num = (x) => (Number.isFinite(x) ? x : -Infinity);
      switch (sort) {
        case "up":
          r = num(a.up) - num(b.up); // down (0) first
          break;
        case "last":
          r = num(b.last) - num(a.last); // most recent first
          break;
        case "rss":
        case "heap":
        case "allocs":
          r = num(b[sort]) - num(a[sort]); // biggest first
          break;
        case "job":
          r = collate(a.job, b.job);
          break;
      }
      if (r === 0) r = collate(a.instance, b.instance) || collate(a.job, b.job);
      return desc ? -r : r;
    }

    function draw() {
      let re = null;
      let bad = "";
      if (filter) {
        try {
          re = new RegExp(filter, "i");
        } catch (e) {
          bad = e.message;
        }
      }
      rows.sort(compare);
      const shown = rows.filter((r) => !re || re.test(r.instance) || re.test(r.job));
      const down = rows.filter((r) => r.up !== 1).length;
      summary.textContent =
        intFmt.format(rows.length) + (rows.length === 1 ? " instance" : " instances") + ", " + intFmt.format(down) + " down" +
        (shown.length !== rows.length ? ", " + intFmt.format(shown.length) + " shown" : "") +
        (bad ? " (the filter is not a valid expression: " + bad + ")" : "");
      // Same rows in the same order: a filter only hides and shows them.
      if (built === rows && builtSort === sort + desc) {
        const on = new Set(shown);
        for (const r of rows) r.el.hidden = !on.has(r);
        return;
      }
      const now = Date.now() / 1000;
      const frag = document.createDocumentFragment();
      for (const r of rows) {
        // A row is built once per refresh; filtering and sorting reuse it.
        if (r.el) {
          frag.append(r.el);
          continue;
        }
        const state = r.up === 1 ? "up" : "down";
        frag.append(
          (r.el = h(
            "tr",
            { "data-instance": r.instance, "data-job": r.job, "data-state": state },
            h("td", {}, badge(state)),
            h("td", {}, h("a", { href: link("instance", { instance: r.instance, job: r.job }) }, r.instance || "(none)")),
            h("td", {}, r.job),
            h("td", { title: timeText(r.last) }, ago(now - r.last)),
            h("td.num", {}, r.spark ? sparkline(r.spark, 80, 20) : null, " ", formatValue(r.rss, "bytes")),
            h("td.num", {}, formatValue(r.heap, "bytes")),
            h("td.num", {}, Number.isFinite(r.allocs) ? formatValue(r.allocs, "", true) : "–")
          ))
        );
      }
      const on = new Set(shown);
      for (const r of rows) r.el.hidden = !on.has(r);
      tbody.replaceChildren(frag);
      built = rows;
      builtSort = sort + desc;
      if (!rows.length) {
        tbody.append(
          h("tr", {}, h("td", { colSpan: INSTANCE_COLUMNS.length }, emptyBox("No instance has pushed yet: start an agent (metrics-agent -a <this server>) and it appears here.")))
        );
      }
    }

    async function refresh(signal) {
      const step = stepFor(settings.range, 60);
      const end = Math.ceil(Date.now() / 1000 / step) * step;
      const rate = "[" + durationText(Math.max(60, 4 * stepFor(settings.range))) + "]";
      const asks = {
        up: api("query", { query: "agent_up" }, signal),
        last: api("query", { query: "agent_last_push_timestamp_seconds" }, signal),
        rss: api("query", { query: "sum by (instance, job) (ProcessRSS)" }, signal),
        heap: api("query", { query: "sum by (instance, job) (HeapInuse)" }, signal),
        allocs: api("query", { query: "sum by (instance, job) (rate(Mallocs" + rate + "))" }, signal),
        spark: api(
          "query_range",
          { query: "sum by (instance, job) (ProcessRSS)", start: end - settings.range, end, step },
          signal
        ),
      };
      const names = Object.keys(asks);
      const settled = await Promise.allSettled(Object.values(asks));
      if (signal.aborted) return;
      const got = {};
      const failures = [];
      settled.forEach((s, i) => {
        if (s.status === "fulfilled") got[names[i]] = s.value;
        else if (s.reason && s.reason.name !== "AbortError") failures.push([names[i], s.reason]);
      });
      errors.replaceChildren(...failures.map(([n, e]) => errorBox(e, n === "up" ? "agent_up" : n)));
      if (!got.up) {
        rows = [];
        draw();
        throw failures.length ? failures[0][1] : new Error("no answer");
      }
      const last = byInstance(got.last && got.last.result);
      const rss = byInstance(got.rss && got.rss.result);
      const heap = byInstance(got.heap && got.heap.result);
      const allocs = byInstance(got.allocs && got.allocs.result);
      const spark = new Map();
      if (got.spark) {
        const start = end - settings.range;
        const n = Math.floor(settings.range / step) + 1;
        for (const s of got.spark.result) {
          const ys = new Array(n).fill(null);
          for (const [t, v] of s.values) {
            const i = Math.round((t - start) / step);
            if (i >= 0 && i < n) ys[i] = parseValue(v);
          }
          spark.set(instanceKey(s.metric), ys);
        }
      }
      rows = got.up.result.map((s) => {
        const k = instanceKey(s.metric);
        return {
          instance: s.metric.instance || "",
          job: s.metric.job || "",
          up: parseValue(s.value[1]),
          last: last.get(k),
          rss: rss.get(k),
          heap: heap.get(k),
          allocs: allocs.get(k),
          spark: spark.get(k),
        };
      });
      draw();
    }

    return { refresh, destroy() {} };
  }

  function instancePage(main, params) {
    const instance = params.get("instance") || "";
    const job = params.get("job") || "";
    let filter = params.get("filter") || "";
    const ident = { instance, job };
    const charts = new Map(); // name -> { chart, query }
    const types = new Map();
    let metadataAsked = false;
    const status = h("p.summary", { role: "status" });
    const errors = h("div.errors");
    const grid = h("div.charts");
    const filterBox = h("input.filter", {
      type: "search",
      placeholder: "filter charts by name (regular expression)",
      value: filter,
      "aria-label": "Filter charts",
      oninput: () => {
        filter = filterBox.value;
        replaceParams({ filter });
        applyFilter();
      },
    });
    main.replaceChildren(
      h("p.crumbs", {}, h("a", { href: link("instances", {}) }, "Instances"), " › "),
      h("h1", {}, instance || "(no instance)", h("span.job", {}, job ? " job " + job : "")),
      status,
      h("div.toolbar", {}, filterBox),
      errors,
      grid
    );

    function applyFilter() {
      let re = null;
      try {
        re = filter ? new RegExp(filter, "i") : null;
      } catch (_) {
        re = null;
      }
      for (const [name, c] of charts) c.chart.el.hidden = !!re && !re.test(name);
    }

    function queryFor(name) {
      const sel = selector(name, ident);
      if (!isCumulative(name, types.get(name))) return sel;
      const w = durationText(Math.max(60, 4 * stepFor(settings.range)));
      return "rate(" + sel + "[" + w + "])";
    }

    function order(a, b) {
      const ia = KEY_NAMES.indexOf(a);
      const ib = KEY_NAMES.indexOf(b);
      if (ia >= 0 || ib >= 0) return (ia < 0 ? 999 : ia) - (ib < 0 ? 999 : ib);
      return a.localeCompare(b);
    }

    async function refresh(signal) {
      if (!metadataAsked) {
        metadataAsked = true;
        try {
          const md = await api("metadata", {}, signal);
          for (const [name, list] of Object.entries(md || {})) if (list && list[0]) types.set(name, list[0].type);
        } catch (e) {
          if (e.name === "AbortError") return;
          /* metadata is optional: names and the agent's docs decide */
        }
      }
      const end = Date.now() / 1000;
      const now = Math.floor(end);
      const [series, up, last] = await Promise.all([
        api("series", { "match[]": matchers(ident), start: Math.floor(end - settings.range), end: now }, signal),
        api("query", { query: selector("agent_up", ident) }, signal).catch(() => null),
        api("query", { query: selector("agent_last_push_timestamp_seconds", ident) }, signal).catch(() => null),
      ]);
      if (signal.aborted) return;
      errors.replaceChildren();
      const upv = up && up.result[0] ? parseValue(up.result[0].value[1]) : NaN;
      const lastv = last && last.result[0] ? parseValue(last.result[0].value[1]) : NaN;
      status.replaceChildren(
        badge(upv === 1 ? "up" : "down"),
        " last push " + ago(end - lastv),
        Number.isFinite(lastv) ? " (" + timeText(lastv) + ")" : ""
      );
      const names = [...new Set(series.map((s) => s.__name__))]
        .filter((n) => n && n !== "agent_up" && n !== "agent_last_push_timestamp_seconds")
        .sort(order);
      if (!names.length) {
        grid.replaceChildren(emptyBox("No series of this instance in the last " + durationText(settings.range) + "."));
        charts.clear();
        return;
      }
      if (!charts.size) grid.replaceChildren();
      // New series get a chart where their order puts them (live).
      for (const name of names) {
        if (charts.has(name)) continue;
        const rate = isCumulative(name, types.get(name));
        const query = queryFor(name);
        const chart = new Chart(grid, {
          title: name + (rate ? " per second" : ""),
          subtitle: DESCRIPTIONS[name] || "",
          unit: unitOf(name),
          rate,
          extra: h("a.explore", { href: link("explore", { q: query }) }, "explore"),
        });
        chart.el.dataset.name = name;
        charts.set(name, { chart, query });
      }
      const sorted = [...charts.keys()].sort(order);
      sorted.forEach((name) => grid.append(charts.get(name).chart.el));
      applyFilter();
      await Promise.all(
        [...charts.entries()].map(([name, c]) => {
          c.query = queryFor(name);
          return fillChart(c.chart, c.query, signal);
        })
      );
    }

    return {
      refresh,
      destroy() {
        for (const c of charts.values()) c.chart.destroy();
      },
    };
  }

  function explorePage(main, params) {
    let query = params.get("q") || "";
    let tab = params.get("tab") || "graph";
    const box = h("textarea.query", {
      rows: 2,
      value: query,
      spellcheck: false,
      placeholder: "PromQL, e.g. sum by (instance) (ProcessRSS) — Enter runs, Shift+Enter is a new line",
      "aria-label": "PromQL query",
      onkeydown: (e) => {
        if (e.key === "Enter" && !e.shiftKey) {
          e.preventDefault();
          run();
        }
      },
    });
    const names = h("select.names", {
      "aria-label": "Insert a metric name",
      onchange: () => {
        if (!names.value) return;
        const at = box.selectionStart ?? box.value.length;
        box.value = box.value.slice(0, at) + names.value + box.value.slice(box.selectionEnd ?? at);
        names.value = "";
        box.focus();
      },
    }, h("option", { value: "" }, "insert a metric…"));
    const runButton = h("button.run", { type: "button", onclick: () => run() }, "Run");
    const tabs = h("div.tabs", { role: "tablist" });
    const out = h("div.result");
    const errors = h("div.errors", { "aria-live": "polite" });
    main.replaceChildren(
      h("h1", {}, "Explore"),
      h("div.querybar", {}, box, h("div.querybuttons", {}, runButton, names)),
      errors,
      tabs,
      out
    );
    let chart = null;

    function drawTabs() {
      tabs.replaceChildren(
        ...["graph", "table"].map((t) =>
          h(
            "button.tab",
            {
              type: "button",
              role: "tab",
              "aria-selected": tab === t ? "true" : "false",
              onclick: () => {
                tab = t;
                replaceParams({ q: query, tab });
                drawTabs();
                show(new AbortController().signal);
              },
            },
            t === "graph" ? "Graph" : "Table"
          )
        )
      );
    }
    drawTabs();

    api("label/__name__/values", {})
      .then((list) => names.append(...list.map((n) => h("option", { value: n }, n))))
      .catch(() => {});

    function run() {
      query = box.value.trim();
      replaceParams({ q: query, tab });
      show(new AbortController().signal);
    }

    async function show(signal) {
      errors.replaceChildren();
      if (!query) {
        if (chart) chart.destroy();
        chart = null;
        out.replaceChildren(emptyBox("Type a query and press Enter."));
        out.dataset.state = "idle";
        return;
      }
      if (tab === "graph") {
        if (!chart || !out.contains(chart.el)) {
          out.replaceChildren();
          chart = new Chart(out, { title: query, height: 320, auto: true });
        }
        chart.setTitle(query);
        await fillChart(chart, query, signal);
        out.dataset.state = chart.el.dataset.state;
        if (chart.el.dataset.state === "error") {
          // The error goes above the result, where the query is.
          errors.replaceChildren(...chart.note.childNodes);
          chart.el.hidden = true;
        } else {
          chart.el.hidden = false;
        }
        return;
      }
      if (chart) chart.destroy();
      chart = null;
      try {
        const data = await api("query", { query }, signal);
        out.replaceChildren(resultTable(data));
        out.dataset.state = "ready";
      } catch (e) {
        if (e.name === "AbortError") return;
        out.replaceChildren();
        out.dataset.state = "error";
        errors.replaceChildren(errorBox(e));
      }
    }

    function resultTable(data) {
      const rows = [];
      if (data.resultType === "scalar" || data.resultType === "string") {
        rows.push([data.resultType, data.result[1]]);
      } else if (data.resultType === "vector") {
        for (const s of data.result) rows.push([labelText(s.metric), formatValue(parseValue(s.value[1]), unitOf(s.metric.__name__)), s.value[1]]);
      } else if (data.resultType === "matrix") {
        for (const s of data.result)
          rows.push([labelText(s.metric), s.values.map(([t, v]) => v + " @" + t).join("\n")]);
      }
      if (!rows.length) return emptyBox("The query returned no series.");
      return h(
        "table.results",
        {},
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Series"), h("th", { scope: "col" }, "Value"), data.resultType === "vector" ? h("th", { scope: "col" }, "Raw") : null)),
        h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h(i ? "td.num" : "td", {}, c)))))
      );
    }

    return {
      refresh: show,
      destroy() {
        if (chart) chart.destroy();
      },
    };
  }

  function alertsPage(main) {
    const body = h("div");
    main.replaceChildren(h("h1", {}, "Alerts"), body);
    async function refresh(signal) {
      const data = await api("alerts", {}, signal);
      const alerts = (data.alerts || []).slice().sort((a, b) => {
        const rank = (s) => (s === "firing" ? 0 : s === "pending" ? 1 : 2);
        return rank(a.state) - rank(b.state) || (a.labels.alertname || "").localeCompare(b.labels.alertname || "");
      });
      const firing = alerts.filter((a) => a.state === "firing").length;
      const pending = alerts.filter((a) => a.state === "pending").length;
      if (!alerts.length) {
        body.replaceChildren(emptyBox("No alert is firing or pending."));
        return;
      }
      const now = Date.now() / 1000;
      body.replaceChildren(
        h("p.summary", {}, firing + " firing, " + pending + " pending"),
        h(
          "table.alerts",
          {},
          h("thead", {}, h("tr", {}, ["State", "Alert", "Labels", "Annotations", "Since", "Value"].map((c) => h("th", { scope: "col" }, c)))),
          h(
            "tbody",
            {},
            alerts.map((a) => {
              const since = a.activeAt ? Date.parse(a.activeAt) / 1000 : NaN;
              return h(
                "tr",
                { "data-state": a.state },
                h("td", {}, badge(a.state)),
                h("td", {}, a.labels.alertname || ""),
                h("td", {}, labelChips(a.labels, ["alertname"])),
                h("td", {}, Object.entries(a.annotations || {}).map(([k, v]) => h("div.annotation", {}, h("b", {}, k + ": "), v))),
                h("td", { title: timeText(since) }, Number.isFinite(since) ? ago(now - since) : "–"),
                h("td.num", {}, a.value !== undefined ? humanNumber(parseValue(a.value)) : "")
              );
            })
          )
        )
      );
    }
    return { refresh, destroy() {} };
  }

  function rulesPage(main) {
    const body = h("div");
    main.replaceChildren(h("h1", {}, "Rules"), body);
    async function refresh(signal) {
      const data = await api("rules", {}, signal);
      const groups = data.groups || [];
      if (!groups.length) {
        body.replaceChildren(emptyBox("No rules are loaded (start the server with --rules FILE)."));
        return;
      }
      const now = Date.now() / 1000;
      const when = (t) => {
        const s = t ? Date.parse(t) / 1000 : NaN;
        return Number.isFinite(s) && s > 0 ? ago(now - s) : "never";
      };
      body.replaceChildren(
        ...groups.map((g) =>
          h(
            "section.group",
            {},
            h(
              "h2",
              {},
              g.name,
              h("span.sub", {}, " " + (g.file || "") + " · every " + humanSeconds(g.interval || 0) + " · last evaluation " + when(g.lastEvaluation) + (g.evaluationTime !== undefined ? " · took " + humanSeconds(g.evaluationTime) : ""))
            ),
            h(
              "table.rules",
              {},
              h("thead", {}, h("tr", {}, ["Rule", "Query", "Health", "State", "Last evaluation", "Took"].map((c) => h("th", { scope: "col" }, c)))),
              h(
                "tbody",
                {},
                (g.rules || []).map((r) =>
                  h(
                    "tr",
                    { "data-health": r.health },
                    h("td", {}, h("span.kind", {}, r.type === "alerting" ? "alert " : "record "), h("b", {}, r.name), r.duration ? h("div.sub", {}, "for " + humanSeconds(r.duration)) : null, r.labels && Object.keys(r.labels).length ? labelChips(r.labels) : null),
                    h("td", {}, h("a.code", { href: link("explore", { q: r.query }) }, r.query)),
                    h("td", {}, badge(r.health || "unknown"), r.lastError ? h("div.error", { role: "alert" }, r.lastError) : null),
                    h("td", {}, r.type === "alerting" ? badge(r.state || "inactive") : "", r.alerts && r.alerts.length ? " " + r.alerts.length : ""),
                    h("td", {}, when(r.lastEvaluation)),
                    h("td.num", {}, r.evaluationTime !== undefined ? humanSeconds(r.evaluationTime) : "")
                  )
                )
              )
            )
          )
        )
      );
    }
    return { refresh, destroy() {} };
  }

  const PAGES = { instances: instancesPage, instance: instancePage, explore: explorePage, alerts: alertsPage, rules: rulesPage };

  // ---- The shell: navigation, refresh timer, status line ------------------

  const main = document.getElementById("main");
  const statusLine = document.getElementById("status");
  const rangeSelect = document.getElementById("range");
  const refreshSelect = document.getElementById("refresh");
  let current = null;
  let currentPage = "";
  let controller = null;
  let timer = 0;
  let busy = false;

  async function refreshNow() {
    if (!current) return;
    if (controller) controller.abort();
    controller = new AbortController();
    const mine = controller;
    busy = true;
    document.body.dataset.busy = "1";
    try {
      await current.refresh(mine.signal);
      if (mine.signal.aborted) return;
      statusLine.textContent = "updated " + new Date().toLocaleTimeString();
      statusLine.className = "status";
    } catch (e) {
      if (e.name === "AbortError" || mine.signal.aborted) return;
      statusLine.textContent = "update failed";
      statusLine.className = "status failed";
      if (currentPage !== "instances") main.append(errorBox(e));
    } finally {
      if (controller === mine) {
        busy = false;
        delete document.body.dataset.busy;
        document.body.dataset.refreshed = String((parseInt(document.body.dataset.refreshed || "0", 10) || 0) + 1);
      }
    }
  }

  function schedule() {
    clearInterval(timer);
    timer = 0;
    if (settings.refresh > 0) {
      timer = setInterval(() => {
        if (!document.hidden && !busy) refreshNow();
      }, settings.refresh * 1000);
    }
  }

  function selectValue(select, seconds) {
    const v = String(seconds);
    if (![...select.options].some((o) => o.value === v)) {
      select.append(h("option", { value: v }, durationText(seconds)));
    }
    select.value = v;
  }

  function route() {
    const { page, params } = parseHash();
    const range = parseDuration(params.get("range"));
    if (Number.isFinite(range) && range >= 60) settings.range = Math.round(range);
    const refreshParam = params.get("refresh");
    if (refreshParam === "off" || refreshParam === "0") settings.refresh = 0;
    else {
      const r = parseDuration(refreshParam);
      if (Number.isFinite(r) && r >= 1) settings.refresh = Math.round(r);
    }
    selectValue(rangeSelect, settings.range);
    selectValue(refreshSelect, settings.refresh);
    const make = PAGES[page] || PAGES.instances;
    if (controller) controller.abort();
    if (current) current.destroy();
    main.replaceChildren();
    currentPage = PAGES[page] ? page : "instances";
    document.querySelectorAll("nav a[data-page]").forEach((a) => {
      const on = a.dataset.page === currentPage || (currentPage === "instance" && a.dataset.page === "instances");
      if (on) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
    document.title = (currentPage[0].toUpperCase() + currentPage.slice(1)) + " · Metrics";
    delete document.body.dataset.refreshed; // counts this page's refreshes
    current = make(main, params);
    schedule();
    refreshNow();
  }

  rangeSelect.addEventListener("change", () => {
    settings.range = parseInt(rangeSelect.value, 10);
    replaceParams({});
    refreshNow();
  });
  refreshSelect.addEventListener("change", () => {
    settings.refresh = parseInt(refreshSelect.value, 10);
    replaceParams({});
    schedule();
  });
  // Keep the nav links carrying the range and refresh.
  document.querySelectorAll("nav a[data-page]").forEach((a) =>
    a.addEventListener("click", (e) => {
      e.preventDefault();
      location.hash = link(a.dataset.page, {});
    })
  );
  document.addEventListener("keydown", (e) => {
    // "/" focuses the page's filter or query box, as in many tools.
    if (e.key === "/" && !/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)) {
      const box = main.querySelector("input.filter, textarea.query");
      if (box) {
        e.preventDefault();
        box.focus();
      }
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && settings.refresh > 0) refreshNow();
  });
  // replaceState does not fire hashchange; a link followed or pasted does.
  window.addEventListener("hashchange", route);

  // For tests and the curious: the formatting functions.
  window.metricsUi = { formatValue, humanBytes, parseDuration, unitOf, stepFor };
  route();
})();
