// The console's pages: each reads the JSON API of its own origin and redraws itself.
// No framework and no build step; charts and the timeline are drawn as SVG here.
// Requests carry the API key the user typed (sessionStorage, this tab only) as a bearer
// token, and Django's CSRF token as X-CSRFToken.
"use strict";

const API = JSON.parse(document.getElementById("api-urls").textContent);
const KEY_STORE = "imgproc-api-key";
const FINISHED = new Set(["completed", "completed_with_errors", "failed", "cancelled"]);
const LIVE = new Set(["healthy", "degraded", "unhealthy"]);
const SVG_NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => (
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

function csrfToken() {
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  if (cookie) return decodeURIComponent(cookie.split("=")[1]);
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function headers(extra) {
  const h = {"Accept": "application/json", "X-CSRFToken": csrfToken(), ...extra};
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

// fetch() a JSON endpoint: {ok, status, body}; a 401 shows the key form.
async function api(url, options = {}) {
  const init = {credentials: "same-origin", ...options, headers: headers(options.headers)};
  if (options.json !== undefined) {
    init.method = init.method || "POST";
    init.body = JSON.stringify(options.json);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    $("conn").textContent = "API unreachable";
    throw err;
  }
  $("conn").textContent = "";
  let body = null;
  try { body = await response.json(); } catch (err) { body = null; }
  $("keyform").hidden = response.status !== 401;
  return {ok: response.ok, status: response.status, body};
}

function flash(message, error = false) {
  const box = $("flash");
  box.textContent = message;
  box.className = error ? "error" : "";
}

function failure(result) {
  const b = result.body || {};
  return `${result.status}: ${b.message || b.error || "request failed"}`;
}

// Run refresh() now and then every `ms`, one call at a time (a slow answer is not stacked).
function every(ms, refresh) {
  let timer = null;
  let stopped = false;
  async function tick() {
    try { await refresh(); } catch (err) { /* shown by api(); try again */ }
    if (!stopped) timer = setTimeout(tick, ms);
  }
  tick();
  return {stop() { stopped = true; clearTimeout(timer); }, now() { clearTimeout(timer); tick(); }};
}

function ago(ms) {
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return `${s.toFixed(0)} s ago`;
  if (s < 3600) return `${(s / 60).toFixed(0)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit"});
}

function millis(value) {
  if (value == null) return "-";
  return value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(2)} s`;
}

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function keyForm() {
  $("keyform").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, $("key").value.trim());
    location.reload();
  });
}

// --- overview ------------------------------------------------------------------------------

// A line chart of points [{t, v}] over the last `windowMs`, y from 0 to the largest value.
function lineChart(svg, points, windowMs, color, digits = 0) {
  const width = svg.clientWidth || 300;
  const height = svg.clientHeight || 150;
  const pad = {l: 34, r: 6, t: 8, b: 18};
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const end = Date.now();
  const start = end - windowMs;
  const max = Math.max(1, ...points.map((p) => p.v));
  const x = (t) => pad.l + (width - pad.l - pad.r) * (t - start) / windowMs;
  const y = (v) => height - pad.b - (height - pad.t - pad.b) * v / max;
  const label = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(Math.max(digits, 1)));
  for (const v of [0, max / 2, max]) {
    svg.append(svgEl("line", {x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v), stroke: "#e5e7eb"}));
    svg.append(svgEl("text", {x: pad.l - 4, y: y(v) + 3, "text-anchor": "end"}, label(v)));
  }
  for (const minutes of [60, 45, 30, 15, 0]) {
    const t = end - minutes * 60000;
    const anchor = minutes === 60 ? "start" : minutes === 0 ? "end" : "middle";
    svg.append(svgEl("text", {x: x(t), y: height - 4, "text-anchor": anchor},
      minutes ? `-${minutes} min` : "now"));
  }
  const shown = points.filter((p) => p.t >= start);
  if (!shown.length) {
    svg.append(svgEl("text", {x: width / 2, y: height / 2, "text-anchor": "middle"}, "no samples yet"));
    return;
  }
  const path = shown.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
  svg.append(svgEl("polyline", {points: path, fill: "none", stroke: color, "stroke-width": 1.8}));
  const last = shown[shown.length - 1];
  svg.append(svgEl("circle", {cx: x(last.t), cy: y(last.v), r: 2.5, fill: color}));
  svg.dataset.points = String(shown.length);
}

