// Lyre's page, enhanced: live progress (server-sent events, else polling), the chapter player,
// voice samples and confirmations. Without it every page still works as plain forms and links.

const FINAL = new Set(["succeeded", "failed", "cancelled"]);
const POLL_MS = 2000;

function announce(text) {
  const region = document.getElementById("announce");
  if (region) region.textContent = text;
}

function setProgress(bar, done, total, label) {
  if (!bar) return;
  bar.max = Math.max(total, 1);
  bar.value = done;
  bar.setAttribute("aria-label", `${label}: ${done} of ${total} parts made`);
}

// One job's snapshot onto every element showing it; true when the page should be reloaded to
// show what has just been made (its player and files).
function show(job) {
  let reload = false;
  for (const el of document.querySelectorAll(`[data-job="${job.id}"]`)) {
    const status = el.querySelector("[data-status]");
    if (status && status.textContent !== job.status) {
      const title = el.querySelector("a, h1")?.textContent ?? "The job";
      if (status.textContent) announce(`${title.trim()}: ${job.status}`);
      status.textContent = job.status;
    }
    setProgress(el.querySelector("[data-overall]"), job.done, job.total, "All chapters");
    for (const c of job.chapters) {
      const row = el.querySelector(`[data-chapter="${c.number}"]`);
      if (!row) continue;
      row.dataset.state = c.status;
      setProgress(row.querySelector("progress"), c.done, c.total, `Chapter ${c.number}`);
      const state = row.querySelector("[data-state-text]");
      if (state) state.textContent = c.status === "done" ? "done" : `${c.done} of ${c.total}`;
    }
    if ("files" in el.dataset && FINAL.has(job.status)) {
      reload ||= String(job.files) !== el.dataset.files || String(job.version) !== el.dataset.version;
    }
  }
  return reload;
}

function apply(payload) {
  let reload = false;
  for (const job of payload.jobs) reload = show(job) || reload;
  if (reload) setTimeout(() => location.reload(), 600); // after the announcement is read
  return payload.jobs.every((job) => FINAL.has(job.status));
}

function poll(url) {
  const tick = async () => {
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (response.ok && apply(await response.json())) return;
    } catch (error) { /* the next tick tries again */ }
    setTimeout(tick, POLL_MS);
  };
  tick();
}

function follow(el) {
  const { live, poll: pollUrl } = el.dataset;
  if (!("EventSource" in window)) return poll(pollUrl);
  const source = new EventSource(live);
  let heard = false;
  source.addEventListener("progress", (event) => { heard = true; apply(JSON.parse(event.data)); });
  source.addEventListener("end", () => source.close());
  source.addEventListener("error", () => {
    if (!heard) { source.close(); poll(pollUrl); } // never got through: a proxy in the way
  });
}

function player() {
  const audio = document.getElementById("player");
  if (!audio) return;
  const buttons = [...document.querySelectorAll("[data-play]")];
  const nowPlaying = document.getElementById("now-playing");
  const play = (button, start) => {
    buttons.forEach((b) => b.removeAttribute("aria-current"));
    button.setAttribute("aria-current", "true");
    nowPlaying.textContent = button.dataset.title;
    if (audio.getAttribute("src") !== button.dataset.play) audio.src = button.dataset.play;
    if (start) audio.play().catch(() => {});
  };
  buttons.forEach((b) => b.addEventListener("click", () => play(b, true)));
  audio.addEventListener("ended", () => {
    const next = buttons[buttons.findIndex((b) => b.getAttribute("aria-current")) + 1];
    if (next) play(next, true);
  });
}

function samples() {
  const link = document.getElementById("listen");
  const voice = document.getElementById("voice");
  const audio = document.getElementById("sample");
  if (!link || !voice || !audio) return;
  const url = () => `${link.dataset.sample}${encodeURIComponent(voice.value)}/sample`;
  voice.addEventListener("change", () => { link.href = url(); });
  link.addEventListener("click", (event) => {
    event.preventDefault();
    announce(`Playing a sample of ${voice.value}`);
    audio.src = url();
    audio.play().catch(() => announce("The sample could not be played"));
  });
}

// A file over the farm's limit is refused here, before it is sent, with the form as it is; the
// server refuses it too, where this script does not run.
function uploadLimit() {
  const input = document.getElementById("file");
  const problem = document.getElementById("file-problem");
  if (!input || !problem) return;
  const limit = Number(input.dataset.maxBytes);
  const tooBig = () => input.files.length > 0 && input.files[0].size > limit;
  const check = () => {
    problem.hidden = !tooBig();
    problem.textContent = tooBig()
      ? `${input.files[0].name} is larger than this farm accepts (${(limit / 1048576).toFixed(1)} MB).`
      : "";
    input.setAttribute("aria-invalid", String(tooBig()));
  };
  input.addEventListener("change", check);
  input.form.addEventListener("submit", (event) => {
    check();
    if (tooBig()) { event.preventDefault(); input.focus(); }
  });
}

function confirmations() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

// Follow only what may still change: a list or a job with something queued or running.
for (const el of document.querySelectorAll("[data-live]")) {
  const states = [...el.querySelectorAll("[data-status]")].map((s) => s.textContent.trim());
  if (states.some((state) => !FINAL.has(state))) follow(el);
}
player();
samples();
uploadLimit();
confirmations();
document.getElementById("error")?.focus(); // a refused form: its reason is read first
