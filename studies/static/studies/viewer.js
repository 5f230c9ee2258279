// The comparison viewer. Shows each trial at one image pixel per device pixel,
// in the study's display mode; takes the choice by key or button once the
// minimum viewing time and flips are met; keeps every vote in the browser
// (localStorage) until the server acknowledges it; loads the images of the
// trial issued ahead while the rater judges, and shows it as soon as a vote
// is made.
//
// Talks only to the rater API (docs/api.md) with the session's bearer token.

const root = document.getElementById("viewer");
const token = root.dataset.session;
const nextUrl = root.dataset.nextUrl;
const voteUrlTemplate = root.dataset.voteUrl;
const allowTies = root.dataset.allowTies === "1";
const pauseEvery = Number(root.dataset.pauseEvery || 0);
const statusLine = root.querySelector("[data-status]");
const progressBar = root.querySelector(".progress > div");
const practiceBanner = root.querySelector("[data-practice]");
const pauseOverlay = root.querySelector("[data-pause]");
const flipFrame = root.querySelector("[data-flip]");
const flipLabel = root.querySelector("[data-flip-label]");
const flipOrder = flipFrame ? flipFrame.dataset.flip.split(" ") : [];
const choiceButtons = [...root.querySelectorAll("[data-choice]")];
const queueKey = `codec-arena:votes:${token}`;
const LABELS = { reference: "Original", left: "A", right: "B" };
const PLACEHOLDER_TRIAL = "00000000-0000-0000-0000-000000000000";

// Retry delays for an unreachable server, in ms (then the last one repeats).
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000];
// How long practice feedback stays on screen.
const FEEDBACK_MS = 900;

let current = null; // the trial on screen (API payload)
let shownAt = 0;
let flips = 0;
let flipIndex = 0;
let timeElapsed = false;
let generation = 0; // bumps whenever another trial is shown
let flushing = null;
const imageCache = new Map(); // url -> Promise<HTMLImageElement>, decoded
const responses = new Map(); // trial id -> vote response body

// Timings for bench/viewer.py: ms from the choice to the next trial painted.
window.codecArenaTimings = [];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
const headers = () => ({ Authorization: `Bearer ${token}`, "Content-Type": "application/json" });
const retryDelay = (attempt) => RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)];
// 429: over the rate limit, nothing was stored; the server says when to ask again.
const retryAfterMs = (response, attempt) => {
  const seconds = Number(response.headers.get("Retry-After"));
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : retryDelay(attempt);
};

function setStatus(text, className = "") {
  statusLine.textContent = text;
  statusLine.className = `status-line ${className}`;
}

// --- The vote queue ---------------------------------------------------------

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

async function sendQueue() {
  let attempt = 0;
  for (;;) {
    const queue = loadQueue();
    if (queue.length === 0) return;
    const item = queue[0];
    let response = null;
    try {
      response = await fetch(voteUrlTemplate.replace(PLACEHOLDER_TRIAL, item.trial), {
        method: "POST",
        headers: headers(),
        body: JSON.stringify(item.body),
      });
    } catch {
      response = null; // offline or server unreachable: keep the vote, retry
    }
    if (response && response.status === 429) {
      // Not stored: send the same vote (same client_vote_id) again later.
      setStatus("The server is busy — your answers are kept and will be sent shortly.");
      await sleep(retryAfterMs(response, attempt++));
      continue;
    }
    if (response && response.status < 500) {
      // Stored (201, or 200 for a retry), or refused for good (any other 4xx,
      // which a retry cannot change): either way this vote has had its answer.
      const body = await response.json().catch(() => ({}));
      if (!response.ok) console.warn("vote refused", response.status, body);
      responses.set(item.trial, body);
      saveQueue(loadQueue().filter((v) => v.body.client_vote_id !== item.body.client_vote_id));
      attempt = 0;
      if (statusLine.dataset.offline) {
        delete statusLine.dataset.offline;
        setStatus("Connection is back; your answers are saved.");
      }
      continue;
    }
    statusLine.dataset.offline = "1";
    setStatus("Connection problem — your answers are kept and will be sent when it is back.");
    await sleep(retryDelay(attempt++));
  }
}

