// Skiff UI: small progressive enhancements over server-rendered pages.
// Every piece of user content is written with textContent, never as HTML.
import { initRun } from "./run.js";

const page = document.body.dataset.page;

// Relative times ("3 min ago") stay fresh.
function relative(iso) {
  const t = Date.parse(iso);
  if (isNaN(t)) return "";
  const s = (Date.now() - t) / 1000;
  if (s < 10) return "just now";
  if (s < 60) return `${Math.floor(s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 60 * 86400) return `${Math.floor(s / 86400)} days ago`;
  return new Date(t).toISOString().slice(0, 10);
}
function refreshTimes() {
  for (const el of document.querySelectorAll("time[datetime]")) {
    if (el.dateTime) el.textContent = relative(el.dateTime);
  }
}
setInterval(refreshTimes, 30000);

export function setState(el, state) {
  for (const c of [...el.classList]) if (c.startsWith("st-")) el.classList.remove(c);
  el.classList.add("st-" + state.toLowerCase());
}

function initRuns() {
  const compare = document.getElementById("compare");
  const max = Number(compare?.dataset.max || 20);
  const boxes = () => [...document.querySelectorAll("table.runs input[type=checkbox]:checked")];
  document.addEventListener("change", (e) => {
    if (!e.target.matches("table.runs input[type=checkbox]")) return;
    const ids = boxes().map((b) => b.value);
    if (ids.length > max) { e.target.checked = false; return; }
    compare.href = "/compare?runs=" + ids.map(encodeURIComponent).join(",");
    compare.setAttribute("aria-disabled", ids.length < 2 ? "true" : "false");
    compare.textContent = ids.length ? `Compare ${ids.length}` : "Compare";
  });
  // Live states: the event stream says which run changed.
  const es = new EventSource("/_api/apis/skiff/v1/events");
  es.addEventListener("change", (msg) => {
    const ev = JSON.parse(msg.data);
    if (ev.task) return;
    const row = document.querySelector(`tr[data-run="${CSS.escape(ev.run_id)}"]`);
    const badge = row?.querySelector("[data-state]");
    if (badge) { badge.textContent = ev.state; setState(badge, ev.state); }
  });
}

// The cluster page refreshes its numbers from the same handler, as JSON.
function initCluster() {
  const roleClass = { leader: "succeeded", follower: "running", unreachable: "failed" };
  const set = (root, field, text) => {
    const el = root?.querySelector(`[data-field="${field}"]`);
    if (el) el.textContent = String(text);
    return el;
  };
  async function refresh() {
    let d;
    try {
      const res = await fetch("/cluster", { headers: { Accept: "application/json" } });
      if (!res.ok) return;
      d = await res.json();
    } catch { return; }
    const sum = document.getElementById("cluster-summary");
    set(sum, "leader", d.Leader || "none known");
    set(sum, "term", d.Term);
    for (const m of d.Members || []) {
      const row = document.querySelector(`tr[data-node="${CSS.escape(m.ID)}"]`);
      if (!row) continue;
      const badge = set(row, "role", m.Role);
      if (badge) setState(badge, roleClass[m.Role] || "pending");
      set(row, "commit", m.Commit);
      set(row, "applied", m.Applied);
      set(row, "behind", m.Behind);
    }
    for (const c of d.Runs || []) {
      const chip = document.querySelector(`#run-states [data-state="${CSS.escape(c.State)}"] b`);
      if (chip) chip.textContent = String(c.N);
    }
  }
  setInterval(refresh, 3000);
}

if (page === "runs") initRuns();
if (page === "cluster") initCluster();
if (page === "run") initRun();
