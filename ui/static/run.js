// The run page: live node states from the event stream (only classes and
// counts change: no re-layout), actions, and the task log.
import { setState } from "./app.js";

export function initRun() {
  const head = document.getElementById("run");
  if (!head) return;
  // the DAG is in the page; the browser test times the frame that shows it
  requestAnimationFrame(() => performance.mark("skiff:dag-drawn"));
  const runID = head.dataset.run;
  const taskIdx = head.dataset.task;
  let timer = null;

  // One refresh at a time, and at most one more queued behind it; the
  // gap grows with what a refresh costs (a 10,000-task run's state is
  // not free), so a busy run's events never pile requests up.
  let busy = false, again = false, gap = 150;
  async function refresh() {
    timer = null;
    if (busy) { again = true; return; }
    busy = true;
    const t0 = performance.now();
    try { await refreshOnce(); } finally {
      busy = false;
      gap = Math.min(5000, Math.max(150, 2 * (performance.now() - t0)));
      if (again) { again = false; soon(); }
    }
  }
  async function refreshOnce() {
    const params = new URLSearchParams(head.dataset.scope || "");
    if (taskIdx) params.set("tasks", taskIdx);
    const q = params.size ? "?" + params : "";
    const res = await fetch(`/runs/${encodeURIComponent(runID)}/state.json${q}`, { credentials: "same-origin" });
    if (!res.ok) return;
    const st = await res.json();
    const badge = document.getElementById("run-state");
    badge.textContent = st.state;
    setState(badge, st.state);
    for (const [idx, n] of Object.entries(st.nodes)) {
      const node = document.querySelector(`#dag [data-node="${idx}"]`);
      if (!node) continue;
      setState(node, n.state);
      const title = node.querySelector("title");
      title.textContent = title.textContent.replace(/: [A-Z]+( ·.*)?$/, ": " + n.state);
      const counts = node.querySelector("[data-counts]");
      if (counts && n.counts) {
        counts.textContent = summary(node, n);
        drawProgress(node.querySelector("g.progress"), n);
        title.textContent += ` · ${n.total} steps` + n.counts.map((c) => ` · ${c.n} ${c.state.toLowerCase()}`).join("");
      }
    }
    const tb = document.getElementById("task-state");
    if (tb && st.tasks && st.tasks[taskIdx]) { tb.textContent = st.tasks[taskIdx]; setState(tb, st.tasks[taskIdx]); }
    if (st.panel) updatePanel(st.panel);
    if (st.final) {
      document.querySelector('[data-action="terminate"]')?.remove();
      head.dataset.final = "true";
    }
  }
  const soon = () => { if (!timer) timer = setTimeout(refresh, gap); };

  const es = new EventSource(`/_api/apis/skiff/v1/events?run_id=${encodeURIComponent(runID)}`);
  es.addEventListener("change", soon);
  es.addEventListener("open", soon); // catch up after a reconnect

  for (const btn of document.querySelectorAll("[data-action]")) {
    btn.addEventListener("click", async () => {
      const verb = btn.dataset.action;
      if (verb === "terminate" && !confirm("Cancel this run? Running steps are stopped.")) return;
      const msg = document.querySelector(".action-msg");
      btn.disabled = true;
      const res = await fetch(`/_api/apis/v2beta1/runs/${encodeURIComponent(runID)}:${verb}`, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: "{}",
      });
      if (res.ok) {
        msg.textContent = verb === "retry" ? "Retrying…" : "Cancelling…";
        if (verb === "retry") location.reload();
      } else {
        let text = `failed (${res.status})`;
        try { text = (await res.json()).message || text; } catch { /* not JSON */ }
        msg.textContent = text;
        btn.disabled = false;
      }
    });
  }
  log = initLog();
}

let log = null;

