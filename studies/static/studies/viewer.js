// The comparison viewer: shows a trial pixel for pixel, takes the choice by key
// or button, and keeps every vote in the browser until the server has it.
//
// Talks only to the rater API (docs/api.md) with the session's bearer token.

const root = document.getElementById("viewer");
const token = root.dataset.session;
const nextUrl = root.dataset.nextUrl;
const voteUrlTemplate = root.dataset.voteUrl;
const allowTies = root.dataset.allowTies === "1";
const statusLine = root.querySelector("[data-status]");
const progressBar = root.querySelector(".progress > div");
const buttons = [...root.querySelectorAll("[data-choice]")];
const queueKey = `codec-arena:votes:${token}`;

// Retry delays for an unreachable server, in ms (then the last one repeats).
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000];

let trial = null;
let shownAt = 0;
let accepting = false;
let flips = 0;

function headers() {
  return { "Authorization": `Bearer ${token}`, "Content-Type": "application/json" };
}

function setStatus(text) {
  statusLine.textContent = text;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// --- The vote queue (localStorage): a vote leaves it only when the server acknowledges it.

function loadQueue() {
  try {
    return JSON.parse(localStorage.getItem(queueKey) || "[]");
  } catch {
    return [];
  }
}

function saveQueue(queue) {
  localStorage.setItem(queueKey, JSON.stringify(queue));
}

function uuid4() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

async function flushQueue() {
  let attempt = 0;
  for (;;) {
    const queue = loadQueue();
    if (queue.length === 0) return;
    const item = queue[0];
    let response = null;
    try {
      response = await fetch(voteUrlTemplate.replace("00000000-0000-0000-0000-000000000000", item.trial), {
        method: "POST", headers: headers(), body: JSON.stringify(item.body),
      });
    } catch {
      response = null; // offline or server unreachable: keep the vote, retry
    }
    if (response && (response.ok || response.status === 409 || response.status === 400 || response.status === 403)) {
      // Stored (201/200), or refused for good: either way this vote is done.
      if (!response.ok) console.warn("vote refused", response.status, await response.text());
      saveQueue(loadQueue().filter((v) => v.body.client_vote_id !== item.body.client_vote_id));
      attempt = 0;
      continue;
    }
    const delay = RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)];
    attempt += 1;
    setStatus("Connection problem — your answer is kept and will be sent when the connection is back.");
    await sleep(delay);
  }
}

// --- Showing a trial at one image pixel per device pixel.

function place(panel, img, t) {
  const dpr = window.devicePixelRatio || 1;
  const frame = root.querySelector(`[data-panel="${panel}"]`);
  frame.style.width = `${t.crop.width / dpr}px`;
  frame.style.height = `${t.crop.height / dpr}px`;
  img.style.width = `${t.size.width / dpr}px`;
  img.style.height = `${t.size.height / dpr}px`;
  img.style.left = `${-t.crop.x / dpr}px`;
  img.style.top = `${-t.crop.y / dpr}px`;
}

async function loadImage(url) {
  const img = new Image();
  img.decoding = "async";
  img.src = url;
  await img.decode();
  return img;
}

async function fetchNext() {
  let attempt = 0;
  for (;;) {
    try {
      const response = await fetch(nextUrl, { headers: headers(), cache: "no-store" });
      if (response.ok) return await response.json();
      const body = await response.json().catch(() => ({}));
      setStatus(body.error || `The server answered ${response.status}.`);
      if (response.status < 500) return null;
    } catch {
      setStatus("Connection problem — retrying…");
    }
    await sleep(RETRY_DELAYS_MS[Math.min(attempt++, RETRY_DELAYS_MS.length - 1)]);
  }
}

async function showNext() {
  accepting = false;
  buttons.forEach((b) => { b.disabled = true; });
  await flushQueue();
  const data = await fetchNext();
  if (data === null) return;
  if (data.finished) {
    setStatus("All answers saved. Thank you!");
    progressBar.style.width = "100%";
    window.location.assign(data.completion_url);
    return;
  }
  root.dataset.state = "loading";
  const imgs = await Promise.all(
    ["reference", "left", "right"].map((name) => loadImage(data.images[name])),
  );
  ["reference", "left", "right"].forEach((name, i) => {
    const slot = root.querySelector(`[data-image="${name}"]`);
    slot.src = imgs[i].src;
    place(name, slot, data);
  });
  trial = data;
  flips = 0;
  progressBar.style.width = `${(100 * data.progress.done) / data.progress.total}%`;
  root.dataset.state = "ready";
  root.dataset.trial = data.trial;
  setStatus(`Pair ${data.progress.done + 1} of ${data.progress.total}`);
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  shownAt = performance.now();
  setTimeout(() => {
    if (trial === data) {
      accepting = true;
      buttons.forEach((b) => { b.disabled = false; });
    }
  }, data.min_view_ms);
}

function choose(choice) {
  if (!accepting || trial === null) return;
  if (choice === "tie" && !allowTies) return;
  accepting = false;
  const queue = loadQueue();
  queue.push({
    trial: trial.trial,
    body: {
      choice,
      client_vote_id: uuid4(),
      response_ms: Math.round(performance.now() - shownAt),
      flips,
    },
  });
  saveQueue(queue);
  trial = null;
  showNext();
}

const KEYS = { ArrowLeft: "left", "1": "left", ArrowRight: "right", "2": "right", ArrowDown: "tie", "0": "tie" };

document.addEventListener("keydown", (event) => {
  const choice = KEYS[event.key];
  if (choice) {
    event.preventDefault();
    choose(choice);
  }
});
buttons.forEach((button) => button.addEventListener("click", () => choose(button.dataset.choice)));
window.addEventListener("online", () => flushQueue());

showNext();
