// The page of `sepconv ui`: uploads, jobs, progress and the comparisons. No library, nothing
// fetched from anywhere but the server that served this page.
"use strict";

const state = {
  token: null, // this tab's client (kept in memory only: another tab gets its own)
  maxUploadBytes: 0,
  pairFiles: [],
  videoFile: null,
  cards: new Map(), // job id -> {element, parts}
  timer: null,
};

const $ = (id) => document.getElementById(id);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function sizeText(bytes) {
  const units = ["bytes", "KB", "MB", "GB"];
  let value = bytes;
  for (const unit of units) {
    if (value < 1024 || unit === "GB") {
      return unit === "bytes" ? `${value.toFixed(0)} ${unit}` : `${value.toFixed(1)} ${unit}`;
    }
    value /= 1024;
  }
  return `${value.toFixed(1)} GB`;
}

function clock(seconds) {
  const whole = Math.max(0, Math.round(seconds));
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = String(whole % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

function showMessage(text) {
  const message = $("message");
  message.textContent = text || "";
  message.hidden = !text;
}

// -- talking to the server -------------------------------------------------------------------

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(`/api/s/${state.token}${path}`, options);
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(payload.error || `sepconv ui: error: HTTP ${response.status}`);
  return payload;
}

function upload(file, onProgress) {
  return new Promise((resolve, reject) => {
    if (file.size > state.maxUploadBytes) {
      reject(new Error(`sepconv ui: error: ${file.name} is ${sizeText(file.size)}, more than ` +
        `the ${sizeText(state.maxUploadBytes)} this page accepts (sepconv ui --max-upload-mb)`));
      return;
    }
    const request = new XMLHttpRequest();
    request.open("POST", `/api/s/${state.token}/uploads?name=${encodeURIComponent(file.name)}`);
    request.upload.onprogress = (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    };
    request.onload = () => {
      let payload = {};
      try { payload = JSON.parse(request.responseText); } catch (error) { /* not JSON */ }
      if (request.status === 200) resolve(payload.id);
      else reject(new Error(payload.error || `sepconv ui: error: HTTP ${request.status}`));
    };
    request.onerror = () => reject(new Error(`sepconv ui: error: the upload of ${file.name} failed`));
    request.send(file);
  });
}

async function uploadAll(files, hint) {
  const ids = [];
  for (const file of files) {
    ids.push(await upload(file, (share) => {
      hint.textContent = `Uploading ${file.name}: ${Math.round(share * 100)}%`;
    }));
  }
  return ids;
}

// -- two frames ------------------------------------------------------------------------------

async function addPairFiles(files) {
  showMessage("");
  const images = Array.from(files);
  if (!images.length) return;
  if (images.length > 2 || state.pairFiles.length + images.length > 2) {
    state.pairFiles = [];
    if (images.length !== 2) {
      showMessage(`sepconv ui: error: drop two images (got ${images.length})`);
      $("pair-chosen").textContent = "Drop two images.";
      return;
    }
  }
  images.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
  state.pairFiles.push(...images);
  const hint = $("pair-chosen");
  if (state.pairFiles.length < 2) {
    hint.textContent = `First: ${state.pairFiles[0].name}. Now the second image.`;
    return;
  }
  const [first, second] = state.pairFiles;
  state.pairFiles = [];
  hint.textContent = `First: ${first.name}, second: ${second.name}.`;
  try {
    const inputs = await uploadAll([first, second], hint);
    await api("POST", "/jobs", { kind: "pair", inputs, model: $("model").value });
    hint.textContent = `First: ${first.name}, second: ${second.name}: see Jobs below.`;
    refresh();
  } catch (error) {
    showMessage(error.message);
    hint.textContent = "Drop two images.";
  }
}

// -- a video ---------------------------------------------------------------------------------

function chooseVideo(files) {
  showMessage("");
  const list = Array.from(files);
  if (list.length !== 1) {
    showMessage(`sepconv ui: error: drop one video (got ${list.length})`);
    return;
  }
  state.videoFile = list[0];
  $("video-chosen").textContent = `${list[0].name} (${sizeText(list[0].size)})`;
  $("convert").disabled = false;
}

function videoOptions() {
  const mode = $("mode-fps").checked ? "fps" : "factor";
  return {
    mode,
    factor: $("factor").value,
    fps: $("fps").value,
    slowmo: mode === "factor" && $("slowmo").checked,
    adapt: $("adapt").checked,
    adaptSeconds: $("adapt-seconds").value,
    container: $("container").value,
    audio: $("audio").checked,
  };
}

async function convert() {
  showMessage("");
  const file = state.videoFile;
  if (!file) return;
  const hint = $("video-chosen");
  $("convert").disabled = true;
  try {
    const request = { kind: "video", model: $("model").value, options: videoOptions() };
    await api("POST", "/jobs", { ...request, check: true }); // the command's usage errors first
    const inputs = await uploadAll([file], hint);
    await api("POST", "/jobs", { ...request, inputs });
    hint.textContent = `${file.name}: see Jobs below.`;
    state.videoFile = null;
    refresh();
  } catch (error) {
    showMessage(error.message);
    hint.textContent = `${file.name} (${sizeText(file.size)})`;
    $("convert").disabled = false;
  }
}

// -- jobs ------------------------------------------------------------------------------------

function describeOptions(job) {
  const parts = [];
  const options = job.options || {};
  if (options.factor) parts.push(`factor ${options.factor}`);
  if (options.fps) parts.push(`${options.fps} fps`);
  if (options.slowmo) parts.push("slow motion");
  if (options.adapt) parts.push(`adapt ${options.adapt} s`);
  if (options.audio === false) parts.push("no sound");
  if (options.model) parts.push(options.model);
  return parts.join(" · ");
}

function statusText(job, queue) {
  if (job.state === "queued") {
    const ahead = job.position - 1 + (queue.running ? 1 : 0);
    return ahead ? `Waiting in the queue: ${ahead} job${ahead > 1 ? "s" : ""} before it.`
      : "Starting.";
  }
  if (job.state === "running") {
    const parts = [job.phase || "running"];
    if (job.done !== null && job.total) parts.push(`${job.done} / ${job.total} ${job.unit}`);
    else if (job.done !== null) parts.push(`${job.done} ${job.unit}`);
    if (job.rate) parts.push(`${job.rate.toFixed(1)} frames/s`);
    if (job.eta !== null && job.eta > 0) parts.push(`about ${clock(job.eta)} left`);
    return parts.join(" · ");
  }
  if (job.state === "done") return job.summary || "Done.";
  if (job.state === "cancelled") {
    return job.kind === "video"
      ? "Cancelled: no file was written. Resume continues from the finished frames; " +
        "Discard removes them."
      : "Cancelled: no file was written.";
  }
  return "";
}

function makeCard(job) {
  const parts = {
    badge: element("span", { className: "badge" }),
    progress: element("progress", { max: "1", value: "0" }),
    status: element("span", { className: "status-text" }),
    error: element("p", { className: "error", hidden: "" }),
    notes: element("ul", { className: "notes" }),
    cancel: element("button", { className: "cancel", text: "Cancel" }),
    resume: element("button", { className: "resume", text: "Resume" }),
    discard: element("button", { className: "discard", text: "Discard" }),
    download: element("a", { className: "download", hidden: "" }),
    compare: null,
  };
  parts.cancel.onclick = () => act(job.id, "cancel");
  parts.resume.onclick = () => act(job.id, "resume");
  parts.discard.onclick = () => act(job.id, "discard");
  const title = job.kind === "pair"
    ? `${job.inputs[0]} + ${job.inputs[1]} → middle frame` : `${job.inputs[0]} → ${job.output}`;
  const card = element("li", { className: "job", "data-job-id": job.id },
    element("div", { className: "job-head" },
      element("span", { className: "job-title", text: title }), parts.badge,
      element("span", { className: "job-options", text: describeOptions(job) })),
    element("div", { className: "status" }, parts.progress, parts.status),
    parts.error, parts.notes,
    element("div", { className: "actions" },
      parts.download, parts.cancel, parts.resume, parts.discard));
  return { element: card, parts };
}

function updateCard(entry, job, queue) {
  const { element: card, parts } = entry;
  card.dataset.state = job.state;
  parts.badge.textContent = job.state;
  parts.status.textContent = statusText(job, queue);
  const active = job.state === "running" && job.total;
  parts.progress.hidden = !(job.state === "running" || job.state === "queued");
  if (active) {
    parts.progress.max = job.total;
    parts.progress.value = job.done || 0;
  } else {
    parts.progress.removeAttribute("value");
  }
  parts.error.hidden = !job.error;
  parts.error.textContent = job.error || "";
  parts.notes.replaceChildren(...job.notes.map((note) => element("li", { text: note })));
  parts.cancel.hidden = !(job.state === "queued" || job.state === "running");
  parts.cancel.disabled = job.phase === "cancelling";
  parts.resume.hidden = !job.resumable;
  parts.discard.hidden = job.state === "queued" || job.state === "running";
  if (job.state === "done" && job.files.download && !parts.compare) {
    parts.download.href = `${job.files.download}?download=1`;
    parts.download.setAttribute("download", job.output);
    parts.download.textContent = `Download ${job.output}`;
    parts.download.hidden = false;
    parts.compare = job.kind === "pair" ? pairComparison(job) : videoComparison(job);
    if (parts.compare) card.append(parts.compare);
  }
}

function pairComparison(job) {
  const files = job.files;
  if (!files.middle) return null;
  const loop = element("img", { className: "loop", src: files.first, alt: "loop" });
  const caption = element("span", { text: "first" });
  const frames = [[files.first, "first"], [files.middle, "middle"], [files.last, "last"]];
  let index = 0;
  const timer = setInterval(() => {
    if (!loop.isConnected) { clearInterval(timer); return; }
    index = (index + 1) % frames.length;
    loop.src = frames[index][0];
    caption.textContent = frames[index][1];
  }, 450);
  return element("div", { className: "compare pair" },
    element("figure", {},
      element("div", { className: "overlay" },
        element("img", { src: files.first, alt: "first frame" }),
        element("img", { src: files.last, alt: "second frame, half transparent" })),
      element("figcaption", { text: "The two inputs overlaid" })),
    element("figure", {}, element("img", { className: "middle", src: files.middle, alt: "middle" }),
      element("figcaption", { text: "The middle frame" })),
    element("figure", {}, loop,
      element("figcaption", { text: "Loop: first, middle, last — now " }, caption)));
}

function videoComparison(job) {
  const files = job.files;
  if (!files.original || !files.result) return null;
  const video = (src, name) => element("video", {
    className: name, src, muted: "", playsinline: "", preload: "auto",
  });
  const original = video(files.original, "original");
  const result = video(files.result, "result");
  original.muted = result.muted = true;
  const play = element("button", { className: "play", text: "Play both" });
  const seek = element("input", { type: "range", className: "seek", min: "0", max: "1000", value: "0" });
  const time = element("span", { className: "time", text: "0:00" });
  const slow = Boolean(job.options && job.options.slowmo);
  let ratio = 1; // seconds of the result per second of the original
  let playing = false;

  function measured() {
    if (slow && original.duration && result.duration) {
      ratio = result.duration / original.duration;
      original.playbackRate = Math.min(16, Math.max(0.0625, 1 / ratio));
    }
  }
  original.addEventListener("loadedmetadata", measured);
  result.addEventListener("loadedmetadata", measured);

  function follow() {
    const target = result.currentTime / ratio;
    if (Math.abs(original.currentTime - target) > 0.08) original.currentTime = target;
    if (result.duration) seek.value = String(Math.round((result.currentTime / result.duration) * 1000));
    time.textContent = clock(result.currentTime);
    if (playing) requestAnimationFrame(follow);
  }
  function start() {
    playing = true;
    play.textContent = "Pause";
    original.currentTime = result.currentTime / ratio;
    Promise.all([result.play(), original.play()]).catch(() => {});
    requestAnimationFrame(follow);
  }
  function stop() {
    playing = false;
    play.textContent = "Play both";
    result.pause();
    original.pause();
  }
  play.onclick = () => (playing ? stop() : start());
  result.addEventListener("ended", () => {
    result.currentTime = 0;
    original.currentTime = 0;
    if (playing) Promise.all([result.play(), original.play()]).catch(() => {});
  });
  original.addEventListener("ended", () => { if (playing) original.pause(); });
  seek.oninput = () => {
    if (!result.duration) return;
    result.currentTime = (Number(seek.value) / 1000) * result.duration;
    original.currentTime = result.currentTime / ratio;
    time.textContent = clock(result.currentTime);
  };
  return element("div", { className: "compare video" },
    element("figure", {}, original, element("figcaption", { text: `Original: ${job.inputs[0]}` })),
    element("figure", {}, result, element("figcaption", { text: `Result: ${job.output}` })),
    element("div", { className: "player" }, play, seek, time));
}

async function act(jobId, action) {
  try {
    await api("POST", `/jobs/${jobId}/${action}`);
    if (action === "discard") {
      const entry = state.cards.get(jobId);
      if (entry) entry.element.remove();
      state.cards.delete(jobId);
    }
  } catch (error) {
    showMessage(error.message);
  }
  refresh();
}

function render(view) {
  const list = $("jobs");
  const seen = new Set();
  for (const job of view.jobs) {
    seen.add(job.id);
    let entry = state.cards.get(job.id);
    if (!entry) {
      entry = makeCard(job);
      state.cards.set(job.id, entry);
      list.prepend(entry.element);
    }
    updateCard(entry, job, view.queue);
  }
  for (const [id, entry] of state.cards) {
    if (!seen.has(id)) {
      entry.element.remove();
      state.cards.delete(id);
    }
  }
  const queue = view.queue;
  const others = queue.waiting - queue.waitingMine + (queue.running && !queue.runningMine ? 1 : 0);
  const parts = [queue.running ? "one job running" : "nothing running",
    `${queue.waiting} waiting`];
  if (others) parts.push(`${others} of them from other tabs`);
  $("queue").textContent = view.jobs.length || queue.running || queue.waiting
    ? `Jobs run one at a time: ${parts.join(", ")}.` : "No jobs yet.";
}

async function refresh() {
  clearTimeout(state.timer);
  let busy = false;
  try {
    const view = await api("GET", "/jobs");
    render(view);
    busy = view.jobs.some((job) => job.state === "queued" || job.state === "running");
  } catch (error) {
    showMessage(error.message);
    if (/client has ended/.test(error.message)) return;
  }
  state.timer = setTimeout(refresh, busy ? 500 : 15000);
}

// -- set-up ----------------------------------------------------------------------------------

function dropZone(zone, input, handle) {
  input.addEventListener("change", () => { handle(input.files); input.value = ""; });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    handle(event.dataTransfer.files);
  });
}

async function start() {
  try {
    const response = await fetch("/api/client", { method: "POST" });
    const payload = await response.json();
    if (!response.ok) throw new Error(payload.error);
    state.token = payload.token;
    state.maxUploadBytes = payload.maxUploadBytes;
    const select = $("model");
    select.replaceChildren(...payload.models.map(
      (model) => element("option", { value: model.key, text: model.label })));
    select.disabled = false;
  } catch (error) {
    showMessage(error.message || "sepconv ui: error: the server does not answer");
    return;
  }
  dropZone($("pair-drop"), $("pair-files"), addPairFiles);
  dropZone($("video-drop"), $("video-file"), chooseVideo);
  $("convert").onclick = convert;
  const slowmo = () => { $("slowmo").disabled = $("mode-fps").checked; };
  $("mode-fps").onchange = slowmo;
  $("mode-factor").onchange = slowmo;
  // Closing the tab ends its client: the server removes its files.
  window.addEventListener("pagehide", () => {
    if (state.token) navigator.sendBeacon(`/api/s/${state.token}/close`);
  });
  window.addEventListener("pageshow", (event) => { if (event.persisted) location.reload(); });
  document.body.dataset.ready = "true";
  refresh();
}

start();