function card(label, value) {
  return `<div class="card"><span class="muted">${esc(label)}</span><b>${esc(value)}</b></div>`;
}

function workerRow(w) {
  const live = LIVE.has(w.status);
  const drain = live && !w.draining
    ? `<button type="button" class="danger" data-drain="${esc(w.id)}">Drain</button>` : "";
  const url = `${API.console}workers/${encodeURIComponent(w.id)}/`;
  return `<tr data-worker="${esc(w.id)}" data-status="${esc(w.status)}">
    <td><a href="${url}">${esc(w.id)}</a></td><td class="${esc(w.status)}" title="${esc(w.status_rule)}">${esc(w.status)}</td>
    <td class="${esc(w.state)}">${esc(w.state)}</td><td>${esc(w.seconds_since_heartbeat)} s</td>
    <td>${esc(w.current_task || "-")}</td><td>${esc(w.tasks_completed)}</td><td>${esc(w.tasks_failed)}</td>
    <td>${w.uptime_s == null ? "-" : esc(w.uptime_s) + " s"}</td><td>${esc(w.hostname ?? "-")} / ${esc(w.pid ?? "-")}</td>
    <td>${drain}</td></tr>`;
}

async function drainWorker(id, after) {
  const result = await api(`${API.workers}${encodeURIComponent(id)}/drain/`, {json: {}});
  if (result.ok) flash(`Worker ${id} is draining: it finishes its task in hand, then leaves.`);
  else flash(`Drain ${id}: ${failure(result)}`, true);
  after();
}

function overviewPage() {
  const status = every(2000, async () => {
    const result = await api(API.status);
    if (!result.ok) { flash(failure(result), true); return; }
    const body = result.body;
    const q = body.queue;
    $("alerts").innerHTML = body.alerts.map((a) => `<div class="alert ${esc(a.severity)}" data-alert="${esc(a.code)}">
      <b>${esc(a.code.replace(/_/g, " "))}</b>: ${esc(a.message)}</div>`).join("");
    $("queue").innerHTML = [
      card("pending", q.pending_total), card("in progress", q.in_progress),
      card("delayed (retry)", q.delayed), card("completed", q.completed),
      card("dead letters", q.dead_lettered), card("tasks/s (60 s)", q.throughput.tasks_per_second_60s),
      card("oldest pending", q.oldest_pending_s == null ? "-" : `${q.oldest_pending_s} s`),
      card("reclaimed", q.reclaimed), card("workers reaped", q.workers_reaped),
    ].join("");
    $("workers").innerHTML = body.workers.map(workerRow).join("")
      || '<tr><td colspan="10" class="muted">No worker has registered.</td></tr>';
  });
  $("workers").addEventListener("click", (event) => {
    const id = event.target.dataset.drain;
    if (id) { event.target.disabled = true; drainWorker(id, status.now); }
  });
  every(5000, async () => {
    const result = await api(API.history);
    if (!result.ok) return;
    const {points, window_s: windowS} = result.body;
    const windowMs = windowS * 1000;
    lineChart($("chart-depth"), points.map((p) => ({t: p.at_ms, v: p.queue_depth})), windowMs, "#2563eb");
    lineChart($("chart-tput"), points.map((p) => ({t: p.at_ms, v: p.completed / Math.max(p.interval_s, 1)})),
      windowMs, "#16a34a", 1);
    lineChart($("chart-fail"), points.map((p) => ({t: p.at_ms, v: p.failed_attempts})), windowMs, "#dc2626");
  });
}

// --- jobs ----------------------------------------------------------------------------------

function progressBar(job) {
  const p = job.progress;
  const total = Math.max(job.total, 1);
  const pct = (n) => (100 * n / total).toFixed(1);
  const done = p.completed + p.failed + p.cancelled;
  return `<div class="progress" data-done="${done}" data-total="${job.total}" title="${done} of ${job.total} ended">
    <span class="ok" style="width:${pct(p.completed)}%"></span><span class="bad" style="width:${pct(p.failed)}%"></span>
    <span class="cx" style="width:${pct(p.cancelled)}%"></span></div>`;
}

