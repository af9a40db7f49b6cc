"use strict";
// adgan studio. Every user-supplied string reaches the page through textContent or an
// attribute value, never innerHTML, and the Content-Security-Policy allows only this
// script, so copy such as "<script>" is shown as text and never runs.

const PREVIEW_DELAY_MS = 350; // debounce: one preview request per pause in typing
const state = { prompt: null, seed: null, numCandidates: 8, previews: {}, previewRequest: 0, timer: null };
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- errors, where the input is

function showError(message) {
  $("error").textContent = message || "";
  $("error").hidden = !message;
}

function setFieldError(field, message) {
  const box = $(field + "-error");
  box.textContent = message || "";
  box.hidden = !message;
  const input = $(field);
  if (input) input.setAttribute("aria-invalid", message ? "true" : "false");
}

function clearErrors(fields) {
  showError("");
  fields.forEach((field) => setFieldError(field, ""));
}

// The server's messages start with the name of what is wrong ("headline is 300 characters…",
// "count must be…"); such a message goes under that field, any other under `fallback`.
function reportError(error, fields, fallback) {
  const named = fields.find((field) => error.message.startsWith(field + " "));
  if (named || fallback) setFieldError(named || fallback, error.message);
  else showError(error.message);
}

async function call(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new Error("the studio server does not answer; is python -m ads.studio still running?");
  }
  let data;
  try { data = await response.json(); } catch (e) { data = { error: response.statusText }; }
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function fill(select, values) {
  select.replaceChildren(...values.map((v) => { const o = element("option", "", v); o.value = v; return o; }));
}

function pngUrl(base64) { return "data:image/png;base64," + base64; }

// ---------------------------------------------------------------- 1-2: product and candidates

function busy(on, text) {
  $("progress").hidden = !on;
  $("progress-text").textContent = text || "";
  $("candidates").setAttribute("aria-busy", on ? "true" : "false");
  $("generate").disabled = on;
}

// what the model read of the prompt: "drawn as: coat · black — ignored: 限时特惠 新款"
function showUnderstood(reading) {
  const line = $("understood");
  line.hidden = !reading;
  if (!reading) { line.replaceChildren(); return; }
  const parts = [element("strong", "", "drawn as: "), document.createTextNode(reading.drawn_as)];
  if (reading.ignored) parts.push(element("span", "ignored", " — ignored: " + reading.ignored));
  line.replaceChildren(...parts);
}

async function generate(event) {
  if (event) event.preventDefault();
  const fields = ["prompt", "count", "seed"];
  clearErrors(fields);
  const text = $("prompt").value;
  const count = Number($("count").value);
  $("candidates").replaceChildren(...Array.from({ length: Math.min(Math.max(count, 1), 8) }, () => element("div", "skeleton")));
  busy(true, "Drawing " + count + " candidate(s), each the best of " + state.numCandidates + " judged draws…");
  try {
    const data = await call("/api/generate", { text, count, seed: Number($("seed").value) });
    state.numCandidates = data.num_candidates;
    showUnderstood(data.understood);
    const cells = data.candidates.map((c, i) => candidateCell(c, i, text));
    $("candidates").replaceChildren(...cells);
    // the best-scored candidate starts chosen, so the preview shows at once
    const best = data.candidates.reduce((b, c, i) => (c.score > data.candidates[b].score ? i : b), 0);
    choose(cells[best], text, data.candidates[best].seed);
  } catch (e) {
    $("candidates").replaceChildren();
    showUnderstood(null);
    reportError(e, fields, "prompt");
  } finally {
    busy(false);
  }
}

