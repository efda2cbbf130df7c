// ferryman dashboard: live run pages and log following. Pages are complete without this file;
// it only keeps them up to date. No inline script anywhere (Content-Security-Policy).
"use strict";

function replaceParts(parts) {
  for (const [id, html] of Object.entries(parts)) {
    const el = document.getElementById(id);
    const tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    const fresh = tpl.content.firstElementChild;
    if (!fresh) continue;
    if (el) {
      // Keep open <details> open across updates.
      const open = new Set(Array.from(el.querySelectorAll("details[open]"), (d) => d.closest("[id]")?.id));
      el.replaceWith(fresh);
      fresh.querySelectorAll("details").forEach((d) => { if (open.has(d.closest("[id]")?.id)) d.open = true; });
    } else if (id.startsWith("step-")) {
      document.getElementById("steps")?.appendChild(fresh);
    }
  }
}

function followRun(root) {
  const id = root.dataset.run;
  const next = root.dataset.next || "0";
  const source = new EventSource(`/runs/${encodeURIComponent(id)}/events?start=${next}`);
  const apply = (ev) => {
    const data = JSON.parse(ev.data);
    replaceParts(data.parts || {});
    root.dataset.status = data.status;
    if (ev.lastEventId) root.dataset.next = ev.lastEventId;
  };
  source.addEventListener("parts", apply);
  source.addEventListener("end", (ev) => { apply(ev); source.close(); root.dataset.finished = "yes"; });
}

function followLogs(button) {
  const pre = document.getElementById("log-lines");
  let source = null;
  button.addEventListener("click", () => {
    if (source) {
      source.close(); source = null;
      button.textContent = "Follow"; button.setAttribute("aria-pressed", "false");
      return;
    }
    const q = new URLSearchParams({ env: button.dataset.env, service: button.dataset.service });
    source = new EventSource(`/logs/stream?${q}`);
    button.textContent = "Stop following"; button.setAttribute("aria-pressed", "true");
    source.onmessage = (ev) => {
      const d = JSON.parse(ev.data);
      const span = document.createElement("span");
      span.className = d.stream;
      span.textContent = d.line + "\n";
      pre.appendChild(span);
      pre.scrollTop = pre.scrollHeight;
    };
    source.addEventListener("end", () => { source.close(); source = null; button.textContent = "Follow"; });
  });
}

function guardConfirm(form) {
  // The server checks the typed names; this only keeps the button honest.
  const inputs = Array.from(form.querySelectorAll("[data-expect]"));
  const go = form.querySelector("button[type=submit]");
  if (!inputs.length || !go) return;
  const sync = () => { go.disabled = inputs.some((i) => i.value.trim() !== i.dataset.expect); };
  inputs.forEach((i) => i.addEventListener("input", sync));
  sync();
}

document.addEventListener("DOMContentLoaded", () => {
  const run = document.getElementById("run");
  if (run && run.dataset.finished !== "yes") followRun(run);
  const follow = document.getElementById("follow");
  if (follow) followLogs(follow);
  const act = document.getElementById("act-form");
  if (act) guardConfirm(act);
});