function jobsPage() {
  const form = $("filters");
  let offset = 0;
  let total = 0;
  const limit = () => Number(form.limit.value);
  const list = every(1000, async () => {
    const params = new URLSearchParams({offset, limit: limit()});
    if (form.status.value) params.set("status", form.status.value);
    if (form.mode.value) params.set("mode", form.mode.value);
    const result = await api(`${API.jobs}?${params}`);
    if (!result.ok) { flash(failure(result), true); return; }
    total = result.body.total;
    $("jobs").innerHTML = result.body.items.map((job) => `<tr data-job="${esc(job.id)}" data-status="${esc(job.status)}">
      <td><a href="${API.console}jobs/${esc(job.id)}/">${esc(job.id)}</a></td><td>${esc(job.mode)}</td>
      <td class="${esc(job.status)}">${esc(job.status)}</td><td>${progressBar(job)}</td>
      <td>${job.progress.completed + job.progress.failed + job.progress.cancelled} / ${job.total}</td>
      <td>${esc(new Date(job.created_at).toLocaleString())}</td></tr>`).join("")
      || '<tr><td colspan="6" class="muted">No job.</td></tr>';
    const shownTo = Math.min(total, offset + limit());
    $("page").textContent = total ? `${offset + 1}–${shownTo} of ${total}` : "";
    $("prev").disabled = offset === 0;
    $("next").disabled = offset + limit() >= total;
    flash(result.body.distributed_unavailable ? "Redis does not answer: local jobs only." : "",
      result.body.distributed_unavailable);
  });
  form.addEventListener("change", () => { offset = 0; list.now(); });
  $("prev").addEventListener("click", () => { offset = Math.max(0, offset - limit()); list.now(); });
  $("next").addEventListener("click", () => { offset += limit(); list.now(); });
}

// --- one job -------------------------------------------------------------------------------

function renderThumbs(results, shown) {
  const grid = $("thumbs");
  for (const r of results) {
    const src = r.status === "completed" ? (r.thumbnail_url || r.output_url) : null;
    let tile = grid.querySelector(`[data-index="${r.index}"]`);
    if (!tile) {
      tile = document.createElement("div");
      tile.className = "thumb";
      tile.dataset.index = r.index;
      grid.append(tile);
    }
    const key = `${src}|${r.status}|${r.state || ""}`;
    if (shown.get(r.index) === key) continue;  // unchanged: the image is not fetched again
    shown.set(r.index, key);
    const label = `<small title="${esc(r.image)}">#${r.index} ${esc(r.image)}</small>`;
    const keyed = Boolean(sessionStorage.getItem(KEY_STORE));
    tile.innerHTML = src
      ? `<a href="${esc(r.output_url || src)}"><img ${keyed ? "data-" : ""}src="${esc(src)}" alt="result ${r.index}"></a>${label}`
      : `<div class="ph ${esc(r.state || r.status)}">${esc(r.state || r.status)}</div>${label}`;
    if (src && keyed) loadWithKey(tile.querySelector("img"));
  }
}

// An <img> cannot send the API key: fetch the image with it and show it from a blob.
async function loadWithKey(img) {
  const response = await fetch(img.dataset.src, {headers: headers({Accept: "image/*"})});
  if (!response.ok) { img.alt = `${img.alt}: ${response.status}`; return; }
  img.src = URL.createObjectURL(await response.blob());
}

// The job's callback in a line: where, its state, the attempts and the last answer.
function callbackLine(cb) {
  if (!cb) return "";
  let line = `Callback to ${cb.url}: ${cb.state}`;
  const n = cb.attempts.length;
  if (n) {
    const last = cb.attempts[n - 1];
    line += `, ${n} attempt${n > 1 ? "s" : ""} (last: ${last.status_code ?? last.error})`;
  }
  if (cb.next_attempt_at) line += `, next at ${cb.next_attempt_at.slice(11, 19)}`;
  return line;
}