function candidateCell(c, i, text) {
  const cell = element("button", "candidate");
  cell.type = "button";
  cell.dataset.seed = String(c.seed);
  cell.setAttribute("aria-pressed", "false");
  const img = element("img");
  img.src = pngUrl(c.png);
  img.alt = "candidate " + (i + 1) + " for " + text;
  const badge = element("span", "badge" + (c.accepted ? " passed" : ""), c.score.toFixed(2) + (c.accepted ? " ✓" : ""));
  badge.title = c.accepted ? "passed the gate" : "best of its draws; below the gate's threshold";
  cell.setAttribute("aria-label", "candidate " + (i + 1) + ", seed " + c.seed + ", score " + c.score.toFixed(2) + (c.accepted ? ", passed the gate" : ""));
  cell.append(img, badge, element("span", "seed", "seed " + c.seed));
  cell.addEventListener("click", () => choose(cell, text, c.seed));
  cell.addEventListener("keydown", moveFocus);
  return cell;
}

// arrow keys move between candidates (Enter or Space chooses, as on any button)
function moveFocus(event) {
  const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
  if (!step) return;
  const cells = Array.from(document.querySelectorAll(".candidate"));
  const next = cells[(cells.indexOf(event.currentTarget) + step + cells.length) % cells.length];
  next.focus();
  event.preventDefault();
}

function choose(cell, text, seed) {
  document.querySelectorAll(".candidate").forEach((e) => e.setAttribute("aria-pressed", "false"));
  cell.setAttribute("aria-pressed", "true");
  state.prompt = text;
  state.seed = seed;
  if (!$("headline").value.trim()) $("headline").value = text;
  previewNow();
}

// ---------------------------------------------------------------- 3-4: live preview

function copyRequest() {
  return { prompt: state.prompt, seed: state.seed, num_candidates: state.numCandidates,
           template: $("template").value, headline: $("headline").value,
           price: $("price").value, cta: $("cta").value };
}

function schedulePreview() {
  if (state.seed === null) return;
  clearTimeout(state.timer);
  $("preview-status").textContent = "Updating…";
  state.timer = setTimeout(previewNow, PREVIEW_DELAY_MS);
}

async function previewNow() {
  clearTimeout(state.timer);
  if (state.seed === null) return;
  const fields = ["headline", "price", "cta"];
  const request = ++state.previewRequest; // only the latest request's answer is shown
  $("preview-status").textContent = "Updating…";
  $("preview-status").classList.add("busy");
  $("download").disabled = true;
  try {
    const data = await call("/api/preview", copyRequest());
    if (request !== state.previewRequest) return;
    clearErrors(fields);
    state.previews = Object.fromEntries(data.previews.map((p) => [p.size, p]));
    showSizes(data);
    showPreview();
    $("creative-info").textContent = "“" + data.copy.headline + "”" + (data.copy.price ? " · " + data.copy.price : "") +
      " · " + data.copy.cta + " · " + $("template").value + " · score " + data.score.toFixed(2) +
      (data.accepted ? " (passed the gate)" : "") + " · label “" + data.ai_label + "”";
    $("preview-status").textContent = "Up to date";
    $("download").disabled = false;
  } catch (e) {
    if (request !== state.previewRequest) return;
    $("preview-status").textContent = "Not updated: fix the field marked below";
    reportError(e, fields, null);
  } finally {
    if (request === state.previewRequest) $("preview-status").classList.remove("busy");
  }
}

function showPreview() {
  const chosen = state.previews[$("size").value];
  if (!chosen) return;
  $("preview").src = pngUrl(chosen.png);
  $("preview").alt = "the creative at " + chosen.size;
  $("preview").hidden = false;
  $("stage-empty").hidden = true;
  document.querySelectorAll(".size").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.size === chosen.size)));
}

function showSizes(data) {
  $("preview-sizes").replaceChildren(...data.previews.map((p) => {
    const button = element("button", "size");
    button.type = "button";
    button.dataset.size = p.size;
    const img = element("img");
    img.src = pngUrl(p.png);
    img.alt = "the creative at " + p.size;
    const caption = element("span", "", p.size.replace("x", " × ") + (p.truncated.length ? " · cut: " + p.truncated.join(", ") : ""));
    button.append(img, caption);
    button.addEventListener("click", () => { $("size").value = p.size; showPreview(); });
    return button;
  }));
}

