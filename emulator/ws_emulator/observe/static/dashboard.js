// The emulator's dashboard: one socket to /_emulator/live, rendered into plain DOM and hand-drawn SVG.
// Generic: it knows WebSocket APIs, Lambda triggers and the emulator's feed, nothing about any one app.

const FEED_LIMIT = 500;
const TRY_LOG_LIMIT = 200;
const COLORS = ["#2563eb", "#c0392b", "#1f8a4c", "#b7791f", "#7c3aed"];

const $ = (id) => document.getElementById(id);
const state = { records: [], selected: null, live: null, hello: null, series: null, retryMs: 250 };

// ---- the live socket --------------------------------------------------------------------------------

function liveUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/_emulator/live`;
}

function connectLive() {
  setStatus("connecting", "connecting…");
  const ws = new WebSocket(liveUrl());
  state.live = ws;
  ws.onopen = () => { state.retryMs = 250; setStatus("live", "live"); };
  ws.onmessage = (event) => onLiveMessage(JSON.parse(event.data));
  ws.onclose = () => {
    setStatus("closed", "disconnected, retrying…");
    setTimeout(connectLive, state.retryMs);
    state.retryMs = Math.min(5000, state.retryMs * 2);
  };
}

function send(command) {
  // Writes go as JSON over the same-origin socket: the emulator refuses it to every other origin.
  if (state.live && state.live.readyState === WebSocket.OPEN) state.live.send(JSON.stringify(command));
}

function onLiveMessage(message) {
  switch (message.type) {
    case "hello":
      state.hello = message;
      state.records = message.invocations.slice(-FEED_LIMIT);
      setupTryIt(message);
      renderFeed();
      break;
    case "invocation":
      state.records.push(message.record);
      if (state.records.length > FEED_LIMIT) state.records.splice(0, state.records.length - FEED_LIMIT);
      renderFeed();
      break;
    case "state":
      renderConnections(message.connections);
      state.series = message.series;
      renderCharts();
      renderDeadLetters(message.deadLetters);
      break;
    case "detail":
      renderDetail(message.record);
      break;
    case "error":
    case "closing":
      $("summary").textContent = message.message || `closing ${message.connectionId}`;
      break;
  }
}

function setStatus(stateName, text) {
  const el = $("live-status");
  el.dataset.state = stateName;
  el.textContent = text;
}

// ---- helpers ----------------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

function duration(seconds) {
  if (seconds < 60) return `${seconds.toFixed(0)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.floor(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

function where(record) {
  if (record.trigger === "route") return record.source;
  if (record.trigger === "authorizer") return "authorizer";
  return `${record.trigger}:${record.source}`;
}

function statusClass(record) {
  if (!record.ok) return record.status === "Partial" || record.status === "401" || record.status === "403" ? "status-warn" : "status-bad";
  return "status-ok";
}

function notes(record) {
  const parts = [];
  if (record.batch_size !== undefined) parts.push(`batch ${record.batch_size}`);
  if (record.failures) parts.push(`${record.failures} failed`);
  if (record.lag_ms !== undefined) parts.push(`lag ${Math.round(record.lag_ms)} ms`);
  if (record.cold_start) parts.push(`cold start, init ${Math.round(record.init_ms)} ms`);
  if (record.error_type) parts.push(record.error_type);
  return parts.join(", ");
}

// ---- connections ------------------------------------------------------------------------------------

function identity(connection) {
  const context = Object.entries(connection.context || {}).map(([k, v]) => `${k}=${v}`).join(" ");
  return [connection.principalId ?? "(no authorizer)", context].filter(Boolean).join("  ");
}

function renderConnections(connections) {
  const body = $("connections").tBodies[0];
  body.replaceChildren(
    ...connections.map((c) => {
      const close = el("button", { type: "button", class: "close-connection", title: "DELETE @connections/" + c.connectionId }, "close");
      close.addEventListener("click", () => send({ op: "close", connectionId: c.connectionId }));
      const row = el(
        "tr",
        { "data-connection-id": c.connectionId },
        el("td", { title: c.connectionId }, el("code", {}, c.connectionId)),
        el("td", { title: identity(c) }, identity(c)),
        el("td", {}, duration(c.connectedForS)),
        el("td", {}, duration(c.idleForS)),
        el("td", {}, `${c.framesIn} / ${c.framesOut}`),
        el("td", {}, close),
      );
      row.querySelector("code").addEventListener("click", () => { $("filter-connection").value = c.connectionId; renderFeed(); });
      return row;
    }),
  );
  $("connection-count").textContent = String(connections.length);
  $("no-connections").hidden = connections.length > 0;
}

// ---- the feed ---------------------------------------------------------------------------------------

function filtered() {
  const connection = $("filter-connection").value.trim();
  const route = $("filter-route").value;
  const fn = $("filter-function").value;
  return state.records.filter(
    (r) => (!connection || (r.connection_id || "").startsWith(connection)) && (!route || where(r) === route) && (!fn || r.function === fn),
  );
}

function syncOptions(select, values) {
  const current = new Set([...select.options].map((o) => o.value));
  for (const value of [...values].sort()) if (!current.has(value)) select.append(el("option", { value }, value));
}

function renderFeed() {
  syncOptions($("filter-route"), new Set(state.records.map(where)));
  syncOptions($("filter-function"), new Set(state.records.map((r) => r.function)));
  const rows = filtered().slice(-200).reverse().map((r) => {
    const row = el(
      "tr",
      { "data-seq": String(r.seq), "data-function": r.function, "data-trigger": r.trigger, class: r.seq === state.selected ? "selected" : "" },
      el("td", {}, new Date(r.ts_ms).toLocaleTimeString()),
      el("td", {}, where(r)),
      el("td", { title: r.connection_id || "" }, (r.connection_id || "-").slice(0, 8)),
      el("td", { title: r.function_name }, r.function),
      el("td", { class: statusClass(r) }, r.status),
      el("td", {}, r.duration_ms.toFixed(1)),
      el("td", {}, notes(r)),
    );
    row.addEventListener("click", () => { state.selected = r.seq; send({ op: "detail", seq: r.seq }); renderFeed(); });
    return row;
  });
  $("feed").tBodies[0].replaceChildren(...rows);
  $("summary").textContent = `${state.records.length} invocations kept`;
}

function pretty(text) {
  if (!text) return "(none)";
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

function renderDetail(record) {
  $("detail-title").textContent = `#${record.seq} ${where(record)} → ${record.function}`;
  const meta = { status: record.status, duration: `${record.duration_ms} ms`, "cold start": record.cold_start ? `yes, init ${record.init_ms} ms` : "no",
    connection: record.connection_id || "-", "request id": record.request_id, error: record.error_type ? `${record.error_type}: ${record.error_message || ""}` : "-" };
  $("detail-meta").replaceChildren(...Object.entries(meta).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("detail-event").textContent = pretty(record.event);
  $("detail-response").textContent = pretty(record.response);
}

// ---- charts (hand-drawn SVG) ------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawChart(svg, lines, start, step) {
  const W = 320, H = 140, L = 34, R = 6, T = 16, B = 16;
  const values = lines.flatMap((l) => l.values.filter((v) => v !== null));
  const max = Math.max(1, ...values);
  const n = Math.max(1, ...lines.map((l) => l.values.length));
  const x = (i) => L + ((W - L - R) * i) / Math.max(1, n - 1);
  const y = (v) => H - B - ((H - T - B) * v) / max;
  const parts = [
    svgEl("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#ccd" }),
    svgEl("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#ccd" }),
    svgEl("text", { x: 2, y: T + 3 }, max >= 10 ? max.toFixed(0) : max.toPrecision(2)),
    svgEl("text", { x: 2, y: H - B }, "0"),
    svgEl("text", { x: L, y: H - 3 }, new Date(start * 1000).toLocaleTimeString()),
    svgEl("text", { x: W - R - 40, y: H - 3 }, "now"),
  ];
  lines.forEach((line, index) => {
    let d = "";
    line.values.forEach((v, i) => { if (v === null) return; d += `${d && line.values[i - 1] !== null ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`; });
    const color = line.color || COLORS[index % COLORS.length];
    parts.push(svgEl("path", { d, fill: "none", stroke: color, "stroke-width": 1.6, "data-series": line.name }));
    // A dot per value, so a lone bin (one burst) is visible without a neighbour to draw a line to.
    line.values.forEach((v, i) => { if (v !== null && v > 0) parts.push(svgEl("circle", { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 1.8, fill: color })); });
    parts.push(svgEl("text", { x: L + 6 + index * 70, y: 11, fill: line.color || COLORS[index % COLORS.length] }, line.name));
  });
  svg.replaceChildren(...parts);
}

function renderCharts() {
  const s = state.series;
  if (!s) return;
  drawChart($("chart-invocations"), [{ name: "invocations/s", values: s.invocationsPerS }, { name: "errors", values: s.errors, color: COLORS[1] }], s.start, s.step);
  drawChart($("chart-posts"), [{ name: "posts/s", values: s.postsPerS }, { name: "failed/s", values: s.failedPostsPerS, color: COLORS[1] }], s.start, s.step);
  drawChart($("chart-lag"), [{ name: "lag p95", values: s.lagP95Ms }], s.start, s.step);
  drawChart($("chart-cold"), [{ name: "cold starts", values: s.coldStarts, color: COLORS[3] }], s.start, s.step);
  const select = $("latency-route");
  syncOptions(select, new Set(Object.keys(s.latency)));
  const key = select.value || Object.keys(s.latency)[0];
  const lat = s.latency[key] || { p50: [], p95: [] };
  drawChart($("chart-latency"), [{ name: "p50", values: lat.p50 }, { name: "p95", values: lat.p95, color: COLORS[1] }], s.start, s.step);
}

// ---- dead letters -----------------------------------------------------------------------------------

function renderDeadLetters(letters) {
  const queues = Object.entries(letters || {});
  const box = $("dead-letters");
  if (!queues.length) { box.replaceChildren(el("p", { class: "muted" }, "No dead-letter queue or on-failure destination in the template.")); return; }
  box.replaceChildren(
    ...queues.map(([queue, messages]) =>
      el("details", { open: messages.length > 0, "data-queue": queue },
        el("summary", {}, `${queue}: ${messages.length} message(s)`),
        ...messages.map((m) => el("pre", { class: "body" }, `${m.messageId}  received ${m.receiveCount ?? "?"}×\n${pretty(m.body)}`)),
      ),
    ),
  );
}

// ---- try it -----------------------------------------------------------------------------------------

const trial = { ws: null };

function tryLog(kind, text) {
  const log = $("try-log");
  log.append(el("li", { class: kind }, text));
  while (log.children.length > TRY_LOG_LIMIT) log.firstChild.remove();
  log.scrollTop = log.scrollHeight;
}

function setupTryIt(hello) {
  $("try-enabled").hidden = !hello.devTokens;
  $("try-disabled").hidden = hello.devTokens;
}

async function openTrial(event) {
  event.preventDefault();
  if (trial.ws) trial.ws.close();
  const user = $("try-user").value.trim();
  const hello = state.hello;
  const params = new URLSearchParams();
  if (hello.tokenQuery) {
    const reply = await fetch(`/_emulator/token?sub=${encodeURIComponent(user)}`, { cache: "no-store" });
    const document_ = await reply.json();
    if (!reply.ok) { tryLog("note", `no token: ${document_.message}`); return; }
    params.set(hello.tokenQuery, document_.token); // used in the URL only, never shown
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}${hello.apiPath}?${params}`);
  trial.ws = ws;
  $("try-state").textContent = "opening…";
  ws.onopen = () => { $("try-state").textContent = `open as ${user}`; $("try-send-button").disabled = false; $("try-close").disabled = false; tryLog("note", `opened as ${user}`); };
  ws.onmessage = (e) => tryLog("in", typeof e.data === "string" ? e.data : "(binary frame)");
  ws.onclose = (e) => {
    if (trial.ws === ws) trial.ws = null;
    $("try-state").textContent = "closed"; $("try-send-button").disabled = true; $("try-close").disabled = true;
    tryLog("note", `closed: ${e.code} ${e.reason}`);
  };
}

function sendTrial(event) {
  event.preventDefault();
  const frame = $("try-frame").value;
  if (!trial.ws || trial.ws.readyState !== WebSocket.OPEN) return;
  trial.ws.send(frame);
  tryLog("out", frame);
}

// ---- start ------------------------------------------------------------------------------------------

$("try-connect").addEventListener("submit", openTrial);
$("try-send").addEventListener("submit", sendTrial);
$("try-close").addEventListener("click", () => trial.ws && trial.ws.close(1000, "closed from the dashboard"));
for (const id of ["filter-connection", "filter-route", "filter-function"]) $(id).addEventListener("input", renderFeed);
$("filter-clear").addEventListener("click", () => { for (const id of ["filter-connection", "filter-route", "filter-function"]) $(id).value = ""; renderFeed(); });
$("latency-route").addEventListener("change", renderCharts);
connectLive();
