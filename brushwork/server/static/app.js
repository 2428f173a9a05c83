// Brushwork web page: plain JavaScript, no build step, talks to the /v1 API of the server that served it.
"use strict";

const $ = (id) => document.getElementById(id);
const UPLOAD = "__upload__";

const state = {
  limits: { max_upload_bytes: 25 * 1024 * 1024, max_size: 1024, max_steps: 500, max_video_bytes: 200 * 1024 * 1024 },
  styles: [],
  photo: null,          // File: a photo, or a video when `video` is true
  video: false,         // the chosen file is a video: painted frame by frame by a video job
  photoUrl: null,       // object URL of the photo (the browser applies its EXIF orientation)
  style: null,          // preset name or UPLOAD
  styleFile: null,      // File, for "your own style"
  anyStyle: null,       // the one-pass method the server runs for an uploaded style (GET /v1/info), or null
  job: null,            // running job id
  events: null,         // EventSource
  pollTimer: null,
  busy: false,
  resultUrl: null,
};

// ---------------------------------------------------------------------------------------------
// Helpers

function setStatus(text) { $("status").textContent = text; }

function showError(text) {
  const el = $("error");
  el.textContent = text;
  el.hidden = !text;
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch (_) { /* not JSON */ }
  return `${response.status} ${response.statusText || "error"}`;
}

