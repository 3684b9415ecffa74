// The script of `flow serve`'s pages. It follows the JSON API (server-sent
// events) to keep the pages current, and sends the actions with the token.
// Everything from a run is put in the page as text (textContent), never as
// HTML.
"use strict";

(function () {
  const TOKEN_KEY = "flow-token";
  const ENDED = ["succeeded", "reverted", "failed"];
  const LOG_PAGE = 64 * 1024;
  const LOG_KEEP = 2 * 1024 * 1024;

  // A token given in the address (`http://HOST/#token=T`, as `flow serve`
  // prints it) is kept, and taken out of the address.
  if (location.hash.startsWith("#token=")) {
    localStorage.setItem(TOKEN_KEY, decodeURIComponent(location.hash.slice(7)));
    history.replaceState(null, "", location.pathname + location.search);
  }
  const token = () => localStorage.getItem(TOKEN_KEY);
  const $ = (id) => document.getElementById(id);

  function showAuth() {
    const a = $("auth");
    if (a) a.textContent = token() ? "signed in" : "signed out: actions need the token";
  }

  async function post(url, body) {
    const headers = { "Content-Type": "application/json" };
    const t = token();
    if (t) headers.Authorization = "Bearer " + t;
    const r = await fetch(url, { method: "POST", headers, body: JSON.stringify(body || {}) });
    let data = null;
    try {
      data = await r.json();
    } catch (e) {
      data = null;
    }
    return { ok: r.ok, status: r.status, data };
  }

  function errorText(res) {
    if (res.data && res.data.error) return res.data.error.message;
    return "the server answered " + res.status;
  }

  function ms(v) {
    if (v === null || v === undefined) return "";
    return v < 1000 ? v + " ms" : (v / 1000).toFixed(1) + " s";
  }

  function setBadge(span, state) {
    span.className = "badge st-" + state;
    span.textContent = state;
  }

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  // ---------------------------------------------------------------- runs
  function runsPage() {
    const tbody = $("runs");
    const es = new EventSource("/api/runs/events" + location.search);
    es.addEventListener("runs", (e) => {
      const runs = JSON.parse(e.data);
      const rows = runs.map((r) => {
        const tr = document.createElement("tr");
        tr.dataset.run = r.id;
        const link = document.createElement("a");
        link.href = "/runs/" + r.id;
        link.textContent = r.id.slice(0, 8);
        const first = document.createElement("td");
        first.appendChild(link);
        const st = document.createElement("td");
        const badge = document.createElement("span");
        badge.dataset.field = "state";
        setBadge(badge, r.state);
        st.appendChild(badge);
        tr.append(first, cell(r.flow), st, cell(r.created_at), cell(ms(r.duration_ms)), cell(r.owner || ""));
        return tr;
      });
      tbody.replaceChildren(...rows);
      const none = $("no-runs");
      if (none) none.hidden = runs.length > 0;
    });
  }

  // ----------------------------------------------------------------- run
  function runPage(run) {
    const nodes = new Map();
    document.querySelectorAll("#graph g.node").forEach((g) => nodes.set(g.dataset.step, g));
    const rows = new Map();
    document.querySelectorAll("#steps tr.step").forEach((tr) => rows.set(tr.dataset.step, tr));
    const tails = new Map();
    document.querySelectorAll("#steps tr.tail").forEach((tr) => tails.set(tr.dataset.tail, tr));
    let view = null;

    function field(tr, name) {
      return tr.querySelector('[data-field="' + name + '"]');
    }

    function update(v) {
      view = v;
      setBadge($("run-state").querySelector("span"), v.state);
      $("run-duration").textContent = ms(v.duration_ms);
      $("run-owner").textContent = v.owner || "";
      const ended = ENDED.includes(v.state);
      $("cancel").disabled = ended;
      $("resume").disabled = ended || (v.state === "running" && v.held);
      for (const s of v.steps) {
        const g = nodes.get(s.name);
        if (g) {
          // A step that failed stays red once reverted.
          const failed = s.error !== null && (s.state === "reverted" || s.state === "reverting");
          g.setAttribute("class", "node st-" + (failed ? "failed" : s.state));
          g.querySelector("text.sub").textContent = failed
            ? "failed, " + s.state
            : s.state + (s.duration_ms !== null ? " · " + ms(s.duration_ms) : "");
        }
        const tr = rows.get(s.name);
        if (tr) {
          setBadge(field(tr, "state"), s.state);
          field(tr, "attempts").textContent = s.attempts;
          field(tr, "started").textContent = s.started_at || "";
          field(tr, "duration").textContent = ms(s.duration_ms);
          field(tr, "exit").textContent =
            s.exit_code !== null ? s.exit_code : s.signal !== null ? "signal " + s.signal : "";
          field(tr, "error").textContent = s.error || "";
          field(tr, "undo").textContent = s.undo
            ? "exit " + (s.undo.exit_code === null ? "?" : s.undo.exit_code) + " in " + ms(s.undo.duration_ms)
            : "";
        }
        const tail = tails.get(s.name);
        if (tail) {
          field(tail, "stdout").textContent = s.stdout_tail || "";
          field(tail, "stderr").textContent = s.stderr_tail || "";
        }
      }
      document.body.dataset.state = v.state;
    }

    const es = new EventSource("/api/runs/" + encodeURIComponent(run) + "/events");
    es.addEventListener("run", (e) => {
      const v = JSON.parse(e.data);
      update(v);
      if (ENDED.includes(v.state)) es.close();
    });

    // The time of running steps goes on between events.
    setInterval(() => {
      if (!view) return;
      for (const s of view.steps) {
        if (s.state !== "running" || !s.started_at) continue;
        const took = Math.max(0, Date.now() - Date.parse(s.started_at));
        const tr = rows.get(s.name);
        if (tr) field(tr, "duration").textContent = ms(took);
      }
    }, 1000);

    document.querySelectorAll("button[data-action]").forEach((b) => {
      b.addEventListener("click", async () => {
        const out = $("action-result");
        if (!token()) {
          out.textContent = "sign in first: actions need the token";
          return;
        }
        b.disabled = true;
        const res = await post("/api/runs/" + encodeURIComponent(run) + "/" + b.dataset.action);
        b.disabled = false;
        if (!res.ok) {
          out.textContent = errorText(res);
          return;
        }
        if (b.dataset.action === "rerun" || b.dataset.action === "resume") {
          location.href = res.data.url;
        } else {
          out.textContent = "cancel: " + res.data.cancel;
        }
      });
    });

    logViewer(run, () => view);
  }

  // The full log of a step: its last part, earlier parts on request, and
  // what it writes next while it runs (streamed, the page keeps 2 MiB).
  function logViewer(run, currentView) {
    const section = $("log");
    const text = $("log-text");
    const range = $("log-range");
    let step = null;
    let start = 0;
    let reading = null;

    function url(extra) {
      const stream = $("log-stream").value;
      return "/api/runs/" + encodeURIComponent(run) + "/steps/" + encodeURIComponent(step) +
        "/log?stream=" + stream + extra;
    }

    async function open(name) {
      if (reading) reading.abort();
      step = name;
      section.hidden = false;
      $("log-step").textContent = name;
      const r = await fetch(url("&tail=" + LOG_PAGE));
      if (!r.ok) {
        let msg = "no log";
        try {
          msg = (await r.json()).error.message;
        } catch (e) {
          msg = "no log";
        }
        text.textContent = msg;
        range.textContent = "";
        return;
      }
      text.textContent = await r.text();
      start = Number(r.headers.get("x-log-start"));
      const end = Number(r.headers.get("x-log-end"));
      range.textContent = "bytes " + start + "–" + end + " of " + r.headers.get("x-log-size");
      $("log-earlier").hidden = start === 0;
      const v = currentView();
      const s = v && v.steps.find((x) => x.name === name);
      if (s && (s.state === "running" || s.state === "pending" || s.state === "waiting")) follow(end);
    }

    async function follow(from) {
      reading = new AbortController();
      try {
        const r = await fetch(url("&follow=true&offset=" + from), { signal: reading.signal });
        const reader = r.body.getReader();
        const decoder = new TextDecoder();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          let t = text.textContent + decoder.decode(value, { stream: true });
          if (t.length > LOG_KEEP) t = t.slice(t.length - LOG_KEEP);
          text.textContent = t;
        }
      } catch (e) {
        // Stopped: another log was opened.
      }
    }

    $("log-earlier").addEventListener("click", async () => {
      const from = Math.max(0, start - LOG_PAGE);
      const r = await fetch(url("&offset=" + from + "&limit=" + (start - from)));
      if (!r.ok) return;
      text.textContent = (await r.text()) + text.textContent;
      start = from;
      $("log-earlier").hidden = start === 0;
    });
    $("log-stream").addEventListener("change", () => step && open(step));
    document.querySelectorAll("button.log-open").forEach((b) => {
      b.addEventListener("click", () => open(b.dataset.log));
    });
  }

  // --------------------------------------------------------------- start
  // Checked here for the person filling it in; the server checks again and
  // has the last word.
  function check(fieldDiv, value) {
    const type = fieldDiv.dataset.type;
    const required = fieldDiv.dataset.required === "true";
    if (value === "") return required ? "required" : null;
    if (type === "int" && !/^[+-]?\d+$/.test(value.trim())) return "must be an integer";
    if (type === "float" && !Number.isFinite(Number(value.trim()))) return "must be a number";
    if (type === "bool" && value !== "true" && value !== "false") return "must be true or false";
    return null;
  }

  function startPage(pipeline) {
    const form = $("start");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const params = {};
      let bad = false;
      const fields = new Map();
      form.querySelectorAll(".field").forEach((div) => {
        const name = div.dataset.param;
        fields.set(name, div);
        const input = div.querySelector("input, select");
        const problem = check(div, input.value);
        div.querySelector(".field-error").textContent = problem || "";
        div.classList.toggle("invalid", problem !== null);
        if (problem) bad = true;
        else if (input.value !== "") params[name] = input.value;
      });
      const out = $("form-error");
      out.textContent = "";
      if (bad) {
        out.textContent = "Some values do not fit their parameters.";
        return;
      }
      if (!token()) {
        out.textContent = "Sign in first: starting a run needs the token.";
        return;
      }
      const res = await post("/api/pipelines/" + encodeURIComponent(pipeline) + "/runs", { params });
      if (res.ok) {
        location.href = res.data.url;
        return;
      }
      out.textContent = errorText(res);
      const problems = (res.data && res.data.error && res.data.error.problems) || [];
      for (const p of problems) {
        const div = p.param && fields.get(p.param);
        if (div) {
          div.querySelector(".field-error").textContent = p.message;
          div.classList.add("invalid");
        }
      }
    });
  }

  // --------------------------------------------------------------- login
  function loginPage() {
    $("login").addEventListener("submit", async (e) => {
      e.preventDefault();
      const t = $("token").value.trim();
      const r = await fetch("/api/session", { method: "POST", headers: { Authorization: "Bearer " + t } });
      if (r.ok) {
        localStorage.setItem(TOKEN_KEY, t);
        $("login-result").textContent = "Signed in.";
      } else {
        let msg = "refused";
        try {
          msg = (await r.json()).error.message;
        } catch (err) {
          msg = "refused";
        }
        $("login-result").textContent = msg;
      }
      showAuth();
    });
    $("logout").addEventListener("click", () => {
      localStorage.removeItem(TOKEN_KEY);
      $("login-result").textContent = "Signed out.";
      showAuth();
    });
  }

  showAuth();
  const page = document.body.dataset.page;
  if (page === "runs") runsPage();
  else if (page === "run") runPage(document.body.dataset.run);
  else if (page === "start") startPage(document.body.dataset.pipeline);
  else if (page === "login") loginPage();
})();
