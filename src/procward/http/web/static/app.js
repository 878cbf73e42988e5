// procward's page, made live. The server renders everything (it all works without this script); this
// script keeps it current from one Server-Sent Events stream, sends actions without reloading, filters,
// sorts and folds groups in place (kept in the URL and local storage), draws the charts, follows logs,
// and adds keyboard shortcuts. No framework, no build step, no inline script.
"use strict";

const STATE_CLASS = {RUNNING: "ok", STARTING: "busy", STOPPING: "busy", BACKOFF: "bad", FATAL: "bad",
                     EXITED: "off", STOPPED: "off", UNKNOWN: "bad"};
const STATES = ["RUNNING", "STARTING", "BACKOFF", "STOPPING", "EXITED", "FATAL", "STOPPED", "UNKNOWN"];
const SVG = "http://www.w3.org/2000/svg";
const SPARK_POINTS = 30;

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

function announce(text) {
  const region = document.getElementById("announce");
  if (region) region.textContent = text;
}

function memoryText(kb) {
  return !kb ? "" : kb < 1048576 ? `${(kb / 1024).toFixed(1)} MB` : `${(kb / 1048576).toFixed(2)} GB`;
}

const writable = () => Boolean(document.querySelector(".toolbar, form.process-actions"));

// ---- actions of one process (the same markup the server renders) -----------------------------------------

function primary(state) {
  return ["RUNNING", "STARTING", "BACKOFF"].includes(state) ? ["stop", "Stop"] : ["start", "Start"];
}

function logLink(name, channel) {
  return `log.html?${new URLSearchParams({processname: name, channel: channel || "stdout"})}`;
}

function processLink(name) {
  return `process?${new URLSearchParams({name})}`;
}

function menu(name, stderr) {
  const details = el("details", {class: "menu"});
  details.append(el("summary", {"aria-label": `more actions for ${name}`, title: "more actions"}, "\u22ef"));
  const items = el("div", {class: "menu-items"});
  items.append(el("button", {type: "submit", name: "do", value: `restart:${name}`, class: "restart"}, "Restart"));
  const signal = el("span", {class: "signal"});
  const choose = el("select", {name: `signal.${name}`, "aria-label": `signal to send to ${name}`});
  for (const s of ["HUP", "USR1", "USR2", "INT", "TERM", "QUIT", "KILL"]) choose.append(el("option", {}, s));
  signal.append(choose, el("button", {type: "submit", name: "do", value: `signal:${name}`, class: "signal"}, "Send signal"));
  items.append(signal, el("button", {type: "submit", name: "do", value: `clearlog:${name}`, class: "clearlog"}, "Clear log"));
  items.append(el("a", {href: logLink(name)}, "stdout"));
  if (stderr) items.append(el("a", {href: logLink(name, "stderr")}, "stderr"));
  items.append(el("a", {href: processLink(name)}, "process page"));
  details.append(items);
  return details;
}

function setPrimary(cell, name, state) {
  const [verb, label] = primary(state);
  const current = cell.querySelector("button.primary");
  if (current && current.classList.contains(verb)) return;
  const button = el("button", {type: "submit", name: "do", value: `${verb}:${name}`, class: `${verb} primary`}, label);
  if (current) current.replaceWith(button); else cell.prepend(button);
}

// ---- the process table ------------------------------------------------------------------------------

const table = document.getElementById("processes");
let clockSkew = 0;  // server time - browser time, so uptimes count on without asking the daemon