async function download() {
  showError("");
  $("download").disabled = true;
  try {
    const data = await call("/api/compose", { ...copyRequest(), size: $("size").value });
    const link = $("download-link");
    link.href = data.png_url + "?download=1";
    link.setAttribute("download", data.name + ".png");
    link.click();
    $("sidecar").href = data.sidecar_url;
    $("sidecar").hidden = false;
  } catch (e) {
    reportError(e, ["headline", "price", "cta"], null);
  } finally {
    $("download").disabled = false;
  }
}

// ---------------------------------------------------------------- shoppers, CTR, scoring

async function suggest() {
  clearErrors(["user"]);
  $("suggestions").replaceChildren();
  try {
    const data = await call("/api/user", { user: $("user").value });
    $("suggestions").replaceChildren(...data.prompts.map((p) => {
      const item = element("li");
      const button = element("button");
      button.type = "button";
      button.append(element("strong", "", p.prompt));
      button.addEventListener("click", () => { $("prompt").value = p.prompt; generate(); });
      item.append(button, element("div", "reason", p.reasons.join("; ")));
      return item;
    }));
  } catch (e) { setFieldError("user", e.message); }
}

function readAsDataUrl(file) {
  return new Promise((resolve) => { const r = new FileReader(); r.onload = () => resolve(r.result); r.readAsDataURL(file); });
}

async function scoreUpload() {
  clearErrors(["upload"]);
  $("upload-result").textContent = "";
  const file = $("upload").files[0];
  if (!file) { setFieldError("upload", "choose an image file to score first"); return; }
  try {
    const data = await call("/api/score", { text: $("prompt").value, image: await readAsDataUrl(file) });
    $("upload-result").textContent = "score " + data.score.toFixed(3) + " for “" + data.text + "”";
  } catch (e) {
    reportError(e, [], e.message.startsWith("type some keywords") ? "prompt" : "upload");
  }
}

function percent(x) { return (100 * x).toFixed(2) + "%"; }

async function ctrReport() {
  clearErrors(["ctr-file"]);
  const file = $("ctr-file").files[0];
  if (!file) { setFieldError("ctr-file", "choose an impressions CSV first"); return; }
  try {
    const data = await call("/api/ctr", { csv: await file.text() });
    const report = data.report;
    $("ctr-table").tBodies[0].replaceChildren(...report.creatives.map((c) => {
      const row = element("tr");
      for (const value of [c.creative, c.impressions.toLocaleString("en"), c.clicks.toLocaleString("en"), percent(c.ctr),
                           percent(c.ctr_low) + " – " + percent(c.ctr_high), percent(report.next_allocation[c.creative])]) {
        row.append(element("td", "", value));
      }
      return row;
    }));
    $("ctr-rejected").replaceChildren(...report.rejected.map((r) => element("li", "", "line " + r.line + " rejected: " + r.reason)));
    $("ctr-chart").src = pngUrl(data.chart);
    $("ctr-table").hidden = false;
    $("ctr-chart").hidden = false;
  } catch (e) { setFieldError("ctr-file", e.message); }
}

// ---------------------------------------------------------------- start

window.addEventListener("DOMContentLoaded", async () => {
  $("product-form").addEventListener("submit", generate);
  $("download").addEventListener("click", download);
  $("suggest").addEventListener("click", suggest);
  $("score-upload").addEventListener("click", scoreUpload);
  $("ctr-run").addEventListener("click", ctrReport);
  for (const id of ["headline", "price", "cta"]) $(id).addEventListener("input", schedulePreview);
  $("template").addEventListener("change", previewNow);
  $("size").addEventListener("change", showPreview);
  try {
    const info = await call("/api/info");
    fill($("template"), info.templates);
    fill($("size"), info.sizes);
    state.numCandidates = info.num_candidates;
    $("model-info").textContent = "model: " + info.image_size + " px, shown at " + info.product_size +
      " px (" + info.upsampler + " up-sampler) · gate: best of " + info.num_candidates + " draws";
    if (info.users.length) { fill($("user"), info.users); $("users-box").hidden = false; }
  } catch (e) { showError(e.message); }
  document.body.dataset.ready = "1";
});