function formatBytes(n) {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(n >= 10 * 1024 * 1024 ? 0 : 1)} MB`;
  return `${Math.max(1, Math.round(n / 1024))} KB`;
}

function seconds(v) { return v < 10 ? v.toFixed(1) : String(Math.round(v)); }

function fmt(v) {
  if (v === undefined || v === null || !isFinite(v)) return "–";
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e4 || a < 1e-2) ? v.toExponential(2) : v.toPrecision(3);
}

function selectedMethod() {
  const el = document.querySelector('input[name="method"]:checked');
  return el ? el.value : "optimize";
}

function currentPreset() {
  return state.styles.find((s) => s.name === state.style) || null;
}

function scalesFor(size) { return size >= 384 ? 3 : size >= 192 ? 2 : 1; }

// ---------------------------------------------------------------------------------------------
// Photo

function isImageFile(file) {
  return !file.type || file.type.startsWith("image/");
}

const VIDEO_EXTENSIONS = /\.(mp4|m4v|mov|mkv|webm|avi|mpe?g|ogv)$/i;

function isVideoFile(file) {
  return (file.type || "").startsWith("video/") || VIDEO_EXTENSIONS.test(file.name || "");
}

function setPhoto(file) {
  showError("");
  if (!file) return;
  const video = isVideoFile(file);
  if (!video && !isImageFile(file)) { showError(`${file.name} is neither an image nor a video.`); return; }
  const limit = video ? state.limits.max_video_bytes : state.limits.max_upload_bytes;
  if (file.size > limit) {
    showError(`${file.name} is ${formatBytes(file.size)}; the limit for ${video ? "a video" : "a photo"} is ${formatBytes(limit)}.`);
    return;
  }
  state.photo = file;
  state.video = video;
  if (state.photoUrl) URL.revokeObjectURL(state.photoUrl);
  state.photoUrl = URL.createObjectURL(file);
  const img = $("photo-preview");
  const clip = $("video-preview");
  img.hidden = video;
  clip.hidden = !video;
  const unreadable = () => { $("photo-dims").textContent = "no preview in this browser; the server will read it"; };
  if (video) {
    img.removeAttribute("src");
    clip.onloadedmetadata = () => {
      $("photo-dims").textContent = `${clip.videoWidth} × ${clip.videoHeight}, ${clip.duration.toFixed(1)} s`;
    };
    clip.onerror = unreadable;
    clip.src = state.photoUrl;
  } else {
    clip.removeAttribute("src");
    img.onload = () => { $("photo-dims").textContent = `${img.naturalWidth} × ${img.naturalHeight}`; };
    img.onerror = unreadable;
    img.src = state.photoUrl;
  }
  $("photo-dims").textContent = "";
  $("photo-name").textContent = file.name || (video ? "video" : "photo");
  $("drop-empty").hidden = true;
  $("drop-full").hidden = false;
  updateControls();
}

function setupDropzone() {
  const zone = $("dropzone");
  $("photo-input").addEventListener("change", (e) => setPhoto(e.target.files[0]));
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("photo-input").click(); }
  });
  ["dragenter", "dragover"].forEach((ev) => zone.addEventListener(ev, (e) => {
    e.preventDefault(); zone.classList.add("dragging");
  }));
  ["dragleave", "drop"].forEach((ev) => zone.addEventListener(ev, (e) => {
    e.preventDefault(); zone.classList.remove("dragging");
  }));
  zone.addEventListener("drop", (e) => {
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) setPhoto(file);
  });
  // A photo dropped anywhere else on the page should not navigate away from it.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
}

// ---------------------------------------------------------------------------------------------
// Styles

function renderGallery() {
  const gallery = $("gallery");
  // Paintings with a trained model (the fast method) first, then the rest, each alphabetically.
  const ordered = [...state.styles].sort((a, b) => (!!b.fast_model - !!a.fast_model) || a.title.localeCompare(b.title));
  for (const s of ordered) {
    const card = document.createElement("button");
    card.type = "button";
    card.className = "style-card";
    card.dataset.style = s.name;
    card.setAttribute("role", "option");
    card.title = s.credit;
    const img = document.createElement("img");
    img.className = "thumb";
    img.loading = "lazy";
    img.alt = `${s.title} by ${s.artist}`;
    img.src = s.thumbnail_url;
    const text = document.createElement("span");
    text.className = "style-text";
    const title = document.createElement("span");
    title.className = "style-title";
    title.textContent = s.title;
    const artist = document.createElement("span");
    artist.className = "style-artist";
    artist.textContent = s.year ? `${s.artist}, ${s.year}` : s.artist;
    text.append(title, artist);
    card.append(img, text);
    if (s.fast_model) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = "fast";
      badge.title = "A trained model exists for this painting: the fast method works";
      card.append(badge);
    }
    card.addEventListener("click", () => selectStyle(s.name));
    gallery.append(card);
  }
  gallery.append($("upload-style-card"));  // "your own style" comes after the paintings
}

function selectStyle(name) {
  state.style = name;
  document.querySelectorAll(".style-card").forEach((c) => {
    const on = c.dataset.style === name;
    c.classList.toggle("selected", on);
    c.setAttribute("aria-selected", on ? "true" : "false");
  });
  const preset = currentPreset();
  const credit = $("style-credit");
  credit.textContent = "";
  if (preset) {
    const em = document.createElement("em");
    em.textContent = preset.title;
    credit.append(em, `, ${preset.artist}${preset.year ? `, ${preset.year}` : ""}`);
  } else if (name === UPLOAD && state.styleFile) {
    credit.textContent = `Your style: ${state.styleFile.name}`;
  }
  // Prefer the fast method when it can paint this style, unless the user chose optimize on purpose.
  if (fastAvailable() && !state.userPickedMethod) $("method-fast").checked = true;
  updateControls();
}

function setupStyleUpload() {
  const card = $("upload-style-card");
  const input = $("style-input");
  input.addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (!file) return;
    showError("");
    if (!isImageFile(file)) { showError(`${file.name} is not an image.`); return; }
    if (file.size > state.limits.max_upload_bytes) {
      showError(`${file.name} is too large (limit ${formatBytes(state.limits.max_upload_bytes)}).`); return;
    }
    state.styleFile = file;
    const thumb = $("upload-thumb");
    thumb.textContent = "";
    const img = document.createElement("img");
    img.alt = "Your style image";
    img.src = URL.createObjectURL(file);
    thumb.append(img);
    $("upload-style-name").textContent = file.name;
    selectStyle(UPLOAD);
  });
  card.addEventListener("click", (e) => {
    // With a file already chosen, a click selects it; the label still opens the picker to change it.
    if (state.styleFile && state.style !== UPLOAD) { e.preventDefault(); selectStyle(UPLOAD); }
  });
  card.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  });
}

// ---------------------------------------------------------------------------------------------
// Controls

// A painting with a trained model; or, when the server has a one-pass method for any style, any
// painting and your own style image.
function fastAvailable() {
  const preset = currentPreset();
  if (state.style === UPLOAD) return !!state.anyStyle;
  return !!(preset && (preset.fast_model || state.anyStyle));
}

function updateControls() {
  const preset = currentPreset();
  const fastOk = fastAvailable();
  const fastRadio = $("method-fast");
  fastRadio.disabled = !fastOk;
  $("method-fast-card").classList.toggle("disabled", !fastOk);
  if (!fastOk && fastRadio.checked) $("method-optimize").checked = true;
  // A network's own style (no painting behind it) has only the fast method, and so has a video.
  const optimizeOk = !state.video && (!preset || preset.methods.includes("optimize"));
  const optimizeRadio = $("method-optimize");
  optimizeRadio.disabled = !optimizeOk;
  $("method-optimize-card").classList.toggle("disabled", !optimizeOk);
  if (!optimizeOk && optimizeRadio.checked && fastOk) fastRadio.checked = true;
  const method = selectedMethod();

  let note = "";
  if (state.video && !fastOk) note = "A video is painted by the fast method, which has no model for this painting here.";
  else if (state.style === UPLOAD && !fastOk) note = "Your own style image works with Optimize.";
  else if (state.style === UPLOAD && method === "fast") {
    note = `Paints your style in one pass (${state.anyStyle.name}).`;
  }
  else if (state.style === UPLOAD) note = "Optimize follows your style image step by step.";
  else if (preset && !fastOk) note = "No trained model for this painting yet: Optimize paints with any painting.";
  else if (method === "fast" && preset.fast_model_kind === "multi" && !preset.image_url) {
    note = `A style of the network “${preset.fast_model}”: it has no painting, so only the fast method paints it.`;
  }
  else if (method === "fast" && preset.fast_model_kind === "multi") {
    note = `Uses the many-style model “${preset.fast_model}”, trained on this painting among others.`;
  }
  else if (method === "fast" && preset.fast_model) note = `Uses the trained model “${preset.fast_model}”.`;
  else if (method === "fast") note = `No trained model for this painting: paints it in one pass (${state.anyStyle.name}).`;
  else if (preset) note = "Optimize follows the painting step by step: minutes, not seconds.";
  if (state.video && fastOk) note += " A video is painted frame by frame, each frame steadied by the one before along the motion.";
  $("method-note").textContent = note;
  $("stability-field").hidden = !state.video;
  $("stability-out").textContent = `${$("stability").value}%`;

  $("advanced").hidden = method !== "optimize";
  const size = Number($("size").value);
  $("size-out").textContent = `${size} px`;
  $("strength-out").textContent = `${$("strength").value}%`;
  const steps = Math.max(1, Number($("steps").value) || 1);
  const scales = scalesFor(size);
  const total = steps * (2 ** scales - 1);
  $("steps-note").textContent = `${scales} scale${scales > 1 ? "s" : ""} (coarse to fine): ${total} steps in all.`;

  const ready = !!state.photo && (state.style === UPLOAD ? !!state.styleFile : !!preset)
    && (!state.video || fastOk);
  $("go").disabled = !ready || state.busy;
  if (!state.busy) {
    setStatus(!state.photo ? "Choose a photo or a video." : !ready ? "Choose a painting." : "Ready to paint.");
  }
}

function setBusy(busy) {
  state.busy = busy;
  $("go").disabled = busy;
  $("go").textContent = busy ? "Painting…" : "Paint";
  updateControls();
}

// ---------------------------------------------------------------------------------------------
// Stage

function showStage(which) {
  $("empty").hidden = which !== "empty";
  $("progress-box").hidden = which !== "progress";
  $("result-box").hidden = which !== "result";
}

function setProgress(step, total, text) {
  const pct = total ? Math.min(100, (100 * step) / total) : 0;
  $("bar-fill").style.width = `${pct}%`;
  $("bar").setAttribute("aria-valuenow", String(Math.round(pct)));
  $("progress-text").textContent = text;
}

// A painted photo is shown against the photo (a before/after slider), a painted video as a player.
function showResult(blob, info, video) {
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = URL.createObjectURL(blob);
  $("compare").hidden = video;
  const player = $("result-video");
  player.hidden = !video;
  if (video) {
    player.src = state.resultUrl;
  } else {
    player.removeAttribute("src");
    $("result-before").src = state.photoUrl;
    $("result-after").src = state.resultUrl;
    setCompare(50);
    $("compare-slider").value = 50;
  }
  const label = state.style === UPLOAD ? "custom" : state.style;
  const link = $("download");
  link.href = state.resultUrl;
  link.download = `brushwork-${label}.${video ? "mp4" : "png"}`;
  link.textContent = video ? "Download MP4" : "Download PNG";
  $("result-info").textContent = info;
  showStage("result");
}

function setCompare(pct) {
  $("after-clip").style.clipPath = `inset(0 0 0 ${pct}%)`;
  $("divider").style.left = `${pct}%`;
}

// ---------------------------------------------------------------------------------------------
// Painting

function buildForm(method) {
  const form = new FormData();
  if (state.video) form.append("video", state.photo, state.photo.name || "video");
  else form.append("photo", state.photo, state.photo.name || "photo");
  if (state.style === UPLOAD) form.append("style_image", state.styleFile, state.styleFile.name || "style");
  else form.append("style", state.style);
  const size = Number($("size").value);
  const strength = Number($("strength").value) / 100;
  form.append("size", String(size));
  form.append("preserve_color", $("keep-colors").checked ? "luminance" : "none");
  if (method === "fast") {
    // auto: a painting's trained model when it has one, else the server's one-pass method for any style.
    form.append("method", "auto");
    form.append("strength", String(strength));
    if (state.video) form.append("stability", String(Number($("stability").value) / 100));
  } else {
    // Optimize has no blend: strength sets how much the painting's texture weighs (10 to 1000).
    form.append("style_weight", String(Math.round(10 * 100 ** strength)));
    form.append("steps", String(Math.max(1, Number($("steps").value) || 1)));
    form.append("scales", String(scalesFor(size)));
  }
  return form;
}

async function paint() {
  showError("");
  const method = selectedMethod();
  setBusy(true);
  showStage("progress");
  $("live-preview").hidden = true;
  $("live-placeholder").hidden = false;
  setProgress(0, 1, "");
  try {
    if (state.video) await startJob("/v1/video-jobs", buildForm("fast"));
    else if (method === "fast") await paintFast();
    else await startJob("/v1/jobs", buildForm("optimize"));
  } catch (err) {
    finish(false);
    showError(`Could not reach the server: ${err.message || err}`);
  }
}

async function paintFast() {
  setStatus("Painting (fast)…");
  $("live-placeholder").textContent = "Painting in one pass…";
  const started = performance.now();
  const response = await fetch("/v1/stylize", { method: "POST", body: buildForm("fast") });
  if (!response.ok) {
    finish(false);
    const retry = response.headers.get("Retry-After");
    showError(await errorText(response) + (retry ? ` (retry in ${retry} s)` : ""));
    return;
  }
  const blob = await response.blob();
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  const model = response.headers.get("X-Brushwork-Model") || state.style;
  const used = response.headers.get("X-Brushwork-Method");
  finish(true);
  showResult(blob, `Fast: ${model}${used && used !== "feedforward" ? ` (${used})` : ""}, ${secs} s.`, false);
  setStatus("Done.");
}

// An optimization (/v1/jobs) or a video (/v1/video-jobs): a background job, watched until it ends.
async function startJob(url, form) {
  setStatus(state.video ? "Uploading the video…" : "Starting the job…");
  $("live-placeholder").textContent = "Waiting for a free painter…";
  const response = await fetch(url, { method: "POST", body: form });
  if (!response.ok) {
    finish(false);
    const retry = response.headers.get("Retry-After");
    showError(await errorText(response) + (retry ? ` (retry in ${retry} s)` : ""));
    return;
  }
  const job = await response.json();
  state.job = job.id;
  $("cancel").hidden = false;
  $("cancel").disabled = false;
  onJobUpdate(job);
  listen(job);
}

function listen(job) {
  if (!window.EventSource) { poll(job.id); return; }
  const es = new EventSource(job.events_url);
  state.events = es;
  es.addEventListener("progress", (e) => onJobUpdate(JSON.parse(e.data)));
  es.addEventListener("preview", (e) => {
    const data = JSON.parse(e.data);
    if (data.id !== state.job) return;
    const img = $("live-preview");
    img.src = data.image;
    img.hidden = false;
    $("live-placeholder").hidden = true;
  });
  es.addEventListener("end", (e) => { closeEvents(); onJobEnd(JSON.parse(e.data)); });
  es.onerror = () => {
    // The stream broke (proxy, network): fall back to polling the job.
    if (state.events === es && state.job === job.id) { closeEvents(); poll(job.id); }
  };
}

function closeEvents() {
  if (state.events) { state.events.close(); state.events = null; }
  if (state.pollTimer) { clearTimeout(state.pollTimer); state.pollTimer = null; }
}

async function poll(id) {
  if (state.job !== id) return;
  try {
    const response = await fetch(`/v1/jobs/${encodeURIComponent(id)}`);
    if (!response.ok) { onJobEnd({ id, state: "failed", error: await errorText(response) }); return; }
    const job = await response.json();
    onJobUpdate(job);
    if (["done", "failed", "cancelled"].includes(job.state)) { onJobEnd(job); return; }
  } catch (_) { /* try again */ }
  state.pollTimer = setTimeout(() => poll(id), 1000);
}

function onJobUpdate(job) {
  if (job.id !== state.job) return;
  if (job.state === "queued") {
    setStatus(job.queue_position ? `Queued (position ${job.queue_position})…` : "Queued…");
    setProgress(0, 1, "Waiting for a free painter.");
    return;
  }
  if (job.state === "running" && job.method === "video") {
    const parts = [`Frame ${job.step} / ${job.total || "?"}`];
    if (job.width) parts.push(`${job.width}×${job.height}`);
    if (job.frames_per_s) parts.push(`${fmt(job.frames_per_s)} frames/s`);
    parts.push(`${Math.round(job.elapsed)} s`);
    setProgress(job.step, job.total, parts.join(" · "));
    setStatus(job.cancelling ? "Cancelling…" : `Painting the video… ${Math.round(100 * (job.progress || 0))}%`);
    if (job.step > 0) $("live-placeholder").textContent = "Painting…";
    return;
  }
  if (job.state === "running") {
    const losses = job.losses || {};
    const parts = [`Step ${job.step} / ${job.total}`];
    if (job.scales > 1) parts.push(`scale ${job.scale}/${job.scales} (${job.width}×${job.height})`);
    if ("style" in losses) parts.push(`style ${fmt(losses.style)}`);
    if ("content" in losses) parts.push(`content ${fmt(losses.content)}`);
    parts.push(`${Math.round(job.elapsed)} s`);
    setProgress(job.step, job.total, parts.join(" · "));
    setStatus(job.cancelling ? "Cancelling…" : `Painting… ${Math.round(100 * (job.progress || 0))}%`);
    if (job.step > 0) $("live-placeholder").textContent = "Painting…";
  }
}

async function onJobEnd(job) {
  if (job.id !== state.job) return;
  const id = state.job;
  state.job = null;
  $("cancel").hidden = true;
  const video = job.method ? job.method === "video" : state.video;
  const unit = video ? "frames" : "steps";
  if (job.state === "done") {
    setProgress(job.total, job.total, `${video ? "Frame" : "Step"} ${job.total} / ${job.total}`);
    try {
      const response = await fetch(`/v1/jobs/${encodeURIComponent(id)}/result`);
      if (!response.ok) throw new Error(await errorText(response));
      const blob = await response.blob();
      finish(true);
      showResult(blob, video ? `Video: ${job.total} frames in ${seconds(job.elapsed)} s${job.model ? ` (${job.model})` : ""}.`
        : `Optimized: ${job.total} steps in ${Math.round(job.elapsed)} s.`, video);
      setStatus("Done.");
    } catch (err) {
      finish(false);
      showError(`Could not fetch the result: ${err.message || err}`);
    }
  } else if (job.state === "cancelled") {
    finish(false, true);
    setStatus("Cancelled.");
    if (job.step !== undefined) $("progress-text").textContent = `Cancelled after ${job.step} of ${job.total} ${unit}.`;
  } else {
    finish(false);
    showError(job.error || "The job failed.");
    setStatus("Failed.");
  }
}

function finish(ok, keepStage) {
  closeEvents();
  setBusy(false);
  $("cancel").hidden = true;
  if (!ok && !keepStage) showStage(state.resultUrl ? "result" : "empty");
}

async function cancelJob() {
  const id = state.job;
  if (!id) return;
  $("cancel").disabled = true;
  setStatus("Cancelling…");
  try {
    const response = await fetch(`/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
    if (!response.ok && response.status !== 404) showError(await errorText(response));
    if (response.status === 404) onJobEnd({ id, state: "cancelled" });
  } catch (err) {
    showError(`Could not cancel: ${err.message || err}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Start

async function init() {
  setupDropzone();
  setupStyleUpload();
  document.querySelectorAll('input[name="method"]').forEach((r) => r.addEventListener("change", () => {
    state.userPickedMethod = true;
    updateControls();
  }));
  ["strength", "size", "steps", "stability"].forEach((id) => $(id).addEventListener("input", updateControls));
  $("go").addEventListener("click", paint);
  $("cancel").addEventListener("click", cancelJob);
  $("compare-slider").addEventListener("input", (e) => setCompare(Number(e.target.value)));

  $("method-optimize").checked = true;
  try {
    const [info, styles] = await Promise.all([
      fetch("/v1/info").then((r) => r.json()),
      fetch("/v1/styles").then((r) => r.json()),
    ]);
    state.limits = info.limits || state.limits;
    state.anyStyle = (info.methods || []).find((m) => m.style_image && m.auto && m.available
      && m.endpoint === "/v1/stylize") || null;
    state.styles = styles.styles || [];
    const size = $("size");
    size.max = String(state.limits.max_size);
    if (Number(size.value) > state.limits.max_size) size.value = String(state.limits.max_size);
    $("steps").max = String(state.limits.max_steps);
    renderGallery();
    const first = state.styles.find((s) => s.fast_model) || state.styles.find((s) => s.name === "starry-night")
      || state.styles[0];
    if (first) selectStyle(first.name);
  } catch (err) {
    showError(`Could not load the styles: ${err.message || err}`);
  }
  showStage("empty");
  updateControls();
  document.body.dataset.ready = "true";
}

init();
