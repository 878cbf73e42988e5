// procward's page, made live. The server renders everything; this script keeps it current from one
// Server-Sent Events stream, sends actions without reloading, filters and sorts in place (kept in the
// URL), follows logs, and adds keyboard shortcuts. No framework, no build step, no inline script.
"use strict";

const STATE_CLASS = {RUNNING: "ok", STARTING: "busy", STOPPING: "busy", BACKOFF: "bad", FATAL: "bad",
                     EXITED: "off", STOPPED: "off", UNKNOWN: "bad"};

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function announce(text) {
  const region = document.getElementById("announce");
  if (region) region.textContent = text;
}

// ---- the process table ------------------------------------------------------------------------------

const table = document.getElementById("processes");
let clockSkew = 0;  // server time - browser time, so uptimes count on without asking the daemon

function uptime(row) {
  const seconds = Math.max(0, Math.floor(Date.now() / 1000 + clockSkew) - Number(row.dataset.start));
  const h = Math.floor(seconds / 3600), m = Math.floor(seconds / 60) % 60, s = seconds % 60;
  const days = Math.floor(h / 24);
  const clock = `${h % 24}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
  return days ? `${days} day${days > 1 ? "s" : ""}, ${clock}` : clock;
}

function actionButtons(cell, name, state) {
  cell.replaceChildren();
  if (!document.querySelector(".toolbar")) return;  // the read-only user gets no buttons
  const running = ["RUNNING", "STARTING", "BACKOFF"].includes(state);
  const buttons = running ? [["stop", "Stop"], ["restart", "Restart"]] : [["start", "Start"]];
  if (state === "RUNNING") buttons.push(["signal", "Signal"]);
  buttons.push(["clearlog", "Clear log"]);
  for (const [verb, label] of buttons) {
    cell.append(el("button", {type: "submit", name: "do", value: `${verb}:${name}`, class: verb}, label));
  }
}

function makeRow(data) {
  const row = el("tr", {"data-name": data.name});
  const check = el("td");
  check.append(el("input", {type: "checkbox", name: "names", value: data.name, "aria-label": `select ${data.name}`}));
  const name = el("th", {scope: "row", class: "name"});
  name.append(el("a", {href: `log.html?processname=${encodeURIComponent(data.name)}`}, data.name.split(":").pop()));
  row.append(check, name, el("td", {class: "group"}), el("td", {class: "state"}), el("td", {class: "desc"}),
             el("td", {class: "restarts"}), el("td", {class: "exit"}), el("td", {class: "health"}),
             el("td", {class: "cpu"}), el("td", {class: "mem"}), el("td", {class: "output"}),
             el("td", {class: "actions"}));
  return row;
}

function fillRow(row, data) {
  const before = row.dataset.state;
  Object.assign(row.dataset, {name: data.name, group: data.group, state: data.state, start: data.start,
                              pid: data.pid, cpu: data.pid ? data.cpu : 0, rss: data.pid ? data.rss_kb : 0,
                              exit: data.exit_code});
  row.querySelector(".group").textContent = data.group;
  const badge = el("span", {class: `badge ${STATE_CLASS[data.state] || "off"}`}, data.state);
  row.querySelector(".state").replaceChildren(badge);
  row.querySelector(".desc").textContent = data.description;
  row.querySelector(".restarts").textContent = data.restarts;
  row.querySelector(".exit").textContent = data.exit;
  row.querySelector(".health").textContent = `${data.health}${data.ready ? " ready" : ""}`;
  row.querySelector(".output").textContent = data.output;
  row.querySelector(".cpu").textContent = data.pid ? `${data.cpu.toFixed(1)} %` : "";
  const kb = data.pid ? data.rss_kb : 0;
  row.querySelector(".mem").textContent = !kb ? "" : kb < 1048576 ? `${(kb / 1024).toFixed(1)} MB`
    : `${(kb / 1048576).toFixed(2)} GB`;
  if (before !== data.state) actionButtons(row.querySelector(".actions"), data.name, data.state);
  if (before && before !== data.state) announce(`${data.name} is ${data.state.toLowerCase()}`);
}

function applyRows(rows, snapshot) {
  if (!table) return;
  const body = table.tBodies[0];
  const byName = new Map([...body.rows].map((row) => [row.dataset.name, row]));
  for (const data of rows) {
    let row = byName.get(data.name);
    if (!row) {
      row = makeRow(data);
      body.append(row);
    }
    fillRow(row, data);
    byName.delete(data.name);
    if (data.now) clockSkew = data.now - Date.now() / 1000;
  }
  if (snapshot) for (const gone of byName.values()) gone.remove();
  refilter();
}

function tickUptimes() {
  if (!table) return;
  for (const row of table.tBodies[0].rows) {
    if (row.dataset.state !== "RUNNING") continue;
    const desc = row.querySelector(".desc");
    const text = desc.textContent;
    const match = text.match(/^pid (\d+), uptime [^,]+(, .*)?$/);
    if (match) desc.textContent = `pid ${match[1]}, uptime ${uptime(row)}${match[2] || ""}`;
  }
}

function connect() {
  const live = document.getElementById("live");
  const source = new EventSource("events");
  source.addEventListener("snapshot", (event) => applyRows(JSON.parse(event.data), true));
  source.addEventListener("update", (event) => applyRows(JSON.parse(event.data), false));
  source.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  source.onerror = () => { live.textContent = "disconnected: reconnecting…"; live.className = "live off"; };
}

// ---- filter and sort, kept in the URL ---------------------------------------------------------------

const filterInput = document.getElementById("filter");
const stateFilter = document.getElementById("state-filter");
let sortKey = "name", sortDescending = false;

function refilter() {
  if (!table) return;
  const text = (filterInput.value || "").toLowerCase();
  const state = stateFilter.value;
  let shown = 0;
  const rows = [...table.tBodies[0].rows];
  for (const row of rows) {
    const visible = (!text || row.dataset.name.toLowerCase().includes(text)) &&
      (!state || (state === "DOWN" ? row.dataset.state !== "RUNNING" : row.dataset.state === state));
    row.hidden = !visible;
    if (visible) shown += 1;
  }
  const cell = {name: 1, group: 2, state: 3, description: 4, restarts: 5, exit: 6, health: 7}[sortKey] || 1;
  const numeric = ["restarts", "exit", "cpu", "memory"].includes(sortKey);
  const value = (row) => sortKey === "cpu" ? row.dataset.cpu || 0 : sortKey === "memory" ? row.dataset.rss || 0
    : sortKey === "exit" ? row.dataset.exit || 0 : row.cells[cell].textContent;
  rows.sort((a, b) => {
    const x = value(a), y = value(b);
    const order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
    return (sortDescending ? -order : order) || a.dataset.name.localeCompare(b.dataset.name);
  });
  table.tBodies[0].append(...rows);
  document.getElementById("count").textContent = `${shown} of ${rows.length}`;
  const params = new URLSearchParams();
  if (filterInput.value) params.set("q", filterInput.value);
  if (state) params.set("state", state);
  if (sortKey !== "name" || sortDescending) params.set("sort", (sortDescending ? "-" : "") + sortKey);
  const query = params.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
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
  document.getElementById("select-all").addEventListener("change", (event) => {
    for (const row of table.tBodies[0].rows) {
      if (!row.hidden) row.querySelector("input[type=checkbox]").checked = event.target.checked;
    }
  });
  document.getElementById("actions").addEventListener("submit", submitAction);
  for (const form of document.querySelectorAll("form.node-actions")) form.addEventListener("submit", submitAction);
  setInterval(refreshNodes, NODE_REFRESH);
  refilter();
  connect();
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
  }
}

function showResults(results) {
  let list = document.querySelector("ul.results");
  if (!list) {
    list = el("ul", {class: "results"});
    document.getElementById("actions").before(list);
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
  if (document.visibilityState !== "visible") return;
  for (const section of document.querySelectorAll("section.node")) refreshNode(section);
}

// ---- keyboard ---------------------------------------------------------------------------------------

function keyboard(event) {
  if (event.target.matches("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
  const rows = [...table.tBodies[0].rows].filter((row) => !row.hidden);
  const current = rows.indexOf(document.activeElement.closest("tr"));
  const focusRow = (i) => rows[Math.max(0, Math.min(rows.length - 1, i))]?.querySelector("a")?.focus();
  const press = (verb) => rows[current]?.querySelector(`button.${verb}`)?.click();
  const actions = {
    "/": () => filterInput.focus(), j: () => focusRow(current + 1), k: () => focusRow(current - 1),
    x: () => { const box = rows[current]?.querySelector("input[type=checkbox]"); if (box) box.checked = !box.checked; },
    s: () => press("start"), t: () => press("stop"), r: () => press("restart"),
    l: () => rows[current]?.querySelector("a")?.click(),
  };
  if (actions[event.key]) {
    event.preventDefault();
    actions[event.key]();
  }
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

if (table) {
  setUpTable();
  document.addEventListener("keydown", keyboard);
}
const logPre = document.getElementById("log");
if (logPre && logPre.dataset.follow) followLog(logPre);