function flushQueue() {
  // One sender at a time; everyone waiting shares its completion.
  if (!flushing) {
    flushing = sendQueue().finally(() => {
      flushing = null;
    });
  }
  return flushing;
}

// --- Talking to the server --------------------------------------------------

async function fetchNext() {
  let attempt = 0;
  for (;;) {
    try {
      const response = await fetch(nextUrl, { headers: headers(), cache: "no-store" });
      if (response.ok) return await response.json();
      if (response.status === 429) {
        setStatus("The server is busy — one moment…");
        await sleep(retryAfterMs(response, attempt++));
        continue;
      }
      const body = await response.json().catch(() => ({}));
      setStatus(body.error || `The server answered ${response.status}.`);
      if (response.status < 500) return null;
    } catch {
      setStatus("Connection problem — retrying…");
    }
    await sleep(retryDelay(attempt++));
  }
}

async function finish(data) {
  await flushQueue(); // every vote acknowledged before leaving
  setStatus("All answers saved. Thank you!");
  progressBar.style.width = "100%";
  window.location.assign(data.completion_url);
}

// --- Images -----------------------------------------------------------------

function loadImage(url) {
  if (!imageCache.has(url)) {
    const img = new Image();
    img.decoding = "async";
    img.src = url;
    imageCache.set(
      url,
      img.decode().then(() => img, (error) => {
        imageCache.delete(url); // a later attempt may succeed
        throw error;
      }),
    );
  }
  return imageCache.get(url);
}

function prefetch(trial) {
  if (!trial) return;
  for (const url of Object.values(trial.images)) loadImage(url).catch(() => {});
}

function place(trial) {
  // CSS pixels = image pixels / devicePixelRatio: one image pixel per device pixel.
  const dpr = window.devicePixelRatio || 1;
  root.querySelectorAll("[data-frame]").forEach((frame) => {
    frame.style.width = `${trial.crop.width / dpr}px`;
    frame.style.height = `${trial.crop.height / dpr}px`;
  });
  root.querySelectorAll("[data-image]").forEach((img) => {
    img.src = trial.images[img.dataset.image];
    img.style.width = `${trial.size.width / dpr}px`;
    img.style.height = `${trial.size.height / dpr}px`;
    img.style.left = `${-trial.crop.x / dpr}px`;
    img.style.top = `${-trial.crop.y / dpr}px`;
  });
}

// --- Flipping ---------------------------------------------------------------

function showFlipView(index) {
  if (!flipFrame) return;
  flipIndex = index % flipOrder.length;
  const visible = flipOrder[flipIndex];
  flipFrame.querySelectorAll("[data-image]").forEach((img) => {
    if (img.dataset.image === visible) img.removeAttribute("hidden-view");
    else img.setAttribute("hidden-view", "");
  });
  flipLabel.textContent = LABELS[visible];
  root.dataset.view = visible;
}

function flip() {
  if (!flipFrame || current === null) return;
  showFlipView(flipIndex + 1);
  flips += 1;
  updateChoiceState();
}

// --- Showing a trial --------------------------------------------------------

function flipsNeeded() {
  return current ? Math.max(0, current.min_flips - flips) : 0;
}

function updateChoiceState() {
  const ready = current !== null && timeElapsed && flipsNeeded() === 0;
  choiceButtons.forEach((b) => {
    b.disabled = !ready;
  });
  root.dataset.ready = ready ? "1" : "0";
  if (current !== null && timeElapsed && flipsNeeded() > 0) {
    setStatus(`Flip with Space at least ${flipsNeeded()} more time(s) before choosing.`);
  }
}