function jobPage() {
  const jobId = JSON.parse($("job-id").textContent);
  const url = `${API.jobs}${encodeURIComponent(jobId)}/`;
  const shown = new Map();
  let finished = false;
  let poller = null;

  async function refresh() {
    const result = await api(url);
    if (!result.ok) { flash(failure(result), true); return; }
    const job = result.body;
    const p = job.progress || {completed: job.results.filter((r) => r.status === "completed").length,
      failed: job.results.filter((r) => r.status === "failed").length, cancelled: 0};
    const ended = p.completed + p.failed + p.cancelled;
    $("status").textContent = job.status;
    $("status").className = `badge ${job.status}`;
    $("counts").textContent = `${job.mode} · ${ended} of ${job.total} ended (${p.completed} completed, ` +
      `${p.failed} failed, ${p.cancelled} cancelled)`;
    $("bar").style.width = `${(100 * ended / Math.max(job.total, 1)).toFixed(1)}%`;
    finished = FINISHED.has(job.status);
    $("cancel").disabled = finished || job.mode !== "distributed";
    $("download").href = job.results_url || "#";
    $("download").classList.toggle("disabled", !p.completed);
    renderThumbs(job.results, shown);
    $("callback").textContent = callbackLine(job.callback);
    $("tasks").innerHTML = job.results.map((r) => `<tr data-index="${r.index}">
      <td>${r.index}</td><td>${esc(r.image)}</td><td class="${esc(r.state || r.status)}">${esc(r.state || r.status)}</td>
      <td>${esc(r.attempts ?? 1)}</td><td>${r.worker ? `<a href="${API.console}workers/${encodeURIComponent(r.worker)}/">${esc(r.worker)}</a>` : "-"}</td>
      <td>${millis(r.queued_ms)}</td><td>${millis(r.run_ms ?? r.total_ms)}</td>
      <td class="wrap">${r.error ? esc(`${r.error.code}: ${r.error.message}`) : ""}</td></tr>`).join("");
    if (finished && poller) poller.stop();
  }

  function poll() {
    $("live").textContent = "live: polling every second";
    poller = every(1000, refresh);
  }

  // Live updates from the job's event stream; each event redraws from the job itself (the
  // stream carries counts, the page shows every task). Without the stream: polling.
  let pending = null;
  const soon = () => { if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 200); };
  refresh();
  if (window.EventSource) {
    const source = new EventSource(`${url}events/`);
    let events = 0;
    source.addEventListener("progress", () => { events += 1; $("live").textContent = "live: event stream"; soon(); });
    source.addEventListener("end", () => { source.close(); $("live").textContent = "finished"; refresh(); });
    source.onerror = () => {
      source.close();
      if (!finished) poll();
      else if (!events) refresh();
    };
  } else {
    poll();
  }

  $("cancel").addEventListener("click", async () => {
    $("cancel").disabled = true;
    const result = await api(`${url}cancel/`, {json: {}});
    flash(result.ok ? `Cancelled: ${result.body.cancelled ?? 0} tasks will not run.` : `Cancel: ${failure(result)}`,
      !result.ok);
    refresh();
  });
  $("download").addEventListener("click", async (event) => {
    // With a key, a plain link would not carry it: fetch the zip and hand it over as a file.
    if (!sessionStorage.getItem(KEY_STORE)) return;
    event.preventDefault();
    const response = await fetch($("download").href, {headers: headers({Accept: "application/zip"})});
    if (!response.ok) { flash(`Download: ${response.status}`, true); return; }
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = `${jobId}.zip`;
    link.click();
  });
}

// --- dead letters --------------------------------------------------------------------------

function deadLettersPage() {
  const limit = 50;
  let offset = 0;
  const list = every(2000, async () => {
    const result = await api(`${API.dead_letters}?offset=${offset}&limit=${limit}`);
    if (!result.ok) { flash(failure(result), true); return; }
    const {items, total} = result.body;
    $("total").textContent = `${total} dead letter${total === 1 ? "" : "s"}`;
    $("requeue-all").disabled = $("discard-all").disabled = !total;
    $("letters").innerHTML = items.map((d) => `<tr data-task="${esc(d.task_id)}">
      <td><a href="${API.console}jobs/${esc(d.job_id)}/">${esc(d.task_id)}</a></td><td>${esc(d.image ?? "-")}</td>
      <td>${esc(d.attempts ?? "-")}</td><td class="wrap">${d.error ? esc(`${d.error.kind}: ${d.error.message}`) : "-"}</td>
      <td>${esc(d.worker ?? "-")}</td><td>${esc(new Date(d.dead_at).toLocaleString())}</td>
      <td><button type="button" data-act="requeue" data-id="${esc(d.task_id)}">Requeue</button>
        <button type="button" class="danger" data-act="discard" data-id="${esc(d.task_id)}">Discard</button></td></tr>`).join("")
      || '<tr><td colspan="7" class="muted">No dead letter.</td></tr>';
    $("page").textContent = total ? `${offset + 1}–${Math.min(total, offset + limit)} of ${total}` : "";
    $("prev").disabled = offset === 0;
    $("next").disabled = offset + limit >= total;
  });
  async function act(action, taskIds) {
    const json = taskIds ? {action, task_ids: taskIds} : {action, all: true};
    const result = await api(API.dead_letters, {json});
    flash(result.ok ? `${action}: ${result.body.changed} changed.` : `${action}: ${failure(result)}`, !result.ok);
    list.now();
  }
  $("letters").addEventListener("click", (event) => {
    const {act: action, id} = event.target.dataset;
    if (action) { event.target.disabled = true; act(action, [id]); }
  });
  $("requeue-all").addEventListener("click", () => act("requeue", null));
  $("discard-all").addEventListener("click", () => act("discard", null));
  $("prev").addEventListener("click", () => { offset = Math.max(0, offset - limit); list.now(); });
  $("next").addEventListener("click", () => { offset += limit; list.now(); });
}