function uptime(start) {
  const seconds = Math.max(0, Math.floor(Date.now() / 1000 + clockSkew) - Number(start));
  const h = Math.floor(seconds / 3600), m = Math.floor(seconds / 60) % 60, s = seconds % 60;
  const days = Math.floor(h / 24);
  const clock = `${h % 24}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
  return days ? `${days} day${days > 1 ? "s" : ""}, ${clock}` : clock;
}

const allRows = () => [...table.querySelectorAll("tr[data-name]")];

function makeRow(data) {
  const row = el("tr", {"data-name": data.name});
  const check = el("td", {class: "select"});
  if (writable()) {
    check.append(el("input", {type: "checkbox", name: "names", value: data.name, "aria-label": `select ${data.name}`}));
  }
  const name = el("th", {scope: "row", class: "name"});
  name.append(el("a", {href: processLink(data.name)}, data.name));
  const desc = el("td", {class: "desc"});
  desc.append(el("span", {class: "text"}));
  row.append(check, name, el("td", {class: "state"}), desc, el("td", {class: "restarts"}), el("td", {class: "exit"}),
             el("td", {class: "health"}), el("td", {class: "cpu"}), el("td", {class: "mem"}),
             el("td", {class: "spark", "aria-hidden": "true"}), el("td", {class: "output"}));
  const actions = el("td", {class: "actions"});
  if (writable()) actions.append(menu(data.name, data.stderr));
  row.append(actions);
  let body = [...table.tBodies].find((b) => b.dataset.group === data.group && b.classList.contains("group"));
  if (!body) {
    body = el("tbody", {class: data.name.includes(":") ? "group" : "single", "data-group": data.group});
    table.append(body);
  }
  body.append(row);
  return row;
}

function fillRow(row, data) {
  const before = row.dataset.state;
  Object.assign(row.dataset, {name: data.name, group: data.group, state: data.state, start: data.start,
                              pid: data.pid, cpu: data.pid ? data.cpu : 0, rss: data.pid ? data.rss_kb : 0,
                              exit: data.exit_code, stderr: data.stderr ? "1" : ""});
  row.querySelector(".state").replaceChildren(el("span", {class: `badge ${STATE_CLASS[data.state] || "off"}`}, data.state));
  const desc = row.querySelector(".desc");
  desc.querySelector(".text").textContent = data.description;
  const link = desc.querySelector("a.errlink");
  if (data.errlog) {
    const fresh = el("a", {class: "errlink", href: logLink(data.name, data.errlog)}, `see ${data.errlog}`);
    if (link) link.replaceWith(fresh); else desc.append(" ", fresh);
  } else if (link) {
    link.remove();
  }
  row.querySelector(".restarts").textContent = data.restarts;
  row.querySelector(".exit").textContent = data.exit;
  row.querySelector(".health").textContent = `${data.health}${data.ready ? " ready" : ""}`;
  row.querySelector(".output").textContent = data.output;
  row.querySelector(".cpu").textContent = data.pid ? `${data.cpu.toFixed(1)} %` : "";
  row.querySelector(".mem").textContent = memoryText(data.pid ? data.rss_kb : 0);
  const actions = row.querySelector(".actions");
  if (writable() && actions) setPrimary(actions, data.name, data.state);
  if (before && before !== data.state) announce(`${data.name} is ${data.state.toLowerCase()}`);
}

function applyRows(rows, snapshot) {
  const byName = new Map(allRows().map((row) => [row.dataset.name, row]));
  for (const data of rows) {
    const row = byName.get(data.name) || makeRow(data);
    fillRow(row, data);
    byName.delete(data.name);
    if (data.now) clockSkew = data.now - Date.now() / 1000;
  }
  if (snapshot) for (const gone of byName.values()) gone.remove();
  refilter();
}

function tickUptimes() {
  for (const row of allRows()) {
    if (row.dataset.state !== "RUNNING") continue;
    const desc = row.querySelector(".desc .text");
    const match = desc.textContent.match(/^pid (\d+), uptime [^,]+(, .*)?$/);
    if (match) desc.textContent = `pid ${match[1]}, uptime ${uptime(row.dataset.start)}${match[2] || ""}`;
  }
}

// ---- the summary bar and the groups' counts ------------------------------------------------------------

function counts(rows) {
  const per = {};
  for (const row of rows) per[row.dataset.state] = (per[row.dataset.state] || 0) + 1;
  return STATES.filter((s) => per[s]).map((s) => [s, per[s]]);
}

function drawSummary() {
  const box = document.querySelector(".summary");
  if (!box) return;
  const rows = allRows();
  const bar = box.querySelector("svg");
  const text = document.getElementById("summary-text");
  bar.replaceChildren();
  text.replaceChildren();
  let x = 0;
  for (const [state, n] of counts(rows)) {
    const width = 1000 * n / Math.max(1, rows.length);
    const rect = svg("rect", {class: STATE_CLASS[state] || "off", x: x.toFixed(1), width: width.toFixed(1), height: 12});
    rect.append(svg("title"));
    rect.firstChild.textContent = `${n} ${state.toLowerCase()}`;
    bar.append(rect);
    x += width;
    if (text.childNodes.length) text.append(", ");
    text.append(el("span", {class: STATE_CLASS[state] || "off"}, `${n} ${state.toLowerCase()}`));
  }
  if (!rows.length) text.textContent = "no processes";
}

function drawGroupCounts() {
  for (const body of table.tBodies) {
    const head = body.querySelector("tr.group-head .counts");
    if (!head) continue;
    const members = [...body.querySelectorAll("tr[data-name]")];
    const list = counts(members).map(([s, n]) => `${n} ${s.toLowerCase()}`).join(", ");
    head.textContent = `${members.length} process${members.length === 1 ? "" : "es"}: ${list}`;
  }
}

// ---- filter, sort and fold, kept in the URL and local storage -----------------------------------------

const filterInput = document.getElementById("filter");
const stateFilter = document.getElementById("state-filter");
let sortKey = "name", sortDescending = false;
const FOLDED_KEY = "procward.folded";

function folded() {
  try { return new Set(JSON.parse(localStorage.getItem(FOLDED_KEY) || "[]")); } catch { return new Set(); }
}

function sortValue(row) {
  const d = row.dataset;
  switch (sortKey) {
    case "cpu": return Number(d.cpu || 0);
    case "memory": return Number(d.rss || 0);
    case "exit": return Number(d.exit || 0);
    case "restarts": return Number(row.querySelector(".restarts").textContent) || 0;
    case "state": return d.state;
    case "description": return row.querySelector(".desc .text").textContent;
    case "health": return row.querySelector(".health").textContent;
    case "group": return d.group;
    default: return d.name;
  }
}

function compare(a, b) {
  const x = sortValue(a), y = sortValue(b);
  const order = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
  return (sortDescending ? -order : order) || a.dataset.name.localeCompare(b.dataset.name);
}

function refilter() {
  if (!table) return;
  const text = (filterInput.value || "").toLowerCase();
  const state = stateFilter.value;
  const fold = folded();
  let shown = 0;
  const bodies = [...table.tBodies];
  for (const body of bodies) {
    const rows = [...body.querySelectorAll("tr[data-name]")];
    let visible = 0;
    for (const row of rows) {
      const match = (!text || row.dataset.name.toLowerCase().includes(text)) &&
        (!state || (state === "DOWN" ? row.dataset.state !== "RUNNING" : row.dataset.state === state));
      row.hidden = !match || (body.classList.contains("group") && fold.has(body.dataset.group));
      row.classList.toggle("match", match);
      if (match) { shown += 1; visible += 1; }
    }
    body.hidden = visible === 0;
    reorder(body, rows, [...rows].sort(compare));
    const button = body.querySelector("button.fold");
    if (button) button.setAttribute("aria-expanded", String(!fold.has(body.dataset.group)));
  }
  const first = (body) => [...body.querySelectorAll("tr.match")].sort(compare)[0];
  reorder(table, bodies, [...bodies].sort((a, b) => {
    const x = first(a), y = first(b);
    if (!x || !y) return x ? -1 : y ? 1 : 0;
    return compare(x, y);
  }));
  document.getElementById("count").textContent = `${shown} of ${allRows().length}`;
  drawSummary();
  drawGroupCounts();
  const params = new URLSearchParams();
  if (filterInput.value) params.set("q", filterInput.value);
  if (state) params.set("state", state);
  if (sortKey !== "name" || sortDescending) params.set("sort", (sortDescending ? "-" : "") + sortKey);
  const query = params.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

// Moves nodes only when the order changed: a moved node loses the keyboard focus.
function reorder(parent, current, wanted) {
  if (wanted.every((node, i) => node === current[i])) return;
  parent.append(...wanted);
}

function toggleFold(body) {
  const fold = folded();
  if (fold.has(body.dataset.group)) fold.delete(body.dataset.group); else fold.add(body.dataset.group);
  try { localStorage.setItem(FOLDED_KEY, JSON.stringify([...fold])); } catch { /* private mode: not kept */ }
  refilter();
}

// ---- sparklines: memory (area) and CPU (line) of the last samples ---------------------------------------

const samples = new Map();  // name -> {cpu: [], rss: []}

function takeHistory(history, replace) {
  for (const [name, [, cpu, rss]] of Object.entries(history)) {
    const kept = replace || !samples.has(name) ? {cpu: [], rss: []} : samples.get(name);
    kept.cpu.push(...cpu);
    kept.rss.push(...rss);
    kept.cpu.splice(0, Math.max(0, kept.cpu.length - SPARK_POINTS));
    kept.rss.splice(0, Math.max(0, kept.rss.length - SPARK_POINTS));
    samples.set(name, kept);
  }
  for (const row of allRows()) drawSpark(row);
}

function points(values, width, height, top) {
  if (values.length === 1) values = [values[0], values[0]];  // one sample: a level line, not a slope
  const max = Math.max(top || 0, ...values, 1e-9);
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  return values.map((v, i) => `${(i * step).toFixed(1)},${(height - 1 - (v / max) * (height - 2)).toFixed(1)}`).join(" ");
}

function drawSpark(row) {
  const cell = row.querySelector("td.spark");
  const kept = samples.get(row.dataset.name);
  if (!cell || !kept || !kept.rss.length) return;
  const width = 80, height = 20;
  const box = svg("svg", {viewBox: `0 0 ${width} ${height}`, width, height, class: "sparkline", focusable: "false"});
  const rss = points(kept.rss, width, height);
  box.append(svg("polygon", {class: "mem", points: `0,${height} ${rss} ${width},${height}`}),
             svg("polyline", {class: "cpu", points: points(kept.cpu, width, height, 100)}));
  box.dataset.rss = String(kept.rss[kept.rss.length - 1]);
  const title = svg("title");
  title.textContent = `memory ${memoryText(kept.rss[kept.rss.length - 1])}, CPU ${kept.cpu[kept.cpu.length - 1]} %`;
  box.append(title);
  cell.replaceChildren(box);
}

// ---- the live stream ----------------------------------------------------------------------------------

// A page in a background tab lets go of its stream (the daemon then samples nothing for it) and takes a
// fresh snapshot when it is shown again.
function connect(url, handlers) {
  const live = document.getElementById("live");
  let source = null;
  const open = () => {
    source = new EventSource(url);
    for (const [name, handle] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => handle(JSON.parse(event.data)));
    }
    source.onopen = () => { live.textContent = "live"; live.className = "live on"; };
    source.onerror = () => { live.textContent = "disconnected: reconnecting…"; live.className = "live off"; };
  };
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden" && source) {
      source.close();
      source = null;
      live.textContent = "paused (tab hidden)";
      live.className = "live off";
    } else if (document.visibilityState === "visible" && !source) {
      open();
    }
  });
  open();
}

function closeOtherMenus(event) {
  const open = event.target.closest("details.menu");
  for (const details of document.querySelectorAll("details.menu[open]")) {
    if (details !== open) details.open = false;
  }
}

function setUpTable() {
  const params = new URLSearchParams(location.search);
  const sort = params.get("sort") || "name";
  sortDescending = sort.startsWith("-");
  sortKey = sort.replace(/^-/, "");
  filterInput.addEventListener("input", refilter);
  stateFilter.addEventListener("change", refilter);
  for (const link of table.querySelectorAll("thead a[data-sort]")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      sortDescending = sortKey === link.dataset.sort ? !sortDescending : false;
      sortKey = link.dataset.sort;
      for (const th of table.querySelectorAll("thead th")) th.removeAttribute("aria-sort");
      link.parentElement.setAttribute("aria-sort", sortDescending ? "descending" : "ascending");
      refilter();
    });
  }
  for (const button of table.querySelectorAll("button.fold")) {
    button.hidden = false;
    button.addEventListener("click", () => toggleFold(button.closest("tbody")));
  }
  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", (event) => {
      for (const row of allRows()) {
        const box = row.querySelector("input[type=checkbox]");
        if (box && !row.hidden) box.checked = event.target.checked;
      }
    });
  }
  document.getElementById("actions").addEventListener("submit", submitAction);
  for (const form of document.querySelectorAll("form.node-actions")) form.addEventListener("submit", submitAction);
  setInterval(refreshNodes, NODE_REFRESH);
  refilter();
  connect("events", {snapshot: (rows) => applyRows(rows, true), update: (rows) => applyRows(rows, false),
                     history: (h) => takeHistory(h, true), samples: (h) => takeHistory(h, false)});
  setInterval(tickUptimes, 1000);
}

// ---- actions ----------------------------------------------------------------------------------------

async function submitAction(event) {
  const button = event.submitter;
  if (!button) return;
  event.preventDefault();
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  const form = new FormData(event.target);
  form.set("do", button.value);
  form.delete("back");
  button.disabled = true;
  try {
    const answer = await fetch("action", {method: "POST", body: new URLSearchParams(form),
                                          headers: {Accept: "application/json"}});
    const results = answer.ok ? await answer.json() : [{name: "", ok: false, message: await answer.text()}];
    showResults(results);
    const section = event.target.closest("section.node");
    if (section) refreshNode(section);
  } catch (error) {
    showResults([{name: "", ok: false, message: `the daemon did not answer (${error})`}]);
  } finally {
    button.disabled = false;
    const details = button.closest("details.menu");
    if (details) details.open = false;
  }
}

function showResults(results) {
  let list = document.querySelector("ul.results");
  if (!list) {
    list = el("ul", {class: "results", role: "status"});
    (document.getElementById("actions") || document.querySelector("section.now")).before(list);
  }
  list.replaceChildren(...results.map((r) => el("li", {class: r.ok ? "ok" : "bad"},
                                                r.name ? `${r.name}: ${r.message}` : r.message)));
  announce(results.map((r) => `${r.name} ${r.message}`).join("; "));
}

// ---- other daemons ([node:x]) -------------------------------------------------------------------------
// Their state comes from their plain XML-RPC API (a stock supervisord pushes nothing): each section is
// fetched again after an action on it, and every few seconds while the page is in view.

const NODE_REFRESH = 5000;

async function refreshNode(section) {
  try {
    const answer = await fetch(`node?name=${encodeURIComponent(section.dataset.node)}`);
    if (!answer.ok) return;
    const fresh = new DOMParser().parseFromString(await answer.text(), "text/html").querySelector("section.node");
    if (!fresh) return;
    section.replaceWith(fresh);
    const form = fresh.querySelector("form.node-actions");
    if (form) form.addEventListener("submit", submitAction);
  } catch (error) {
    // the next refresh tries again; this daemon's own table is unaffected
  }
}

function refreshNodes() {
  if (document.visibilityState !== "visible" || !document.querySelector("section.node")) return;
  for (const section of document.querySelectorAll("section.node")) refreshNode(section);
}

// ---- keyboard ---------------------------------------------------------------------------------------

function keyboard(event) {
  if (event.key === "Escape") {
    for (const details of document.querySelectorAll("details.menu[open]")) details.open = false;
    return;
  }
  if (!table || event.target.matches("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) {
    return;
  }
  const rows = allRows().filter((row) => !row.hidden);
  const current = rows.indexOf(document.activeElement.closest("tr"));
  const focusRow = (i) => rows[Math.max(0, Math.min(rows.length - 1, i))]?.querySelector("th.name a")?.focus();
  const press = (verb) => {
    const row = rows[current];
    const button = row?.querySelector(`button.${verb}`);
    if (!button) return;
    const details = button.closest("details");
    if (details) details.open = true;
    button.click();
  };
  const actions = {
    "/": () => filterInput.focus(), j: () => focusRow(current + 1), k: () => focusRow(current - 1),
    x: () => { const box = rows[current]?.querySelector("input[type=checkbox]"); if (box) box.checked = !box.checked; },
    s: () => press("start"), t: () => press("stop"), r: () => press("restart"),
    l: () => rows[current]?.querySelector("a[href^='log.html']")?.click(),
  };
  if (actions[event.key]) {
    event.preventDefault();
    actions[event.key]();
  }
}

// ---- the process page: live state and the charts ----------------------------------------------------------

function drawChart(box, times, values, starts, label, format) {
  const width = Math.max(280, box.clientWidth - 10), height = 140, left = 56, bottom = 18;
  const chart = svg("svg", {viewBox: `0 0 ${width} ${height}`, class: "bigchart", focusable: "false"});
  const max = Math.max(...values, label === "CPU" ? 1 : 1, 1e-9);
  const t0 = times[0] || 0, t1 = times[times.length - 1] || 1;
  const x = (t) => left + (t1 > t0 ? (t - t0) / (t1 - t0) : 1) * (width - left - 4);
  const y = (v) => height - bottom - (v / max) * (height - bottom - 8);
  chart.append(svg("line", {class: "axis", x1: left, y1: height - bottom, x2: width, y2: height - bottom}),
               svg("line", {class: "axis", x1: left, y1: 4, x2: left, y2: height - bottom}));
  const name = svg("text", {x: left + 6, y: 14});
  name.textContent = label === "CPU" ? "CPU (% of one core)" : "resident memory (process tree)";
  chart.append(name);
  const top = svg("text", {x: left - 4, y: 12, "text-anchor": "end"});
  top.textContent = format(max);
  const zero = svg("text", {x: left - 4, y: height - bottom, "text-anchor": "end"});
  zero.textContent = "0";
  const span = svg("text", {x: width - 2, y: height - 4, "text-anchor": "end"});
  const seconds = t1 - t0;
  span.textContent = times.length < 2 ? "one sample" : seconds < 120 ? `last ${seconds} s`
    : `last ${Math.round(seconds / 60)} min`;
  chart.append(top, zero, span);
  for (const start of starts) {
    if (start >= t0 && start <= t1) {
      chart.append(svg("line", {class: "start", x1: x(start), y1: 4, x2: x(start), y2: height - bottom}));
    }
  }
  if (values.length) {
    chart.append(svg("polyline", {class: "series", points: values.map((v, i) => `${x(times[i]).toFixed(1)},${y(v).toFixed(1)}`).join(" ")}));
  }
  const title = svg("title");
  title.textContent = `${label}: now ${format(values[values.length - 1] || 0)}, at most ${format(max)}`;
  chart.append(title);
  chart.dataset.points = String(values.length);
  box.replaceChildren(chart);
}

function setUpProcessPage() {
  const name = document.body.dataset.name;
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const redraw = () => {
    drawChart(document.getElementById("cpu-chart"), data.t, data.cpu, data.starts, "CPU", (v) => `${v.toFixed(1)} %`);
    drawChart(document.getElementById("mem-chart"), data.t, data.rss, data.starts, "memory", memoryText);
  };
  redraw();
  const form = document.querySelector("form.process-actions");
  if (form) form.addEventListener("submit", submitAction);
  let runs = null;  // the run count of the last update
  const update = (rows) => {
    for (const row of rows) {
      if (row.name !== name) continue;
      const state = document.getElementById("state");
      if (state.textContent !== row.state) announce(`${name} is ${row.state.toLowerCase()}`);
      state.textContent = row.state;
      state.className = `badge ${STATE_CLASS[row.state] || "off"}`;
      document.getElementById("desc").textContent = row.description;
      document.getElementById("health").textContent = row.health || "no check";
      document.getElementById("usage").textContent = row.pid
        ? `CPU ${row.cpu.toFixed(1)} %, memory ${memoryText(row.rss_kb) || "0 MB"}` : "not running";
      // a new run: its start time (states may pass STARTING within one update, unseen here). Starts are
      // whole seconds, so a restart within a second of the last start is told by the run count.
      const newRun = runs !== null && row.restarts > runs;
      if (row.start && (newRun || !data.starts.some((t) => Math.abs(t - row.start) <= 1))) data.starts.push(row.start);
      runs = row.restarts;
      if (row.now) clockSkew = row.now - Date.now() / 1000;
      if (form) setPrimary(form, name, row.state);
    }
  };
  const add = (history) => {
    const [t, cpu, rss] = history[name] || [[], [], []];
    data.t.push(...t); data.cpu.push(...cpu); data.rss.push(...rss);
    redraw();
  };
  connect(`events?${new URLSearchParams({only: name})}`, {snapshot: update, update, samples: add});
}

// ---- the log page -----------------------------------------------------------------------------------

async function followLog(pre) {
  const live = document.getElementById("live");
  const pause = document.getElementById("pause");
  const search = document.getElementById("log-search");
  let paused = false, held = "", full = pre.textContent;
  const MAX = 2 * 1024 * 1024;  // scrollback kept in the page
  const render = () => {
    const text = search.value;
    pre.textContent = text ? full.split("\n").filter((line) => line.includes(text)).join("\n") : full;
    if (!paused) pre.scrollTop = pre.scrollHeight;
  };
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) { full += held; held = ""; render(); }
  });
  search.addEventListener("input", render);
  render();
  let offset = Number(pre.dataset.offset);
  for (;;) {
    try {
      const answer = await fetch(`${pre.dataset.follow}&offset=${offset}`);
      if (!answer.ok) { live.textContent = `not following: ${answer.status}`; return; }
      live.textContent = "following";
      const reader = answer.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        offset += value.length;
        const text = decoder.decode(value, {stream: true});
        if (paused) { held += text; continue; }
        full = (full + text).slice(-MAX);
        render();
      }
    } catch (error) {
      live.textContent = "disconnected: reconnecting…";
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// ---- start ------------------------------------------------------------------------------------------

document.addEventListener("click", closeOtherMenus);
document.addEventListener("keydown", keyboard);
if (table) setUpTable();
if (document.body.classList.contains("processpage")) setUpProcessPage();
const logPre = document.getElementById("log");
if (logPre && logPre.dataset.follow) followLog(logPre);