function progressText(trial) {
  if (trial.practice) return "Practice pair";
  return `Pair ${trial.progress.done + 1} of ${trial.progress.total}`;
}

async function show(trial) {
  generation += 1;
  const mine = generation;
  current = null;
  timeElapsed = false;
  updateChoiceState();
  root.dataset.state = "loading";
  await Promise.all(Object.values(trial.images).map(loadImage));
  if (mine !== generation) return;
  place(trial);
  flips = 0;
  showFlipView(0);
  practiceBanner.hidden = !trial.practice;
  progressBar.style.width = `${(100 * trial.progress.done) / trial.progress.total}%`;
  root.dataset.state = "ready";
  root.dataset.trial = trial.trial;
  if (!statusLine.dataset.offline) setStatus(progressText(trial));
  current = trial;
  prefetch(trial.next);
  await nextFrame();
  shownAt = performance.now();
  setTimeout(() => {
    if (current === trial) {
      timeElapsed = true;
      updateChoiceState();
    }
  }, trial.min_view_ms);
}

async function sync(expected) {
  // After a vote: send the queue, then ask the server what comes next.
  const mine = generation;
  await flushQueue();
  const data = await fetchNext();
  if (data === null) return;
  if (data.finished) {
    await finish(data);
    return;
  }
  if (mine !== generation) return; // the rater has moved on meanwhile
  if (expected !== null && data.trial === expected.trial) {
    expected.next = data.next; // the trial on screen is the server's current one
    prefetch(data.next);
  } else {
    await show(data);
  }
}

async function pauseIfDue(done) {
  if (!pauseEvery || done === 0 || done % pauseEvery !== 0) return;
  pauseOverlay.hidden = false;
  await new Promise((resolve) => {
    pauseOverlay.querySelector("[data-continue]").addEventListener("click", resolve, { once: true });
  });
  pauseOverlay.hidden = true;
}

async function choose(choice) {
  if (current === null || !timeElapsed || flipsNeeded() > 0) return;
  if (choice === "tie" && !allowTies) return;
  const chosenAt = performance.now();
  const trial = current;
  current = null;
  updateChoiceState();
  const queue = loadQueue();
  queue.push({
    trial: trial.trial,
    body: {
      choice,
      client_vote_id: uuid4(),
      response_ms: Math.round(chosenAt - shownAt),
      flips,
    },
  });
  saveQueue(queue);

  if (trial.practice) {
    await flushQueue();
    const answer = responses.get(trial.trial) || {};
    setStatus(
      answer.correct ? "Right: that one is closer to the original." : "Not quite: the other one is closer to the original.",
      answer.correct ? "feedback-good" : "feedback-bad",
    );
    await sleep(FEEDBACK_MS);
  } else {
    await pauseIfDue(trial.progress.done + 1);
  }

  const following = trial.next;
  if (following) {
    // Fast path: the next trial's images are (being) loaded already.
    await show(following);
    sync(following);
  } else {
    await sync(null);
  }
  if (!trial.practice && current !== null) {
    await nextFrame();
    window.codecArenaTimings.push(performance.now() - chosenAt);
  }
}

const CHOICE_KEYS = { ArrowLeft: "left", 1: "left", ArrowRight: "right", 2: "right", ArrowDown: "tie", 0: "tie" };

document.addEventListener("keydown", (event) => {
  if (event.key === " " || event.key === "f" || event.key === "F") {
    event.preventDefault();
    flip();
    return;
  }
  const choice = CHOICE_KEYS[event.key];
  if (choice) {
    event.preventDefault();
    choose(choice);
  }
});
choiceButtons.forEach((button) => button.addEventListener("click", () => choose(button.dataset.choice)));
root.querySelector("[data-flip-button]")?.addEventListener("click", flip);
window.addEventListener("online", () => flushQueue());

// Start (or resume after a reload): send what is left from before, then ask.
sync(null);