// --- one worker ----------------------------------------------------------------------------

const OUTCOME_COLOURS = {completed: "#22c55e", retry: "#f59e0b", dead: "#ef4444", fenced: "#9ca3af"};

function timeline(svg, spans) {
  const width = svg.clientWidth || 600;
  svg.replaceChildren();
  if (!spans.length) {
    svg.setAttribute("viewBox", `0 0 ${width} 40`);
    svg.style.height = "40px";
    svg.append(svgEl("text", {x: width / 2, y: 24, "text-anchor": "middle"}, "no task yet"));
    return;
  }
  const ordered = [...spans].sort((a, b) => a.started_ms - b.started_ms);
  const start = ordered[0].started_ms;
  const end = Math.max(...ordered.map((s) => s.ended_ms), start + 1);
  const lanes = [];  // end of the last bar of each lane: overlapping tasks go on new lanes
  const laneOf = ordered.map((s) => {
    let lane = lanes.findIndex((last) => last <= s.started_ms);
    if (lane < 0) { lane = lanes.length; lanes.push(0); }
    lanes[lane] = s.ended_ms;
    return lane;
  });
  const pad = {l: 8, r: 8, t: 6, b: 18};
  const lane = 16;
  const height = pad.t + lanes.length * lane + pad.b;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.style.height = `${height}px`;
  const x = (t) => pad.l + (width - pad.l - pad.r) * (t - start) / (end - start);
  ordered.forEach((s, i) => {
    const bar = svgEl("rect", {x: x(s.started_ms), y: pad.t + laneOf[i] * lane, height: lane - 4,
      width: Math.max(2, x(s.ended_ms) - x(s.started_ms)), fill: OUTCOME_COLOURS[s.outcome] || "#2563eb",
      "data-task": s.task, rx: 2});
    bar.append(svgEl("title", {}, `${s.task} ${s.outcome} ${millis(s.ended_ms - s.started_ms)}`));
    svg.append(bar);
  });
  svg.append(svgEl("text", {x: pad.l, y: height - 4}, clock(start)));
  svg.append(svgEl("text", {x: width - pad.r, y: height - 4, "text-anchor": "end"}, clock(end)));
}

function workerPage() {
  const workerId = JSON.parse($("worker-id").textContent);
  const url = `${API.workers}${encodeURIComponent(workerId)}/`;
  const view = every(2000, async () => {
    const result = await api(url);
    if (!result.ok) { flash(failure(result), true); return; }
    const w = result.body;
    $("status").textContent = `${w.status} · ${w.state}`;
    $("status").className = `badge ${w.status}`;
    $("facts").textContent = `${w.tasks_completed} completed, ${w.tasks_failed} failed · ${w.status_rule}` +
      (w.hostname ? ` · ${w.hostname} / ${w.pid}` : "");
    $("drain").hidden = !LIVE.has(w.status) || w.draining;
    timeline($("timeline"), w.recent_tasks);
    $("spans").innerHTML = w.recent_tasks.map((s) => `<tr><td><a href="${API.console}jobs/${esc(s.job)}/">${esc(s.task)}</a></td>
      <td class="${esc(s.outcome)}">${esc(s.outcome)}</td><td>${esc(clock(s.started_ms))} (${ago(s.started_ms)})</td>
      <td>${millis(s.ended_ms - s.started_ms)}</td></tr>`).join("");
  });
  $("drain").addEventListener("click", () => { $("drain").hidden = true; drainWorker(workerId, view.now); });
}

const PAGES = {"overview": overviewPage, "jobs": jobsPage, "job": jobPage,
  "dead-letters": deadLettersPage, "worker": workerPage};
keyForm();
PAGES[document.body.dataset.page]();
