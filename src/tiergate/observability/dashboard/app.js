// tiergate dashboard: polls /dashboard/api/summary with the admin key (kept in this tab's
// sessionStorage, sent only as a Bearer header, never in a URL) and draws plain SVG charts.
// Every value from the server is written with textContent: request reasons can quote prompts.
"use strict";

(() => {
  const STORAGE = "tiergate.adminKey";
  const POLL_MS = 3000;
  const MAX_BARS = 60;
  const NS = "http://www.w3.org/2000/svg";
  const TIER_COLORS = { budget: "#3ebd93", standard: "#2f80ed", premium: "#8e44ad" };
  const EXTRA_COLORS = ["#f0b429", "#e66a6a", "#47a3f3", "#9aa5b1"];
  const $ = (id) => document.getElementById(id);
  let timer = null;

  // -- DOM helpers ----------------------------------------------------------------------
  function svgEl(tag, attrs = {}, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function el(tag, attrs = {}, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function canvas(container, width, height) {
    const s = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
    container.replaceChildren(s);
    return s;
  }
  function empty(container, message) {
    container.replaceChildren(el("div", { class: "empty" }, message));
  }

  // -- formatting -----------------------------------------------------------------------
  function usd(v) {
    if (v === null || v === undefined) return "–";
    const a = Math.abs(v);
    if (a >= 1000) return "$" + v.toLocaleString("en-US", { maximumFractionDigits: 0 });
    if (a >= 1) return "$" + v.toFixed(2);
    if (a >= 0.01) return "$" + v.toFixed(3);
    if (a === 0) return "$0";
    return "$" + v.toPrecision(2);
  }
  const pct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%");
  const ms = (v) => (v === null || v === undefined ? "–" : v >= 1000 ? (v / 1000).toFixed(2) + " s" : Math.round(v) + " ms");
  const count = (v) => Number(v).toLocaleString("en-US");
  const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const tierColor = (tier, i) => TIER_COLORS[tier] || EXTRA_COLORS[i % EXTRA_COLORS.length];

  // -- charts ---------------------------------------------------------------------------
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function grid(s, x0, x1, y0, y1, max, fmt) {
    for (let i = 0; i <= 4; i++) {
      const y = y1 - ((y1 - y0) * i) / 4;
      s.append(svgEl("line", { x1: x0, x2: x1, y1: y, y2: y, class: "axis" }));
      s.append(svgEl("text", { x: x0 - 6, y: y + 4, "text-anchor": "end" }, fmt((max * i) / 4)));
    }
  }

  function timeLabels(s, times, xOf, y) {
    if (!times.length) return;
    const picks = times.length > 1 ? [0, Math.floor((times.length - 1) / 2), times.length - 1] : [0];
    for (const i of picks) {
      const anchor = i === 0 ? "start" : i === times.length - 1 ? "end" : "middle";
      s.append(svgEl("text", { x: xOf(i), y, "text-anchor": anchor }, clock(times[i])));
    }
  }

  // Group buckets so that at most MAX_BARS are drawn; sums every numeric field.
  function regroup(series) {
    const size = Math.max(1, Math.ceil(series.length / MAX_BARS));
    const out = [];
    for (let i = 0; i < series.length; i += size) {
      const group = { t: series[i].t };
      for (const b of series.slice(i, i + size)) {
        for (const [k, v] of Object.entries(b)) if (k !== "t") group[k] = (group[k] || 0) + v;
      }
      out.push(group);
    }
    return out;
  }

  function spendChart(container, series) {
    if (!series.some((b) => b.requests)) return empty(container, "No requests yet");
    const W = 640, H = 220, L = 64, R = 12, T = 10, B = 24;
    const s = canvas(container, W, H);
    let spend = 0, base = 0;
    const a = [], b = [];
    for (const p of series) { spend += p.cost_usd; base += p.baseline_cost_usd; a.push(spend); b.push(base); }
    const max = niceMax(Math.max(spend, base));
    grid(s, L, W - R, T, H - B, max, usd);
    const n = series.length;
    const xOf = (i) => (n === 1 ? (L + W - R) / 2 : L + ((W - R - L) * i) / (n - 1));
    const yOf = (v) => H - B - ((H - B - T) * v) / max;
    const path = (vals) => vals.map((v, i) => `${i ? "L" : "M"}${xOf(i).toFixed(1)},${yOf(v).toFixed(1)}`).join("");
    // the saving is the gap between the baseline and the spend
    const gap = path(b) + vals2back(a, xOf, yOf);
    s.append(svgEl("path", { d: gap, fill: "#3ebd93", "fill-opacity": 0.18, stroke: "none" }));
    s.append(svgEl("path", { d: path(b), fill: "none", stroke: "#9aa5b1", "stroke-width": 2, "stroke-dasharray": "5 4" }));
    s.append(svgEl("path", { d: path(a), fill: "none", stroke: "#2f80ed", "stroke-width": 2.5 }));
    if (n === 1) {
      s.append(svgEl("circle", { cx: xOf(0), cy: yOf(a[0]), r: 4, fill: "#2f80ed" }));
      s.append(svgEl("circle", { cx: xOf(0), cy: yOf(b[0]), r: 4, fill: "#9aa5b1" }));
    }
    s.append(svgEl("text", { x: W - R, y: yOf(base) - 6, "text-anchor": "end", class: "value" }, `baseline ${usd(base)}`));
    s.append(svgEl("text", { x: W - R, y: Math.min(yOf(spend) + 16, H - B - 4), "text-anchor": "end", class: "value" }, `spend ${usd(spend)}`));
    timeLabels(s, series.map((p) => p.t), xOf, H - 6);
  }
  function vals2back(vals, xOf, yOf) {
    let d = "";
    for (let i = vals.length - 1; i >= 0; i--) d += `L${xOf(i).toFixed(1)},${yOf(vals[i]).toFixed(1)}`;
    return d + "Z";
  }

  function trafficChart(container, series) {
    if (!series.some((b) => b.requests)) return empty(container, "No requests yet");
    const groups = regroup(series);
    const W = 640, H = 220, L = 44, R = 12, T = 10, B = 24;
    const s = canvas(container, W, H);
    // counts: a multiple of the four grid steps, so every gridline is a whole number
    const max = Math.max(4, Math.ceil(Math.max(...groups.map((g) => g.requests)) / 4) * 4);
    grid(s, L, W - R, T, H - B, max, (v) => count(Math.round(v)));
    const slot = (W - R - L) / groups.length;
    const bw = Math.max(2, slot * 0.75);
    const yOf = (v) => ((H - B - T) * v) / max;
    groups.forEach((g, i) => {
      const x = L + i * slot + (slot - bw) / 2;
      let y = H - B;
      const ok = g.requests - g.errors - g.fallbacks;
      for (const [v, color] of [[Math.max(ok, 0), "#2f80ed"], [g.fallbacks, "#de911d"], [g.errors, "#d64545"]]) {
        if (!v) continue;
        const hgt = yOf(v);
        y -= hgt;
        const r = svgEl("rect", { x, y, width: bw, height: hgt, fill: color, rx: 1 });
        r.append(svgEl("title", {}, `${clock(g.t)}: ${g.requests} requests, ${g.fallbacks} after fallback, ${g.errors} errors`));
        s.append(r);
      }
    });
    timeLabels(s, groups.map((g) => g.t), (i) => L + i * slot + slot / 2, H - 6);
  }

  function donut(container, tiers) {
    const entries = Object.entries(tiers).sort((a, b) => b[1] - a[1]);
    const total = entries.reduce((sum, [, v]) => sum + v, 0);
    if (!total) return empty(container, "No answered requests yet");
    const W = 300, H = 180, cx = 85, cy = 90, r = 70, inner = 44;
    const s = canvas(container, W, H);
    let angle = -Math.PI / 2;
    entries.forEach(([tier, v], i) => {
      const sweep = (2 * Math.PI * v) / total;
      const color = tierColor(tier, i);
      if (entries.length === 1) {
        s.append(svgEl("circle", { cx, cy, r: (r + inner) / 2, fill: "none", stroke: color, "stroke-width": r - inner }));
      } else {
        const end = angle + sweep;
        const large = sweep > Math.PI ? 1 : 0;
        const p = (rad, a) => `${(cx + rad * Math.cos(a)).toFixed(2)},${(cy + rad * Math.sin(a)).toFixed(2)}`;
        const d = `M${p(r, angle)}A${r},${r} 0 ${large} 1 ${p(r, end)}L${p(inner, end)}A${inner},${inner} 0 ${large} 0 ${p(inner, angle)}Z`;
        const seg = svgEl("path", { d, fill: color });
        seg.append(svgEl("title", {}, `${tier}: ${v}`));
        s.append(seg);
        angle = end;
      }
      const y = 40 + i * 26;
      s.append(svgEl("rect", { x: 180, y: y - 10, width: 12, height: 12, rx: 2, fill: color }));
      s.append(svgEl("text", { x: 198, y, class: "label" }, tier));
      s.append(svgEl("text", { x: W - 4, y, "text-anchor": "end", class: "value" }, `${Math.round((100 * v) / total)}%`));
    });
    s.append(svgEl("text", { x: cx, y: cy + 2, "text-anchor": "middle", class: "value", "font-size": 16 }, count(total)));
    s.append(svgEl("text", { x: cx, y: cy + 16, "text-anchor": "middle" }, "requests"));
  }

  // rows: [{label, bars: [{value, color}], text, marker?}]
  function hbars(container, rows, max, fmt, emptyText) {
    if (!rows.length) return empty(container, emptyText);
    const W = 320, L = 118, R = 64, row = 26, H = rows.length * row + 8;
    const s = canvas(container, W, H);
    const scale = (v) => ((W - L - R) * Math.max(v, 0)) / (max || 1);
    rows.forEach((r, i) => {
      const y = 4 + i * row;
      const label = r.label.length > 19 ? r.label.slice(0, 18) + "…" : r.label;
      const t = svgEl("text", { x: L - 6, y: y + 15, "text-anchor": "end", class: "label" }, label);
      t.append(svgEl("title", {}, r.label));
      s.append(t);
      const h = (row - 8) / r.bars.length;
      r.bars.forEach((b, j) => {
        s.append(svgEl("rect", { x: L, y: y + 2 + j * h, width: Math.max(scale(b.value), 1), height: h - 1, fill: b.color, rx: 2 }));
      });
      if (r.marker !== undefined) {
        const x = L + scale(r.marker);
        s.append(svgEl("line", { x1: x, x2: x, y1: y, y2: y + row - 4, stroke: "#1f2933", "stroke-width": 2 }));
      }
      s.append(svgEl("text", { x: W - R + 6, y: y + 15, class: "value" }, r.text));
    });
  }

  // -- panels ---------------------------------------------------------------------------
  function kpis(d) {
    const t = d.totals;
    $("kpi-spend").textContent = usd(t.cost_usd);
    $("kpi-spend-sub").textContent = `last ${Math.round(d.window_s / 60)} min · ${usd(d.since_start.cost_usd)} since start`;
    $("kpi-saved").textContent = usd(t.savings_usd);
    $("kpi-saved-sub").textContent = t.savings_pct === null ? "no baseline yet" : `${pct(t.savings_pct)} of ${usd(t.baseline_cost_usd)}`;
    $("kpi-requests").textContent = count(t.requests);
    $("kpi-requests-sub").textContent = t.rejected ? `${count(t.rejected)} rejected (4xx)` : "";
    $("kpi-cpr").textContent = usd(t.cost_per_request_usd);
    $("kpi-cache").textContent = pct(t.cache_hit_rate);
    $("kpi-errors").textContent = pct(t.error_rate);
    $("kpi-fallbacks").textContent = pct(t.fallback_rate);
  }

  function alerts(d) {
    const box = $("alerts");
    const items = [];
    for (const a of d.alerts) {
      items.push(el("div", { class: "alert" },
        `Quality alert: ${a.route} on ${a.model} averages ${a.average.toFixed(2)} over ${a.samples} scores, below the threshold ${a.threshold}`));
    }
    const open = Object.entries(d.circuits).filter(([, state]) => state !== "closed");
    if (open.length) {
      items.push(el("div", { class: "alert warn" }, `Circuit open: ${open.map(([dep, st]) => `${dep} (${st.replace("_", "-")})`).join(", ")}`));
    }
    box.replaceChildren(...items);
  }

  function circuits(d) {
    const entries = Object.entries(d.circuits);
    if (!entries.length) return empty($("circuits"), "No upstream calls yet");
    $("circuits").replaceChildren(...entries.map(([dep, state]) => {
      const row = el("div", { class: "circuit" });
      row.append(el("span", { title: dep }, dep), el("span", { class: `chip ${state}` }, state.replace("_", "-")));
      return row;
    }));
  }

  function recent(d) {
    const rows = d.recent.map((r) => {
      const tr = el("tr");
      const tier = el("td");
      if (r.tier) tier.append(el("span", { class: `tier ${r.tier}` }, r.tier));
      const status = el("td", { class: r.status >= 400 ? "st-err" : "" }, String(r.status));
      const saved = r.baseline_cost_usd ? r.baseline_cost_usd - r.cost_usd : null;
      tr.append(
        el("td", {}, clock(r.ts)), el("td", {}, r.route), tier, el("td", {}, r.model || "–"), status,
        el("td", { class: "num" }, usd(r.cost_usd)), el("td", { class: "num" }, saved === null ? "–" : usd(saved)),
        el("td", { class: "num" }, ms(r.latency_ms)), el("td", {}, r.cache + (r.fallbacks ? ` · ${r.fallbacks} retried` : "")),
        el("td", { class: "why" }, [r.reasons, r.error].filter(Boolean).join(" — ")),
      );
      return tr;
    });
    $("recent-rows").replaceChildren(...rows);
  }

  function render(d) {
    kpis(d);
    alerts(d);
    spendChart($("chart-spend"), d.series);
    trafficChart($("chart-traffic"), d.series);
    donut($("chart-tiers"), d.tiers);
    const models = d.models.filter((m) => m.requests);
    const byCost = [...models].sort((a, b) => b.cost_per_request_usd - a.cost_per_request_usd);
    hbars($("chart-cost"), byCost.map((m, i) => ({
      label: m.model, bars: [{ value: m.cost_per_request_usd, color: tierColor(m.tier, i) }], text: usd(m.cost_per_request_usd),
    })), Math.max(...byCost.map((m) => m.cost_per_request_usd), 0), usd, "No answered requests yet");
    const timed = models.filter((m) => m.p50_ms !== null);
    hbars($("chart-latency"), timed.map((m) => ({
      label: m.model, bars: [{ value: m.p50_ms, color: "#2f80ed" }, { value: m.p95_ms, color: "#a3c5f7" }], text: ms(m.p95_ms),
    })), Math.max(...timed.map((m) => m.p95_ms), 1), ms, "No latency samples yet");
    hbars($("chart-quality"), d.quality.filter((q) => q.average !== null).map((q) => ({
      label: `${q.route} · ${q.model}`,
      bars: [{ value: q.average, color: q.alert ? "#d64545" : "#3ebd93" }],
      marker: q.threshold,
      text: `${q.average.toFixed(2)} (${q.samples})`,
    })), 1, (v) => v.toFixed(2), d.judge ? "No scores yet" : "No feedback yet (POST /v1/feedback)");
    circuits(d);
    recent(d);
  }

  // -- session --------------------------------------------------------------------------
  function showLogin(message) {
    clearTimeout(timer);
    $("board").hidden = true;
    $("logout").hidden = true;
    $("login").hidden = false;
    $("status").className = "status";
    $("status").textContent = "not signed in";
    const err = $("login-error");
    err.hidden = !message;
    err.textContent = message || "";
    $("admin-key").focus();
  }

  async function poll() {
    const key = sessionStorage.getItem(STORAGE);
    if (!key) return showLogin();
    let response;
    try {
      response = await fetch("/dashboard/api/summary", { headers: { Authorization: `Bearer ${key}` }, cache: "no-store" });
    } catch (e) {
      $("status").className = "status stale";
      $("status").textContent = "gateway unreachable, retrying";
      timer = setTimeout(poll, POLL_MS);
      return;
    }
    if (response.status === 401 || response.status === 403) {
      sessionStorage.removeItem(STORAGE);
      let message = "The admin key was refused.";
      try { message = (await response.json()).error.message; } catch (e) { /* keep the default */ }
      return showLogin(message);
    }
    if (!response.ok) {
      $("status").className = "status stale";
      $("status").textContent = `error ${response.status}, retrying`;
      timer = setTimeout(poll, POLL_MS);
      return;
    }
    const data = await response.json();
    $("login").hidden = true;
    $("board").hidden = false;
    $("logout").hidden = false;
    render(data);
    $("status").className = "status live";
    $("status").textContent = `live · updated ${clock(data.now)}`;
    timer = setTimeout(poll, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(STORAGE, $("admin-key").value.trim());
      $("admin-key").value = "";
      poll();
    });
    $("logout").addEventListener("click", () => {
      sessionStorage.removeItem(STORAGE);
      showLogin();
    });
    poll();
  });
})();
