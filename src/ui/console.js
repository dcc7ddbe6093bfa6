/*
 * runbridge console: a one-page app over /api/v1/ (hash routes).
 *
 *   #/                         overview: summary + live deliveries (SSE)
 *   #/runs?project=&q=         runs; #/runs/<project>/<run id>: one run's timeline
 *   #/deliveries?type=&...     deliveries; #/deliveries/<id>: raw and normalized
 *   #/jobs/<id>                one job and its attempts
 *   #/dead?rule=&kind=&...     dead letters: replay one, replay all that match
 *   #/rules                    rules, match counts, "what would run"
 *   #/login                    sign in with http.admin_token
 *
 * Safety: every value that comes from the API is written with textContent
 * (el() below never parses markup), links from data are kept only when
 * they are http(s), and the page needs nothing that a CSP of
 * default-src 'self' forbids.  The admin token goes from the sign-in form
 * to POST /api/v1/login and is forgotten: the session is an HttpOnly
 * cookie; the CSRF token lives in memory only.
 */
"use strict";

(function () {
  const API = "/api/v1";
  const state = { session: null, csrf: "", stream: null, page: null };

  /* ---- DOM helpers: text only ---------------------------------------- */

  // el("a", {href: "#/x", className: "c", onclick: fn}, "text", child, ...)
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "className") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k === "href") node.setAttribute("href", v);
      else if (k in node && typeof v !== "string") node[k] = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  const main = () => document.getElementById("main");

  function flash(text, kind) {
    const f = document.getElementById("flash");
    f.className = kind || "ok";
    f.textContent = text;
    f.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { f.hidden = true; }, 6000);
  }

  // A class name made from data: letters, digits, - and _ only.
  const cls = (s) => String(s === null || s === undefined ? "none" : s).replace(/[^A-Za-z0-9_-]/g, "_");

  function badge(stateName) {
    return el("span", { className: "badge state-" + cls(stateName) }, stateName === null || stateName === undefined ? "—" : String(stateName));
  }

  // Only http(s) links from data: never javascript: or data: URLs.
  function safeUrl(u) {
    if (typeof u !== "string") return null;
    try {
      const p = new URL(u, location.href);
      return p.protocol === "http:" || p.protocol === "https:" ? p.href : null;
    } catch (e) {
      return null;
    }
  }

  function fmtTime(v) {
    if (v === null || v === undefined || v === "") return "—";
    if (typeof v === "number") {
      const d = new Date(v > 1e11 ? v : v * 1000);
      return isNaN(d) ? String(v) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
    }
    return String(v).replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  function fmtDuration(s) {
    if (typeof s !== "number") return String(s);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + Math.floor(s % 60) + "s";
  }

  const shortId = (id) => (typeof id === "string" && id.length > 12 ? id.slice(0, 12) + "…" : String(id));

  function pretty(v) {
    if (typeof v === "string") {
      try { return JSON.stringify(JSON.parse(v), null, 2); } catch (e) { return v; }
    }
    return JSON.stringify(v, null, 2);
  }

  // The raw delivery as it was sent: shown as text, re-indented only when
  // it is an object (a string is kept byte for byte: big integers survive).
  function rawText(v) {
    return typeof v === "string" ? v : JSON.stringify(v, null, 2);
  }

  function table(headers, rows, empty) {
    if (!rows.length) return el("p", { className: "muted empty" }, empty || "Nothing here.");
    return el("table", {},
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows));
  }

  // A nested object as definition lists (the summary's shape may grow).
  function dl(obj) {
    if (obj === null || obj === undefined) return el("span", { className: "muted" }, "—");
    if (typeof obj !== "object") return el("span", {}, String(obj));
    if (Array.isArray(obj)) {
      if (!obj.length) return el("span", { className: "muted" }, "none");
      return el("ul", { className: "plain" }, obj.map((x) => el("li", {}, dl(x))));
    }
    const keys = Object.keys(obj);
    if (!keys.length) return el("span", { className: "muted" }, "none");
    return el("dl", { className: "kv" }, keys.map((k) => [el("dt", {}, k), el("dd", {}, dl(obj[k]))]));
  }

  /* ---- the API --------------------------------------------------------- */

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      opts.headers["Content-Type"] = "application/json";
      opts.headers["X-CSRF-Token"] = state.csrf || "";
      opts.body = body === undefined ? "{}" : typeof body === "string" ? body : JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(API + path, opts);
    } catch (e) {
      throw new ApiError(0, "runbridge does not answer (" + e.message + ")");
    }
    const text = await r.text();
    let doc = null;
    try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = text; }
    if (!r.ok) {
      const msg = doc && typeof doc === "object" && doc.error ? doc.error : r.status + " " + r.statusText;
      if (r.status === 401 && path !== "/login" && path !== "/session") {
        state.session = null;
        go("#/login");
      }
      throw new ApiError(r.status, msg);
    }
    return doc;
  }

  const q = (params) => {
    const s = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") s.set(k, v);
    const t = s.toString();
    return t ? "?" + t : "";
  };

  const items = (doc) => (doc && Array.isArray(doc.items) ? doc.items : Array.isArray(doc) ? doc : []);

  /* ---- routing ---------------------------------------------------------- */

  function parseHash() {
    const h = location.hash.replace(/^#\/?/, "");
    const [path, query] = h.split("?");
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    return { parts, params: Object.fromEntries(new URLSearchParams(query || "")) };
  }

  function go(hash) {
    if (location.hash === hash) render();
    else location.hash = hash;
  }

  const routes = {
    "": pageOverview,
    runs: (r, v) => (r.parts.length >= 3 ? pageRun(r.parts[1], r.parts[2], v) : pageRuns(r.params, v)),
    deliveries: (r, v) => (r.parts.length >= 2 ? pageDelivery(r.parts[1], v) : pageDeliveries(r.params, v)),
    jobs: (r, v) => pageJob(r.parts[1], v),
    dead: (r, v) => pageDead(r.params, v),
    rules: pageRules,
    login: pageLogin,
  };

  async function render() {
    const r = parseHash();
    const name = r.parts[0] || "";
    stopStream();
    if (!state.session && name !== "login") return go("#/login");
    const page = routes[name] || pageNotFound;
    state.page = name || "overview";
    for (const a of document.querySelectorAll("#nav a"))
      a.classList.toggle("active", a.dataset.page === (name === "jobs" ? "dead" : state.page));
    const view = clear(main());
    view.dataset.page = state.page;
    try {
      await page(r, view);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      view.appendChild(el("p", { className: "error" }, "Error: " + e.message));
    }
  }

  function pageNotFound(r, view) {
    append(view, [el("h1", {}, "No such page"), el("p", {}, el("a", { href: "#/" }, "Back to the overview"))]);
  }

  /* ---- session ---------------------------------------------------------- */

  async function loadSession() {
    try {
      const s = await api("GET", "/session");
      state.session = s && s.authenticated !== false ? s : null;
      state.csrf = (s && s.csrf) || "";
    } catch (e) {
      state.session = null;
      state.csrf = "";
      if (e.status !== 401) throw e;
    }
    showSession();
  }

  function showSession() {
    const s = state.session;
    document.getElementById("nav").hidden = !s;
    document.getElementById("logout").hidden = !(s && s.via === "cookie");
    const via = { loopback: "local (loopback)", cookie: "signed in", bearer: "token" };
    document.getElementById("who").textContent = s ? via[s.via] || String(s.via) : "";
  }

  function pageLogin(r, view) {
    if (state.session) return go("#/");
    const token = el("input", { type: "password", name: "token", id: "token", autocomplete: "current-password", required: true });
    const msg = el("p", { className: "error", hidden: true });
    const form = el("form", { className: "card login", id: "login-form" },
      el("h1", {}, "Sign in"),
      el("p", { className: "muted" }, "Enter runbridge's admin token (http.admin_token). It is sent once; the browser keeps only a session cookie."),
      el("label", { for: "token" }, "Admin token"), token,
      el("button", { type: "submit" }, "Sign in"), msg);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const t = token.value;
      token.value = "";
      try {
        await api("POST", "/login", { token: t });
        await loadSession();
        if (!state.session) throw new ApiError(401, "the session did not start");
        go("#/");
      } catch (e) {
        msg.hidden = false;
        msg.textContent = e.status === 401 ? "That token is not right." : "Sign-in failed: " + e.message;
      }
    });
    view.appendChild(form);
    token.focus();
  }

  async function logout() {
    try { await api("POST", "/logout"); } catch (e) { /* signed out anyway */ }
    state.session = null;
    state.csrf = "";
    await loadSession().catch(() => {});
    go(state.session ? "#/" : "#/login");
  }

  /* ---- overview --------------------------------------------------------- */

  async function pageOverview(r, view) {
    const summaryBox = el("div", { id: "summary", className: "grid" }, el("p", { className: "muted" }, "Loading…"));
    const live = el("tbody", { id: "live-rows" });
    const liveState = el("span", { className: "muted", id: "live-state" }, "connecting…");
    append(view, [
      el("h1", {}, "Overview"), summaryBox,
      el("section", { className: "card" },
        el("h2", {}, "Latest deliveries ", liveState),
        el("table", { id: "live" },
          el("thead", {}, el("tr", {}, ["received", "type", "project", "run", "run title", "delivery"].map((h) => el("th", {}, h)))),
          live)),
    ]);
    const doc = await api("GET", "/deliveries?limit=20");
    for (const d of items(doc).slice().reverse()) live.prepend(liveRow(d));
    await renderSummary(summaryBox);
    startStream(live, liveState, summaryBox);
  }

  async function renderSummary(box) {
    const s = await api("GET", "/summary");
    clear(box);
    const jobs = s.jobs || s.jobs_by_state || {};
    const head = el("section", { className: "card" }, el("h2", {}, "runbridge"),
      el("dl", { className: "kv" },
        el("dt", {}, "version"), el("dd", {}, s.version === undefined ? "—" : String(s.version)),
        el("dt", {}, "uptime"), el("dd", {}, s.uptime_s !== undefined ? fmtDuration(s.uptime_s) : s.uptime !== undefined ? String(s.uptime) : "—"),
        el("dt", {}, "redis"), el("dd", {}, badge(s.redis === undefined ? "—" : s.redis))));
    const jobsCard = el("section", { className: "card", id: "jobs-by-state" }, el("h2", {}, "Jobs"),
      el("div", { className: "counts" }, ["pending", "retrying", "done", "dead"].map((k) =>
        el(k === "dead" ? "a" : "div", { className: "count state-" + k, href: k === "dead" ? "#/dead" : null },
          el("strong", {}, String(jobs[k] === undefined ? 0 : jobs[k])), el("span", {}, k)))));
    const dl1 = s.deliveries_last_hour || s.deliveries || {};
    const delCard = el("section", { className: "card" }, el("h2", {}, "Deliveries, last hour"), dl(dl1));
    const targets = Array.isArray(s.targets) ? s.targets : [];
    const tCard = el("section", { className: "card wide" }, el("h2", {}, "Actions and targets"),
      table(["kind", "name", "last success", "last failure", "last error"], targets.map((t) => el("tr", {},
        el("td", {}, String(t.kind || "")), el("td", {}, String(t.target || t.name || "")),
        el("td", {}, fmtTime(t.last_success || t.last_success_at)),
        el("td", {}, fmtTime(t.last_failure || t.last_failure_at)),
        el("td", { className: "err" }, t.last_error ? String(t.last_error) : "—"))), "No targets configured."));
    append(box, [head, jobsCard, delCard, tCard]);
  }

  function runTitle(d) {
    const ev = d.event && typeof d.event === "object" ? d.event : null;
    const run = d.run && typeof d.run === "object" ? d.run : ev && ev.run;
    const t = d.title !== undefined ? d.title : d.run_title !== undefined ? d.run_title : run ? run.title : null;
    return t === null || t === undefined ? "" : String(t);
  }

  function field(d, k) {
    if (d[k] !== undefined) return d[k];
    return d.event && typeof d.event === "object" ? d.event[k] : undefined;
  }

  function runLink(project, runId) {
    if (runId === null || runId === undefined) return el("span", { className: "muted" }, "—");
    const label = (project === null || project === undefined ? "" : String(project)) + "#" + runId;
    return el("a", { href: "#/runs/" + encodeURIComponent(project === null || project === undefined ? "" : project) + "/" + encodeURIComponent(runId) }, label);
  }

  function liveRow(d) {
    const project = field(d, "project"), runId = field(d, "run_id");
    return el("tr", { className: "delivery", dataset: { id: String(d.id) } },
      el("td", {}, fmtTime(d.received_at || field(d, "received_at"))),
      el("td", {}, String(field(d, "type") || "")),
      el("td", {}, project === null || project === undefined ? "—" : String(project)),
      el("td", {}, runLink(project, runId)),
      el("td", { className: "title" }, runTitle(d)),
      el("td", {}, el("a", { href: "#/deliveries/" + encodeURIComponent(d.id), className: "mono" }, shortId(d.id))));
  }

  function startStream(live, liveState, summaryBox) {
    if (typeof EventSource === "undefined") return;
    const es = new EventSource(API + "/stream");
    state.stream = es;
    let refresh = null;
    const again = () => {
      clearTimeout(refresh);
      refresh = setTimeout(() => renderSummary(summaryBox).catch(() => {}), 500);
    };
    const onDelivery = (data) => {
      const d = data.delivery || data;
      if (!d.id || live.querySelector('tr[data-id="' + CSS.escape(String(d.id)) + '"]')) return;
      live.prepend(liveRow(d));
      while (live.children.length > 50) live.removeChild(live.lastChild);
      again();
    };
    const handle = (kind, ev) => {
      let data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      if (!data || typeof data !== "object") return;
      const k = kind !== "message" ? kind : String(data.kind || data.event || (data.delivery ? "delivery" : data.job ? "job" : ""));
      if (k.startsWith("deliver")) onDelivery(data);
      else if (k.startsWith("job")) again();
    };
    for (const kind of ["message", "delivery", "delivery.accepted", "job", "job.state"])
      es.addEventListener(kind, (ev) => handle(kind, ev));
    es.onopen = () => { liveState.textContent = "live"; liveState.className = "live"; };
    es.onerror = () => { liveState.textContent = "reconnecting…"; liveState.className = "muted"; };
  }

  function stopStream() {
    if (state.stream) state.stream.close();
    state.stream = null;
  }

  /* ---- runs ------------------------------------------------------------- */

  function filterForm(id, fields, values, onsubmit) {
    const inputs = {};
    const form = el("form", { className: "filters", id },
      fields.map(([name, label, type]) => {
        inputs[name] = el("input", { name, id: id + "-" + name, type: type || "text", value: values[name] || "", placeholder: label });
        return el("label", {}, el("span", {}, label), inputs[name]);
      }),
      el("button", { type: "submit" }, "Search"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const v = {};
      for (const [k, i] of Object.entries(inputs)) v[k] = i.value.trim();
      onsubmit(v);
    });
    return form;
  }

  // A list with an "older" button that follows next_cursor.
  async function pagedList(box, path, params, rowFn, headers, empty) {
    const tbody = el("tbody", {});
    const more = el("button", { type: "button", className: "quiet", hidden: true }, "Older…");
    let cursor = null;
    const load = async () => {
      const doc = await api("GET", path + q(Object.assign({}, params, { cursor, limit: 50 })));
      for (const it of items(doc)) tbody.appendChild(rowFn(it));
      cursor = doc && doc.next_cursor;
      more.hidden = !cursor;
      return items(doc).length;
    };
    more.addEventListener("click", () => load().catch((e) => flash(e.message, "error")));
    const n = await load();
    clear(box);
    if (!n) box.appendChild(el("p", { className: "muted empty" }, empty));
    else append(box, [el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))), tbody), more]);
  }

  async function pageRuns(params, view) {
    const box = el("div", { id: "runs" });
    append(view, [el("h1", {}, "Runs"),
      filterForm("run-search", [["project", "project"], ["q", "run id or title"]], params,
        (v) => go("#/runs" + q(v))),
      box]);
    const apiParams = { project: params.project, q: params.q };
    await pagedList(box, "/runs", apiParams, (r) => {
      const targets = Array.isArray(r.targets) ? r.targets : [];
      const last = r.last_event || {};
      return el("tr", { className: "run" },
        el("td", {}, runLink(r.project, r.run_id)),
        el("td", { className: "title" }, runTitle(r)),
        el("td", {}, String(last.type || r.last_type || "")),
        el("td", {}, fmtTime(last.received_at || r.updated_at || r.last_received_at)),
        el("td", {}, targets.map((t) => {
          const name = String(t.kind || "") + (t.name ? " " + t.name : "");
          return el("span", { className: "target" }, remoteLink(t, name) || name, " ", badge(t.state));
        })));
    }, ["run", "title", "last event", "at", "targets"], "No run matches.");
  }

  async function pageRun(project, runId, view) {
    const doc = await api("GET", "/runs/" + encodeURIComponent(project) + "/" + encodeURIComponent(runId));
    const run = doc.run || {};
    const title = run.title === null || run.title === undefined ? "(no title)" : String(run.title);
    append(view, [
      el("p", { className: "crumbs" }, el("a", { href: "#/runs" + q({ project: doc.project }) }, "Runs"), " / ", String(doc.project) + "#" + doc.run_id),
      el("h1", { id: "run-title" }, title),
      el("p", { className: "facts", id: "run-facts" }, runFacts(run).join(" · ")),
      el("div", { className: "grid" },
        el("section", { className: "card" }, el("h2", {}, "Targets"), targetsList(doc.targets || [])),
        doc.results ? el("section", { className: "card" }, el("h2", {}, "Results"), dl(doc.results)) : null),
      el("h2", {}, "Timeline"),
    ]);
    const jobs = Array.isArray(doc.jobs) ? doc.jobs : [];
    const events = (Array.isArray(doc.events) ? doc.events : []).slice()
      .sort((a, b) => String(a.received_at).localeCompare(String(b.received_at)));
    const tl = el("ol", { className: "timeline", id: "timeline" });
    for (const ev of events) {
      const mine = jobs.filter((j) => j.delivery_id === ev.id);
      tl.appendChild(el("li", { className: "event", dataset: { id: String(ev.id) } },
        el("div", { className: "event-head" },
          el("strong", { className: "type" }, String(ev.type)), " ",
          el("span", { className: "muted" }, fmtTime(ev.received_at)), " ",
          el("a", { href: "#/deliveries/" + encodeURIComponent(ev.id), className: "mono" }, shortId(ev.id))),
        mine.length ? el("ul", { className: "jobs" }, mine.map(jobItem)) : el("p", { className: "muted" }, "no actions ran for this event")));
    }
    const orphans = jobs.filter((j) => !events.some((e) => e.id === j.delivery_id));
    if (orphans.length)
      tl.appendChild(el("li", { className: "event" }, el("div", { className: "event-head" }, "other jobs"), el("ul", { className: "jobs" }, orphans.map(jobItem))));
    view.appendChild(events.length || orphans.length ? tl : el("p", { className: "muted" }, "No events stored for this run."));
    view.appendChild(el("section", { className: "card" },
      el("details", {}, el("summary", {}, "Everything the run registry knows"), dl(run))));
  }

  // The run in one line: plan, environment, size, counts, duration.
  function runFacts(run) {
    const out = [];
    const has = (v) => v !== null && v !== undefined;
    if (run.plan && has(run.plan.title)) out.push("plan " + run.plan.title);
    else if (run.plan && has(run.plan.id)) out.push("plan " + run.plan.id);
    if (has(run.environment)) out.push("environment " + run.environment);
    if (has(run.cases_count)) out.push(run.cases_count + " cases");
    for (const [k, v] of Object.entries(run.counts || {})) if (has(v) && k !== "total") out.push(k + " " + v);
    if (typeof run.duration_ms === "number") out.push((run.duration_ms / 1000).toFixed(1) + " s");
    return out.length ? out : ["nothing known about this run yet"];
  }

  // The run's page in a target (the API's "url": run_url, or what the
  // target answered), opened apart from the console: http(s) only, and
  // no opener or referrer for the other site.
  function remoteLink(t, text) {
    const url = safeUrl(t.url);
    return url ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer", className: "remote" }, text) : null;
  }

  function targetsList(targets) {
    if (!targets.length) return el("p", { className: "muted" }, "Not sent to any target.");
    return el("ul", { className: "plain targets" }, targets.map((t) => {
      const id = t.remote_id === null || t.remote_id === undefined ? null : String(t.remote_id);
      return el("li", { className: "target" },
        el("strong", {}, String(t.kind || "") + (t.name ? " " + t.name : "")), " ", badge(t.state), " ",
        remoteLink(t, id ? "remote run " + id : "remote run") ||
          (id ? el("span", { className: "mono remote" }, "remote id " + id) : el("span", { className: "muted" }, "no remote run")));
    }));
  }

  // One job under its event, with its attempts loaded from /jobs/<id>.
  function jobItem(j) {
    const attempts = el("div", { className: "attempts" });
    const li = el("li", { className: "job job-" + cls(j.state), dataset: { id: String(j.id) } },
      el("div", {},
        el("a", { href: "#/jobs/" + encodeURIComponent(j.id) }, "job " + j.id), " ",
        el("span", {}, String(j.rule || "")), " → ",
        el("span", {}, String(j.kind || "") + (j.target ? " " + j.target : "")), " ",
        badge(j.state), " ",
        el("span", { className: "muted" }, (j.attempts || 0) + " attempt" + (j.attempts === 1 ? "" : "s")),
        j.next_attempt_at ? el("span", { className: "muted" }, " next " + fmtTime(j.next_attempt_at)) : null,
        j.state === "dead" ? replayButton(j.id, () => render()) : null),
      j.last_error ? el("div", { className: "err" }, String(j.last_error)) : null,
      attempts);
    api("GET", "/jobs/" + encodeURIComponent(j.id)).then((full) => {
      append(attempts, [attemptsTable(full.attempts || [])]);
    }).catch(() => {});
    return li;
  }

  function attemptsTable(list) {
    if (!list.length) return el("p", { className: "muted small" }, "no attempt recorded yet");
    const a0 = list[0];
    if (list.length === 1 && a0.ok && !a0.detail)
      return el("p", { className: "attempt ok small muted" }, badge("ok"), " finished " + fmtTime(a0.finished_at));
    return el("table", { className: "attempts-table" },
      el("thead", {}, el("tr", {}, ["#", "started", "finished", "outcome", "detail"].map((h) => el("th", {}, h)))),
      el("tbody", {}, list.map((a, i) => el("tr", { className: "attempt " + (a.ok ? "ok" : "failed") },
        el("td", {}, String(i + 1)), el("td", {}, fmtTime(a.started_at)), el("td", {}, fmtTime(a.finished_at)),
        el("td", {}, badge(a.ok ? "ok" : "failed")),
        el("td", {}, el("pre", { className: "detail" }, a.detail === null || a.detail === undefined ? "" : typeof a.detail === "string" ? a.detail : JSON.stringify(a.detail)))))));
  }

  function replayButton(id, after) {
    const b = el("button", { type: "button", className: "replay", dataset: { job: String(id) } }, "Replay");
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        const r = await api("POST", "/jobs/" + encodeURIComponent(id) + "/replay");
        flash("Job " + id + " queued again (" + (r && r.replayed !== undefined ? r.replayed : 1) + ").");
        if (after) after();
      } catch (e) {
        b.disabled = false;
        flash("Replay failed: " + e.message, "error");
      }
    });
    return b;
  }

  /* ---- one job ---------------------------------------------------------- */

  async function pageJob(id, view) {
    const j = await api("GET", "/jobs/" + encodeURIComponent(id));
    const fields = Object.assign({}, j);
    delete fields.attempts;
    append(view, [
      el("p", { className: "crumbs" }, el("a", { href: "#/dead" }, "Dead letters"), " / job " + j.id),
      el("h1", {}, "Job " + j.id, " ", badge(j.state), j.state === "dead" ? replayButton(j.id, () => render()) : null),
      el("div", { className: "grid" }, el("section", { className: "card wide" }, dl(fields))),
      el("h2", {}, "Attempts"), attemptsTable(j.attempts || []),
    ]);
  }

  /* ---- deliveries ------------------------------------------------------- */

  // datetime-local values are local time; the API gets ISO 8601 UTC.
  const isoOf = (v) => { if (!v) return ""; const d = new Date(v); return isNaN(d) ? v : d.toISOString(); };

  async function pageDeliveries(params, view) {
    const box = el("div", { id: "deliveries" });
    append(view, [el("h1", {}, "Deliveries"),
      filterForm("delivery-filter", [["type", "type"], ["project", "project"], ["run_id", "run id"],
        ["since", "since", "datetime-local"], ["until", "until", "datetime-local"]], params,
      (v) => go("#/deliveries" + q(v))),
      box]);
    const apiParams = Object.assign({}, params, { since: isoOf(params.since), until: isoOf(params.until) });
    await pagedList(box, "/deliveries", apiParams, (d) => liveRow(d),
      ["received", "type", "project", "run", "run title", "delivery"], "No delivery matches.");
  }

  async function pageDelivery(id, view) {
    const d = await api("GET", "/deliveries/" + encodeURIComponent(id));
    const ev = d.event && typeof d.event === "object" ? d.event : {};
    append(view, [
      el("p", { className: "crumbs" }, el("a", { href: "#/deliveries" }, "Deliveries"), " / ", shortId(d.id)),
      el("h1", {}, String(ev.type || "delivery"), " ", runLink(ev.project, ev.run_id)),
      el("p", { className: "muted" }, "received " + fmtTime(d.received_at), " · ", el("span", { className: "mono" }, String(d.id))),
      el("div", { className: "side-by-side" },
        el("section", { className: "card" }, el("h2", {}, "Raw, as received"), el("pre", { className: "json", id: "raw" }, rawText(d.raw))),
        el("section", { className: "card" }, el("h2", {}, "Normalized event"), el("pre", { className: "json", id: "normalized" }, pretty(d.event)))),
      el("h2", {}, "Jobs"),
      jobsTable(Array.isArray(d.jobs) ? d.jobs : [], () => render()),
    ]);
  }

  function jobsTable(jobs, after) {
    return table(["job", "rule", "kind", "target", "state", "attempts", "last error", ""], jobs.map((j) =>
      el("tr", { className: "job", dataset: { id: String(j.id) } },
        el("td", {}, el("a", { href: "#/jobs/" + encodeURIComponent(j.id) }, String(j.id))),
        el("td", {}, String(j.rule || "")), el("td", {}, String(j.kind || "")), el("td", {}, String(j.target || "")),
        el("td", {}, badge(j.state)), el("td", {}, String(j.attempts || 0)),
        el("td", { className: "err" }, j.last_error ? String(j.last_error) : ""),
        el("td", {}, j.state === "dead" ? replayButton(j.id, after) : ""))), "No jobs.");
  }

  /* ---- dead letters ----------------------------------------------------- */

  async function pageDead(params, view) {
    const box = el("div", { id: "dead" });
    const filters = { rule: params.rule, kind: params.kind, target: params.target, project: params.project, since: params.since };
    const all = el("button", { type: "button", id: "replay-all", className: "danger" }, "Replay all that match…");
    let armed = false;
    all.addEventListener("click", async () => {
      if (!armed) {
        armed = true;
        all.textContent = "Click again to replay every dead job that matches";
        setTimeout(() => { armed = false; all.textContent = "Replay all that match…"; }, 5000);
        return;
      }
      all.disabled = true;
      try {
        const body = { state: "dead" };
        for (const [k, v] of Object.entries(filters)) if (v) body[k] = k === "since" ? isoOf(v) : v;
        const r = await api("POST", "/replay", body);
        flash("Queued " + (r && r.replayed) + " dead job(s) again.");
        render();
      } catch (e) {
        all.disabled = false;
        flash("Replay failed: " + e.message, "error");
      }
    });
    append(view, [el("h1", {}, "Dead letters"),
      filterForm("dead-filter", [["rule", "rule"], ["kind", "kind"], ["target", "target"], ["project", "project"],
        ["since", "since", "datetime-local"]], params, (v) => go("#/dead" + q(v))),
      el("div", { className: "actions" }, all),
      box]);
    const apiParams = Object.assign({ state: "dead" }, filters, { since: isoOf(filters.since) });
    await pagedList(box, "/jobs", apiParams, (j) => el("tr", { className: "job dead", dataset: { id: String(j.id) } },
      el("td", {}, el("a", { href: "#/jobs/" + encodeURIComponent(j.id) }, String(j.id))),
      el("td", {}, runLink(j.project, j.run_id)),
      el("td", {}, String(j.rule || "")), el("td", {}, String(j.kind || "")), el("td", {}, String(j.target || "")),
      el("td", {}, String(j.attempts || 0)),
      el("td", { className: "err" }, j.last_error ? String(j.last_error) : ""),
      el("td", {}, fmtTime(j.updated_at || j.dead_at || j.created_at)),
      el("td", {}, replayButton(j.id, () => {
        const row = box.querySelector('tr[data-id="' + CSS.escape(String(j.id)) + '"]');
        if (row) row.remove();
        if (!box.querySelector("tbody tr")) clear(box).appendChild(el("p", { className: "muted empty" }, "No dead letters."));
      }))),
    ["job", "run", "rule", "kind", "target", "attempts", "last error", "at", ""], "No dead letters.");
    all.hidden = !box.querySelector("tbody tr");
  }

  /* ---- rules ------------------------------------------------------------ */

  async function pageRules(r, view) {
    const doc = await api("GET", "/rules");
    const rules = items(doc).length ? items(doc) : Array.isArray(doc && doc.rules) ? doc.rules : [];
    const input = el("textarea", { id: "route-input", rows: 12, spellcheck: "false", placeholder: '{"event_name": "run.completed", "project_code": "DEMO", "payload": {"id": 42}}' });
    const out = el("div", { id: "route-output" });
    const form = el("form", { className: "card", id: "route-form" },
      el("h2", {}, "What would run"),
      el("p", { className: "muted" }, "Paste a delivery as Qase sends it. Nothing runs and nothing is stored."),
      input, el("button", { type: "submit" }, "Route it"), out);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clear(out);
      try {
        JSON.parse(input.value);
      } catch (e) {
        out.appendChild(el("p", { className: "error" }, "Not JSON: " + e.message));
        return;
      }
      try {
        const res = await api("POST", "/route", input.value);
        out.appendChild(routeResult(res));
      } catch (e) {
        out.appendChild(el("p", { className: "error" }, e.message));
      }
    });
    append(view, [el("h1", {}, "Rules"),
      el("section", { className: "card" }, table(["rule", "matches", "actions", "matched since start"], rules.map((x) =>
        el("tr", { className: "rule" },
          el("td", {}, el("strong", {}, String(x.name))),
          el("td", {}, el("pre", { className: "inline" }, x.match === undefined ? "" : pretty(x.match))),
          el("td", {}, actionsText(x.actions)),
          el("td", { className: "num" }, String(x.matched !== undefined ? x.matched : x.matches !== undefined ? x.matches : x.match_count !== undefined ? x.match_count : "—")))), "No rules loaded.")),
      form]);
  }

  function actionsText(actions) {
    if (!Array.isArray(actions)) return actions === undefined ? "" : pretty(actions);
    return el("ul", { className: "plain" }, actions.map((a) =>
      el("li", {}, typeof a === "string" ? a : String(a.kind || Object.keys(a)[0] || "") + (a.target || a.name ? " " + (a.target || a.name) : ""))));
  }

  function routeResult(res) {
    const list = Array.isArray(res) ? res : Array.isArray(res && res.jobs) ? res.jobs : Array.isArray(res && res.actions) ? res.actions : null;
    const box = el("div", {});
    if (list) {
      box.appendChild(list.length ? table(["rule", "kind", "target"], list.map((a) => el("tr", { className: "would-run" },
        el("td", {}, String(a.rule || "")), el("td", {}, String(a.kind || "")), el("td", {}, String(a.target || a.name || ""))))) :
        el("p", { className: "muted" }, "No rule matches: nothing would run."));
    }
    box.appendChild(el("pre", { className: "json" }, pretty(res)));
    return box;
  }

  /* ---- start ------------------------------------------------------------ */

  async function boot() {
    document.getElementById("logout").addEventListener("click", logout);
    window.addEventListener("hashchange", render);
    try {
      await loadSession();
    } catch (e) {
      clear(main()).appendChild(el("p", { className: "error" }, "The API does not answer: " + e.message));
      return;
    }
    render();
  }

  document.addEventListener("DOMContentLoaded", boot);
})();