// updatePanel refreshes the open task panel: its error, why it waits,
// its attempts (the log starts following a new attempt).
function updatePanel(p) {
  const err = document.getElementById("task-error");
  if (err) { err.textContent = p.error || ""; err.hidden = !p.error; }
  const wait = document.getElementById("task-waiting");
  if (wait) { wait.querySelector("span").textContent = p.waiting || ""; wait.hidden = !p.waiting; }
  const rows = document.getElementById("attempt-rows");
  if (rows) {
    rows.replaceChildren(...p.attempts.map((a) => {
      const tr = document.createElement("tr");
      const cell = (text, cls) => { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; };
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = a.state;
      setState(badge, a.state);
      const st = document.createElement("td");
      st.append(badge);
      tr.append(cell(String(a.n)), st, cell(a.executor), cell(a.took, "num"), cell(a.reason, "reason"));
      return tr;
    }));
    document.getElementById("attempts").hidden = p.attempts.length === 0;
  }
  log?.attempts(p.attempts.length, p.state);
}

// initLog streams the task's log into <pre id=log> (following it while
// the task runs) and filters it by the search box.
function initLog() {
  const pre = document.getElementById("log");
  if (!pre) return null;
  const search = document.getElementById("log-search");
  const status = document.getElementById("log-status");
  let text = "";
  const maxChars = 2 << 20;

  function render() {
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 24;
    const q = search.value;
    pre.replaceChildren();
    if (!q) {
      pre.textContent = text;
    } else {
      const frag = document.createDocumentFragment();
      let shown = 0;
      for (const line of text.split("\n")) {
        const i = line.toLowerCase().indexOf(q.toLowerCase());
        if (i < 0) continue;
        shown++;
        frag.append(line.slice(0, i));
        const m = document.createElement("mark");
        m.textContent = line.slice(i, i + q.length);
        frag.append(m, line.slice(i + q.length) + "\n");
      }
      pre.append(frag);
      status.textContent = `${shown} matching lines`;
    }
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }
  search.addEventListener("input", render);

  let streamed = 0; // the attempt being (or last) streamed
  let busy = false;
  async function stream(attempt, follow) {
    busy = true;
    streamed = attempt;
    if (text) text += `\n── attempt ${attempt} ──\n`;
    const q = `?attempt=${attempt}` + (follow ? "&follow=true" : "");
    const res = await fetch(pre.dataset.src + q, { credentials: "same-origin" });
    if (!res.ok) {
      let msg = `no log (${res.status})`;
      try { msg = (await res.json()).message || msg; } catch { /* not JSON */ }
      status.textContent = msg;
      return;
    }
    status.textContent = follow ? "following" : "";
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
      if (text.length > maxChars) text = text.slice(text.length - maxChars);
      render();
    }
    status.textContent = text ? "" : "empty";
    render();
  }
  let latest = { n: 0, live: false };
  const run = (attempt, follow) => stream(attempt, follow)
    .catch((e) => { status.textContent = String(e); })
    .finally(() => {
      busy = false;
      if (latest.n > streamed) run(latest.n, latest.live);
    });
  const first = Number(pre.dataset.attempts || 0);
  if (first > 0) run(first, pre.dataset.follow === "true");
  else status.textContent = "waiting for the task to start";
  return {
    // attempts is told the task's attempt count as it changes: a new
    // attempt's log is followed once the previous stream has ended.
    attempts(n, state) {
      latest = { n, live: !["SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"].includes(state) };
      if (n > streamed && !busy) run(n, latest.live);
    },
  };
}

// summary is a group node's line, as the server writes it (nodeSummary).
function summary(node, n) {
  const words = { SUCCEEDED: "done", PENDING: "waiting" };
  const first = n.counts[0];
  const loop = node.classList.contains("kind-loop") ? "↻ " : "";
  return loop + `${n.total} steps` + (first ? ` · ${first.n} ${words[first.state] || first.state.toLowerCase()}` : "");
}

// drawProgress redraws a group node's progress bar from its counts.
function drawProgress(g, n) {
  if (!g || !n.total) return;
  const left = 16, right = 12;
  const width = Number(g.dataset.w) - left - right;
  let x = Number(g.dataset.x) + left;
  const y = Number(g.dataset.y) + Number(g.dataset.h) - 5;
  g.replaceChildren(...n.counts.map((c) => {
    const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    const w = width * c.n / n.total;
    r.setAttribute("class", "st-" + c.state.toLowerCase());
    r.setAttribute("x", x.toFixed(1)); r.setAttribute("y", y);
    r.setAttribute("width", w.toFixed(1)); r.setAttribute("height", 3);
    x += w;
    return r;
  }));
}
