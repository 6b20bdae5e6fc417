// flexd web page: plain JS, no dependencies. Reads the daemon's JSON API with a bearer token
// kept in session storage (never in a URL), polls every few seconds and says how fresh it is.
"use strict";
(() => {
  const POLL_MS = 4000;
  const STALE_MS = 15000; // older than this, the page says it is stale
  const KEY = "flexd.token";
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (sel, el = document) => el.querySelector(sel);
  const ukTime = new Intl.DateTimeFormat("en-GB", {
    timeZone: "Europe/London", hour: "2-digit", minute: "2-digit",
  });

  const state = {
    role: null, sites: [], view: null, siteId: null, lastOk: 0, problem: "",
    sortKey: "offline", sortDir: -1, chargers: new Map(), timer: null, busy: false, again: false,
    daemonNow: null, daemonLocal: null,
  };

  // --- helpers -------------------------------------------------------------------------------
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v; else el.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat()) {
      if (kid !== null && kid !== undefined) el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }
  function s(tag, attrs, text) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    return el;
  }
  const fmt = (x, d = 1) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));
  const ago = (sec) => (sec === null || sec === undefined ? "never"
    : sec < 90 ? `${Math.round(sec)} s` : sec < 5400 ? `${Math.round(sec / 60)} min`
      : `${(sec / 3600).toFixed(1)} h`);
  const when = (iso) => ukTime.format(new Date(iso));
  const show = (id) => {
    for (const sec of ["signin", "operator", "site", "not-found"]) $(`#${sec}`).hidden = sec !== id;
  };
  function newKey() { // an Idempotency-Key (crypto.randomUUID needs a secure context)
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  async function api(path, opts = {}) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${sessionStorage.getItem(KEY)}`,
      ...(opts.headers || {}) };
    const r = await fetch(path, { ...opts, headers, cache: "no-store" });
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (r.status === 401) { signOut("The token was refused: sign in again."); throw new Error("401"); }
    return { status: r.status, ok: r.ok, body };
  }

  // --- sign in / out ---------------------------------------------------------------------------
  function signOut(message) {
    sessionStorage.removeItem(KEY);
    clearInterval(state.timer);
    state.timer = null;
    state.role = null;
    state.chargers.clear();
    $("#chargers").replaceChildren();
    $("#signout").hidden = true;
    $("#signin-error").textContent = message || "";
    $("#freshness").textContent = "";
    show("signin");
    $("#token").focus();
  }

  async function signIn(ev) {
    ev.preventDefault();
    const token = $("#token").value.trim();
    if (!token) { $("#signin-error").textContent = "Enter a token."; return; }
    sessionStorage.setItem(KEY, token);
    $("#token").value = "";
    await start();
  }

  async function start() {
    let r;
    try { r = await api("/api/v1/sites"); } catch (e) { return; }
    if (r.status === 403) { signOut("This token has no page (billing tokens use the API)."); return; }
    if (!r.ok) { signOut(`Sign-in failed: ${r.body?.detail || r.status}`); return; }
    state.role = r.body.role;
    state.sites = r.body.sites;
    $("#signout").hidden = false;
    $("#signin-error").textContent = "";
    await route();
    if (!state.timer) state.timer = setInterval(refresh, POLL_MS);
  }

  // --- routing ---------------------------------------------------------------------------------
  async function route() {
    const m = /^#site=(.+)$/.exec(location.hash);
    if (m) {
      state.view = "site";
      if (state.siteId !== decodeURIComponent(m[1])) {
        state.siteId = decodeURIComponent(m[1]);
        state.chargers.clear();
        $("#chargers").replaceChildren();
      }
    } else if (state.role !== "admin" && state.sites.length === 1) {
      location.replace(`#site=${encodeURIComponent(state.sites[0].id)}`);
      return; // hashchange routes again
    } else {
      state.view = "operator";
      state.siteId = null;
    }
    await refresh();
    $("#main").focus();
  }

  async function refresh() {
    if (!sessionStorage.getItem(KEY)) return;
    if (state.busy) { state.again = true; return; } // once this one ends (e.g. after a bump)
    state.busy = true;
    state.again = false;
    try {
      if (state.view === "site") await refreshSite(); else await refreshSites();
      state.lastOk = Date.now();
      state.problem = "";
    } catch (e) {
      if (e.message !== "401") state.problem = "cannot reach flexd; retrying";
    } finally {
      state.busy = false;
      tick();
    }
    if (state.again) await refresh();
  }

  function tick() { // the page's own staleness, every second
    const el = $("#freshness");
    if (!state.role) { el.textContent = ""; return; }
    const age = state.lastOk ? (Date.now() - state.lastOk) / 1000 : null;
    const stale = age === null || age * 1000 > STALE_MS;
    if (stale !== el.classList.contains("stale") && state.lastOk) {
      // announced once per change, not every second (a screen reader would repeat it)
      $("#freshness-change").textContent = stale ? "The page is stale: flexd is not answering."
        : "The page is live again.";
    }
    el.classList.toggle("stale", stale);
    const daemon = state.daemonLocal ? ` · daemon time ${state.daemonLocal.time} UK` : "";
    el.textContent = (stale ? `Stale: last update ${ago(age)} ago` : `Live: updated ${ago(age)} ago`)
      + ` (every ${POLL_MS / 1000} s)${daemon}${state.problem ? ` · ${state.problem}` : ""}`;
  }

  // --- operator view -----------------------------------------------------------------------------
  async function refreshSites() {
    const r = await api("/api/v1/sites");
    if (!r.ok) throw new Error(String(r.status));
    state.sites = r.body.sites;
    state.daemonNow = r.body.now;
    state.daemonLocal = null;
    renderSites();
    show("operator");
  }

  function renderSites() {
    const key = state.sortKey;
    const val = (x) => (x[key] === null || x[key] === undefined ? Infinity : x[key]);
    const rows = [...state.sites].sort((a, b) => {
      const va = val(a), vb = val(b);
      const c = typeof va === "string" && typeof vb === "string" ? va.localeCompare(vb) : va < vb ? -1 : va > vb ? 1 : 0;
      return c * state.sortDir || a.id.localeCompare(b.id);
    });
    for (const th of document.querySelectorAll("#sites-table thead th")) {
      const sorted = th.dataset.key === key;
      th.setAttribute("aria-sort", sorted ? (state.sortDir > 0 ? "ascending" : "descending") : "none");
      // the arrow is for the eye; aria-sort tells a screen reader (and keeps the button's name)
      $(".arrow", th).textContent = sorted ? (state.sortDir > 0 ? " ▲" : " ▼") : "";
    }
    $("#sites-table tbody").replaceChildren(...rows.map((x) => h("tr", { "data-site": x.id },
      h("th", { scope: "row" }, h("a", { href: `#site=${encodeURIComponent(x.id)}` }, x.id)),
      h("td", {}, x.account),
      h("td", {}, x.tariff),
      h("td", { class: x.offline ? "health-offline" : "" },
        x.offline ? `${x.offline} offline: ${x.offline_devices.join(", ")}` : "0"),
      h("td", { class: x.stale ? "health-stale" : "" },
        x.stale ? `${x.stale} stale: ${x.stale_devices.join(", ")}` : "0"),
      h("td", {}, x.plan_age_s === null ? "no plan" : ago(x.plan_age_s)),
      h("td", { class: "num" }, x.failed_cycles))));
    $("#no-sites").hidden = rows.length > 0;
    $("#sites-table").hidden = rows.length === 0;
  }

  // --- site view ---------------------------------------------------------------------------------
  async function refreshSite() {
    const id = encodeURIComponent(state.siteId);
    const [site, plan, energy] = await Promise.all([
      api(`/api/v1/sites/${id}`), api(`/api/v1/sites/${id}/plan`), api(`/api/v1/sites/${id}/energy`),
    ]);
    if (site.status === 404 || site.status === 403) { show("not-found"); return; }
    if (!site.ok || !plan.ok || !energy.ok) throw new Error("site");
    state.daemonNow = site.body.now;
    state.daemonLocal = site.body.now_local;
    show("site"); // first: the chart sizes itself to its box
    renderNow(site.body);
    renderPlan(plan.body);
    renderEnergy(energy.body);
    const chargers = site.body.devices.filter((d) => d.kind === "charger");
    await Promise.all(chargers.map((d) => renderCharger(site.body, d)));
  }

  function renderNow(doc) {
    const nav = $("#site-nav");
    const links = [];
    if (state.role === "admin" || state.sites.length > 1) links.push(h("a", { href: "#" }, "All sites"));
    nav.replaceChildren(...links);
    const site = doc.site;
    $("#site-h").textContent = `Site ${site.id}` + (state.role === "admin" ? ` (account ${site.account})` : "");
    const t = doc.tariff_now;
    const fact = (k, v) => h("div", {}, h("dt", {}, k), h("dd", {}, v));
    $("#tariff-now").replaceChildren(
      fact("Tariff", site.tariff),
      fact("Band now", t ? t.band : "not known yet"),
      fact("Import", t ? `${fmt(t.import_price_p, 2)} p/kWh` : "–"),
      fact("Export", t ? `${fmt(t.export_price_p, 2)} p/kWh` : "–"),
      fact("Half-hour from", t ? `${when(t.slot_start)} UK` : "–"),
    );
    $("#devices-table tbody").replaceChildren(...doc.devices.map((d) => {
      const st = d.state || {};
      const inverter = d.kind === "inverter";
      const soc = inverter ? st.battery_soc_pct : d.soc_pct;
      const power = inverter ? st.battery_w : st.charging_w;
      const plug = inverter ? "–" : st.plugged_in === undefined ? "–"
        : `${st.plugged_in ? "plugged in" : "unplugged"}; car ${fmt(d.soc_pct, 0)}% (${d.soc_source}${
          d.soc_age_s === null ? "" : `, ${ago(d.soc_age_s)} old`})`;
      return h("tr", { "data-device": d.id },
        h("th", { scope: "row" }, `${d.id} (${d.brand} ${d.kind})`),
        h("td", { class: `health-${d.health}` }, d.health),
        h("td", {}, ago(d.age_s)),
        h("td", { class: "num" }, soc === undefined || soc === null ? "–" : `${fmt(soc, 0)}%`),
        h("td", { class: "num" }, power === undefined || power === null ? "–"
          : inverter ? `${fmt(power / 1000, 2)} kW ${power > 0 ? "discharging" : power < 0 ? "charging" : ""}`
            : `${fmt(power / 1000, 2)} kW`),
        h("td", {}, inverter ? (st.mode ?? "–") : (st.status ?? "–")),
        h("td", {}, plug));
    }));
  }

  // The plan chart: prices as bars; grid, battery and EV energy per half-hour; SoC lines; the
  // ready-by marker and target; SMART and BOOST dispatches shaded. Times on the axis are the UK
  // local times the daemon gives each half-hour (so a clock-change night shows its jump).
  const COLORS = { price: "#5b6f8a", exportPrice: "#b35c00", gridIn: "#444", gridOut: "#9a9a9a",
    batIn: "#1b7f3b", batOut: "#86c98f", ev: "#0b57d0", batSoc: "#1b7f3b", evSoc: "#0b57d0",
    target: "#b3261e" };
  function renderPlan(p) {
    const box = $("#plan-chart");
    const n = p.starts.length;
    const made = p.plan_made_at ? `made ${ago((Date.parse(p.now) - Date.parse(p.plan_made_at)) / 1000)} ago` : "no plan yet";
    $("#plan-meta").textContent = n ? `${n} half-hours from ${p.local[0].time} UK; plan ${made} (${p.status}).` : `No plan yet.`;
    if (!n) { box.replaceChildren(); return; }
    // A phone gets a narrower drawing (so bars and labels are not shrunk to nothing).
    const narrow = box.clientWidth > 0 && box.clientWidth < 700;
    const W = narrow ? 560 : 960, L = 48, R = 12, H = narrow ? 404 : 390;
    const P = { top: 18, h: 90 }, E = { top: 140, h: 120 }, S = { top: 290, h: 70 };
    const sw = (W - L - R) / n;
    const t0 = Date.parse(p.starts[0]);
    const xAt = (iso) => L + Math.max(0, Math.min(n, (Date.parse(iso) - t0) / 1800000)) * sw;
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "plan-title plan-desc", id: "plan-svg",
      class: narrow ? "narrow" : "wide" });
    svg.append(s("title", { id: "plan-title" }, "Plan for the next 24 hours"));
    const evIds = Object.keys(p.evs);
    // shading: dispatches behind everything
    for (const id of evIds) {
      for (const d of p.evs[id].dispatches) {
        const x1 = xAt(d.start), x2 = xAt(d.end);
        if (x2 <= x1) continue;
        const r = s("rect", { x: x1, y: P.top - 10, width: x2 - x1, height: S.top + S.h - P.top + 10,
          fill: d.type === "BOOST" ? "rgba(214,110,0,0.22)" : "rgba(11,87,208,0.13)", class: `dispatch dispatch-${d.type.toLowerCase()}` });
        r.append(s("title", {}, `${d.type} ${when(d.start)}–${when(d.end)} (${d.status})`));
        svg.append(r);
      }
    }
    // prices
    const prices = p.import_price_p.concat(p.export_price_p);
    const pmax = Math.max(1, ...prices), pmin = Math.min(0, ...prices);
    const py = (v) => P.top + P.h * (pmax - v) / (pmax - pmin);
    svg.append(s("text", { x: 4, y: P.top - 6 }, "p/kWh"));
    svg.append(s("text", { x: 4, y: P.top + 10 }, fmt(pmax, 0)));
    svg.append(s("line", { x1: L, x2: W - R, y1: py(0), y2: py(0), stroke: "#999" }));
    p.import_price_p.forEach((v, i) => {
      const y = py(Math.max(v, 0)), y0 = py(Math.min(v, 0));
      const r = s("rect", { x: L + i * sw + 0.5, y, width: Math.max(sw - 1, 0.5), height: Math.max(y0 - y, 0.5),
        fill: COLORS.price, class: "price-bar", "data-start": p.starts[i] });
      r.append(s("title", {}, `${p.local[i].time} import ${fmt(v, 2)}p, export ${fmt(p.export_price_p[i], 2)}p`));
      svg.append(r);
    });
    svg.append(s("polyline", { fill: "none", stroke: COLORS.exportPrice, "stroke-width": 2, "stroke-dasharray": "4 2",
      points: p.export_price_p.map((v, i) => `${L + (i + 0.5) * sw},${py(v)}`).join(" "), class: "export-price" }));
    // energy: grid, battery, EV per half-hour (up: into the home or battery or car; down: out)
    const ev = p.starts.map((_, i) => evIds.reduce((a, id) => a + p.evs[id].charge_kwh[i], 0));
    const all = [...p.grid_import_kwh, ...p.grid_export_kwh, ...p.battery_charge_kwh, ...p.battery_discharge_kwh, ...ev];
    const emax = Math.max(0.5, ...all);
    const mid = E.top + E.h / 2;
    const ey = (v) => (E.h / 2) * v / emax;
    svg.append(s("text", { x: 4, y: E.top - 6 }, "kWh"));
    svg.append(s("text", { x: 4, y: E.top + 10 }, `+${fmt(emax, 1)}`));
    svg.append(s("text", { x: 4, y: E.top + E.h }, `−${fmt(emax, 1)}`));
    svg.append(s("line", { x1: L, x2: W - R, y1: mid, y2: mid, stroke: "#999" }));
    const bw = Math.max(sw / 3 - 0.4, 0.4);
    const bar = (i, k, v, down, color, cls) => {
      if (v <= 0.0005) return;
      svg.append(s("rect", { x: L + i * sw + k * (sw / 3), y: down ? mid : mid - ey(v), width: bw, height: Math.max(ey(v), 0.5), fill: color, class: cls }));
    };
    for (let i = 0; i < n; i++) {
      bar(i, 0, p.grid_import_kwh[i], false, COLORS.gridIn, "grid-import");
      bar(i, 0, p.grid_export_kwh[i], true, COLORS.gridOut, "grid-export");
      bar(i, 1, p.battery_charge_kwh[i], false, COLORS.batIn, "battery-charge");
      bar(i, 1, p.battery_discharge_kwh[i], true, COLORS.batOut, "battery-discharge");
      bar(i, 2, ev[i], false, COLORS.ev, "ev-charge");
    }
    // SoC lines (end of each half-hour), the target and the ready-by marker
    const sy = (pct) => S.top + S.h * (100 - Math.max(0, Math.min(100, pct))) / 100;
    svg.append(s("text", { x: 4, y: S.top - 6 }, "SoC %"));
    for (const v of [0, 50, 100]) {
      svg.append(s("line", { x1: L, x2: W - R, y1: sy(v), y2: sy(v), stroke: "#ddd" }));
      svg.append(s("text", { x: 22, y: sy(v) + 4 }, v));
    }
    const line = (vals, cap, color, cls, dash) => {
      if (!vals || !cap) return;
      svg.append(s("polyline", { fill: "none", stroke: color, "stroke-width": 2.5, class: cls, "stroke-dasharray": dash || "",
        points: vals.map((v, i) => `${L + (i + 1) * sw},${sy(100 * v / cap)}`).join(" ") }));
    };
    line(p.battery_soc_kwh, p.battery_capacity_kwh, COLORS.batSoc, "battery-soc");
    for (const id of evIds) {
      const e = p.evs[id];
      line(e.soc_kwh, e.capacity_kwh, COLORS.evSoc, "ev-soc");
      svg.append(s("line", { x1: L, x2: W - R, y1: sy(e.target_soc_pct), y2: sy(e.target_soc_pct), stroke: COLORS.target,
        "stroke-dasharray": "6 3", class: "target" }));
      svg.append(s("text", { x: W - R - (narrow ? 110 : 80), y: sy(e.target_soc_pct) - 3, fill: COLORS.target }, `target ${fmt(e.target_soc_pct, 0)}%`));
      const rx = xAt(e.ready_by);
      if (Date.parse(e.ready_by) <= t0 + n * 1800000) {
        svg.append(s("line", { x1: rx, x2: rx, y1: P.top - 10, y2: S.top + S.h, stroke: COLORS.target, "stroke-width": 2, class: "ready-by" }));
        svg.append(s("text", { x: rx + 3, y: P.top - 2, fill: COLORS.target }, `ready by ${e.ready_by_local.time}`));
      }
    }
    // the time axis in UK local time, with the date at midnight and any clock change marked
    let lastTick = -Infinity;
    for (let i = 0; i < n; i++) {
      const loc = p.local[i], x = L + i * sw;
      const prev = i ? p.local[i - 1] : null;
      if (prev && prev.offset !== loc.offset) {
        svg.append(s("line", { x1: x, x2: x, y1: P.top, y2: S.top + S.h, stroke: "#b35c00", "stroke-dasharray": "2 2" }));
        svg.append(s("text", { x: x + 2, y: E.top - 4, fill: "#b35c00", class: "clock-change" }, `clocks change (${loc.offset === "+0100" ? "BST" : "GMT"})`));
      }
      const hour = Number(loc.time.slice(0, 2));
      if (loc.time.endsWith(":00") && hour % 3 === 0 && x - lastTick >= (narrow ? 56 : 40)) {
        lastTick = x; // a short night (the spring change) would put two labels on each other
        svg.append(s("line", { x1: x, x2: x, y1: S.top + S.h, y2: S.top + S.h + 4, stroke: "#333" }));
        svg.append(s("text", { x, y: S.top + S.h + (narrow ? 18 : 16), "text-anchor": "middle", class: "tick" }, loc.time));
        if (loc.time === "00:00") {
          svg.append(s("text", { x, y: S.top + S.h + (narrow ? 36 : 28), "text-anchor": "middle" }, loc.date.slice(5)));
        }
      }
    }
    const desc = `${n} half-hours. Import price ${fmt(Math.min(...p.import_price_p), 1)} to ${fmt(Math.max(...p.import_price_p), 1)} p/kWh. `
      + evIds.map((id) => `${id}: ${fmt(p.evs[id].charge_kwh.reduce((a, b) => a + b, 0), 1)} kWh planned, ready by ${p.evs[id].ready_by_local.time}.`).join(" ");
    svg.insertBefore(s("desc", { id: "plan-desc" }, desc), svg.children[1]);
    box.replaceChildren(svg);
    const legend = [["Import price", COLORS.price], ["Export price (dashed)", COLORS.exportPrice], ["Grid import", COLORS.gridIn],
      ["Grid export", COLORS.gridOut], ["Battery charge", COLORS.batIn], ["Battery discharge", COLORS.batOut],
      ["EV charging", COLORS.ev], ["Battery SoC", COLORS.batSoc], ["Car SoC", COLORS.evSoc], ["Target / ready-by", COLORS.target],
      ["SMART dispatch", "rgba(11,87,208,0.13)"], ["BOOST dispatch", "rgba(214,110,0,0.22)"]];
    $("#plan-legend").replaceChildren(...legend.map(([k, c]) => h("li", {}, h("span", { style: null, "data-color": c }), k)));
    for (const sp of document.querySelectorAll("#plan-legend span")) sp.style.background = sp.dataset.color;
    const head = ["UK time", "Import p", "Export p", "Grid in", "Grid out", "Battery in", "Battery out", "EV kWh"];
    $("#plan-table thead").replaceChildren(h("tr", {}, head.map((x) => h("th", { scope: "col" }, x))));
    $("#plan-table tbody").replaceChildren(...p.starts.map((_, i) => h("tr", {},
      h("th", { scope: "row" }, `${p.local[i].date.slice(5)} ${p.local[i].time}`),
      [p.import_price_p[i], p.export_price_p[i], p.grid_import_kwh[i], p.grid_export_kwh[i],
        p.battery_charge_kwh[i], p.battery_discharge_kwh[i], ev[i]].map((v) => h("td", { class: "num" }, fmt(v, 2))))));
  }

  function renderEnergy(doc) {
    $("#energy").replaceChildren(...doc.days.map((day, k) => h("div", {},
      h("h4", {}, `${k === 0 ? "Today" : "Yesterday"} (${day.date})`),
      day.bands.length === 0 ? h("p", { class: "help" }, "Nothing rated yet.")
        : h("table", {},
          h("thead", {}, h("tr", {}, ["Register", "Band", "kWh", "Cost (p)"].map((x) => h("th", { scope: "col" }, x)))),
          h("tbody", {}, day.bands.map((b) => h("tr", {}, h("td", {}, b.register), h("td", {}, b.band),
            h("td", { class: "num" }, b.kwh), h("td", { class: "num" }, b.cost_p)))),
          h("tfoot", {}, h("tr", {}, h("th", { scope: "row", colspan: 3 }, "Total"), h("td", { class: "num" }, day.total_cost_p)))))));
  }

  // --- a charger: bump charge, dispatches, preferences -------------------------------------------
  function chargerCard(id) {
    if (state.chargers.has(id)) return state.chargers.get(id);
    const node = $("#charger-tpl").content.firstElementChild.cloneNode(true);
    node.dataset.device = id;
    $(".charger-h", node).textContent = `Charger ${id}`;
    node.querySelectorAll(".field").forEach((f) => {
      const input = $("input", f), label = $("label", f), err = $(".field-error", f);
      input.id = `${id}-${input.name}`;
      label.htmlFor = input.id;
      err.id = `${input.id}-error`;
      input.setAttribute("aria-describedby", err.id);
    });
    const card = { node, loaded: false, key: null };
    $(".bump-btn", node).addEventListener("click", () => bump(id, card));
    $(".cancel-btn", node).addEventListener("click", () => cancelBump(id, card));
    $("form.prefs", node).addEventListener("submit", (ev) => savePrefs(ev, id, card));
    $("#chargers").append(node);
    state.chargers.set(id, card);
    return card;
  }

  async function renderCharger(site, dev) {
    const card = chargerCard(dev.id);
    const node = card.node;
    const from = new Date(Date.parse(site.now) - 12 * 3600e3).toISOString();
    const r = await api(`/api/v1/devices/${encodeURIComponent(dev.id)}/dispatches?from=${encodeURIComponent(from)}`);
    const rows = r.ok ? r.body.dispatches.filter((d) => d.status !== "cancelled") : [];
    const now = Date.parse(site.now);
    const active = rows.find((d) => d.type === "BOOST" && d.status === "planned" && Date.parse(d.start) <= now && now < Date.parse(d.end));
    $(".dispatches", node).replaceChildren(...(rows.length ? rows.map((d) => h("li", { class: d.type.toLowerCase() },
      `${d.type} ${when(d.start)}–${when(d.end)} UK, ${d.status}${d.status === "completed" ? `, ${d.energy_kwh} kWh` : ""}`))
      : [h("li", {}, "none in the last 12 hours")]));
    $(".cancel-btn", node).disabled = !active;
    $(".bump-btn", node).disabled = Boolean(active) || dev.health === "offline";
    const loc = site.now_local;
    const minute = Number(loc.time.slice(0, 2)) * 60 + Number(loc.time.slice(3, 5));
    const offPeak = minute >= 23 * 60 + 30 || minute < 5 * 60 + 30;
    $(".peak-warning", node).hidden = offPeak || !String(site.site.tariff).includes("io-go");
    if (!card.loaded) {
      const pr = await api(`/api/v1/devices/${encodeURIComponent(dev.id)}/preferences`);
      if (pr.ok) {
        for (const [k, v] of Object.entries(pr.body)) { const input = $(`input[name="${k}"]`, node); if (input) input.value = v; }
        card.loaded = true;
      }
    }
  }

  async function bump(id, card) {
    const msg = $(".bump-msg", card.node);
    card.key = card.key || newKey(); // the same key if this click is retried after a failure
    msg.textContent = "Asking for a bump charge…";
    let r;
    try {
      r = await api(`/api/v1/devices/${encodeURIComponent(id)}/bump-charge`, {
        method: "POST", headers: { "Content-Type": "application/json", "Idempotency-Key": card.key }, body: "{}",
      });
    } catch (e) { msg.textContent = "No answer from flexd: try again (the same request is repeated safely)."; return; }
    card.key = null;
    msg.textContent = r.ok ? `BOOST until ${when(r.body.end)} UK.` : `Not started: ${r.body?.detail || r.status}.`;
    await refresh();
  }

  async function cancelBump(id, card) {
    const msg = $(".bump-msg", card.node);
    const r = await api(`/api/v1/devices/${encodeURIComponent(id)}/bump-charge`, { method: "DELETE" });
    msg.textContent = r.ok ? "Bump charge cancelled." : `Not cancelled: ${r.body?.detail || r.status}.`;
    await refresh();
  }

  async function savePrefs(ev, id, card) {
    ev.preventDefault();
    const form = ev.target;
    const body = {};
    for (const input of form.querySelectorAll("input")) {
      input.removeAttribute("aria-invalid");
      $(`#${CSS.escape(input.id)}-error`).textContent = "";
      if (input.value === "") continue; // an empty field keeps the current value
      body[input.name] = input.type === "number" ? Number(input.value) : input.value;
    }
    $(".form-error", form).textContent = "";
    const msg = $(".prefs-msg", form);
    msg.textContent = "Saving…";
    const r = await api(`/api/v1/devices/${encodeURIComponent(id)}/preferences`, {
      method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (r.ok) {
      msg.textContent = "Saved. flexd re-plans with them.";
      for (const [k, v] of Object.entries(r.body)) { const input = $(`input[name="${k}"]`, form); if (input) input.value = v; }
      await refresh();
      return;
    }
    msg.textContent = "";
    const input = r.body?.field ? $(`input[name="${CSS.escape(r.body.field)}"]`, form) : null;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      $(`#${CSS.escape(input.id)}-error`).textContent = r.body.detail;
      input.focus();
    } else {
      $(".form-error", form).textContent = r.body?.detail || `Not saved (${r.status}).`;
    }
  }

  // --- start -----------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    $("#signin-form").addEventListener("submit", signIn);
    $("#signout").addEventListener("click", () => signOut("Signed out."));
    $("#home-link").addEventListener("click", (e) => { e.preventDefault(); location.hash = ""; route(); });
    window.addEventListener("hashchange", () => { if (state.role) route(); });
    for (const th of document.querySelectorAll("#sites-table thead th")) {
      th.append(h("span", { class: "arrow", "aria-hidden": "true" }));
      $("button", th).addEventListener("click", () => {
        state.sortDir = state.sortKey === th.dataset.key ? -state.sortDir : 1;
        state.sortKey = th.dataset.key;
        renderSites();
      });
    }
    setInterval(tick, 1000);
    if (sessionStorage.getItem(KEY)) start(); else show("signin");
  });
})();
