"""The studio's page: HTML, CSS and JavaScript served by studio.py.

Every user-supplied string reaches the page through `textContent` or an
attribute value, never `innerHTML`, and the Content-Security-Policy allows only
this script, so copy such as "<script>" is shown as text and never runs.
"""

HTML = """<!doctype html>
<html lang="zh">
<head>
<meta charset="utf-8">
<title>adgan studio</title>
<link rel="stylesheet" href="/studio.css">
<script src="/studio.js" defer></script>
</head>
<body>
<h1>adgan studio</h1>
<p id="error" role="alert" hidden></p>
<section>
  <h2>1. Product</h2>
  <label>Keywords <input id="prompt" maxlength="20000" placeholder="黑色羽绒服 / running shoes"></label>
  <label>Images <input id="count" type="number" min="1" max="8" value="4"></label>
  <label>Seed <input id="seed" type="number" min="0" value="0"></label>
  <button id="generate">Generate</button>
  <span id="users-box" hidden>
    <label>or a shopper <select id="user"></select></label>
    <button id="suggest">Suggest prompts</button>
  </span>
  <ol id="suggestions"></ol>
  <div id="candidates"></div>
</section>
<section>
  <h2>2. Creative</h2>
  <label>Template <select id="template"></select></label>
  <label>Size <select id="size"></select></label>
  <label>Headline <input id="headline" maxlength="20000"></label>
  <label>Price <input id="price" maxlength="200" placeholder="¥199"></label>
  <label>Button <input id="cta" maxlength="200" placeholder="立即购买 / Shop now"></label>
  <button id="compose" disabled>Compose</button>
  <div id="result" hidden>
    <img id="creative" alt="creative">
    <p><a id="download" download>Download PNG</a> · <a id="sidecar">sidecar JSON</a></p>
    <p id="creative-info"></p>
  </div>
</section>
<section>
  <h2>3. How did the ads do? (CTR)</h2>
  <input id="ctr-file" type="file" accept=".csv,text/csv">
  <button id="ctr-run">CTR report</button>
  <table id="ctr-table" hidden>
    <thead><tr><th>creative</th><th>impressions</th><th>clicks</th><th>CTR</th><th>95% interval</th><th>next share</th></tr></thead>
    <tbody></tbody>
  </table>
  <ul id="ctr-rejected"></ul>
  <img id="ctr-chart" alt="CTR chart" hidden>
</section>
<section>
  <h2>4. Score an image of your own</h2>
  <input id="upload" type="file">
  <button id="score-upload">Score against the keywords</button>
  <p id="upload-result"></p>
</section>
</body>
</html>
"""

CSS = """
body { font-family: sans-serif; margin: 1.5rem; max-width: 70rem; }
section { border-top: 1px solid #ddd; padding: 0.5rem 0 1rem; }
label { margin-right: 1rem; }
#error { background: #fde8e8; color: #8a1c1c; padding: 0.5rem; white-space: pre-wrap; }
#candidates { display: flex; flex-wrap: wrap; gap: 0.75rem; margin-top: 0.75rem; }
.candidate { border: 3px solid transparent; padding: 2px; cursor: pointer; text-align: center; }
.candidate.selected { border-color: #e07b28; }
.candidate img { width: 128px; height: 128px; image-rendering: auto; display: block; }
#creative { max-width: 540px; max-height: 540px; border: 1px solid #ccc; }
#suggestions li { cursor: pointer; margin: 0.25rem 0; }
.reason { color: #666; font-size: 0.85em; }
"""

JS = r"""
"use strict";
const state = { prompt: null, seed: null, numCandidates: 8 };
const $ = (id) => document.getElementById(id);

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function call(path, body) {
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data;
  try { data = await response.json(); } catch (e) { data = { error: response.statusText }; }
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function fill(select, values) {
  select.replaceChildren(...values.map((v) => { const o = document.createElement("option"); o.value = v; o.textContent = v; return o; }));
}

async function generate() {
  showError("");
  $("candidates").replaceChildren();
  $("compose").disabled = true;
  const text = $("prompt").value;
  try {
    const data = await call("/api/generate", { text, count: Number($("count").value), seed: Number($("seed").value) });
    data.candidates.forEach((c, i) => {
      const cell = document.createElement("div");
      cell.className = "candidate";
      cell.dataset.seed = String(c.seed);
      const img = document.createElement("img");
      img.src = "data:image/png;base64," + c.png;
      img.alt = "candidate " + (i + 1);
      const caption = document.createElement("div");
      caption.textContent = "score " + c.score.toFixed(2) + (c.accepted ? " ✓" : "") + " · seed " + c.seed;
      cell.append(img, caption);
      cell.addEventListener("click", () => {
        document.querySelectorAll(".candidate").forEach((e) => e.classList.remove("selected"));
        cell.classList.add("selected");
        state.prompt = text; state.seed = c.seed; state.numCandidates = data.num_candidates;
        if (!$("headline").value) $("headline").value = text;
        $("compose").disabled = false;
      });
      $("candidates").append(cell);
    });
  } catch (e) { showError(e.message); }
}

async function compose() {
  showError("");
  try {
    const data = await call("/api/compose", {
      prompt: state.prompt, seed: state.seed, num_candidates: state.numCandidates,
      template: $("template").value, size: $("size").value,
      headline: $("headline").value, price: $("price").value, cta: $("cta").value,
    });
    $("creative").src = data.png_url;
    $("download").href = data.png_url + "?download=1";
    $("download").setAttribute("download", data.name + ".png");
    $("sidecar").href = data.sidecar_url;
    $("creative-info").textContent = "“" + data.sidecar.copy.headline + "” · " + data.sidecar.template + " " + data.sidecar.size + " · score " + data.sidecar.score.toFixed(2);
    $("result").hidden = false;
  } catch (e) { showError(e.message); }
}

async function suggest() {
  showError("");
  $("suggestions").replaceChildren();
  try {
    const data = await call("/api/user", { user: $("user").value });
    data.prompts.forEach((p) => {
      const item = document.createElement("li");
      const strong = document.createElement("strong");
      strong.textContent = p.prompt;
      const why = document.createElement("div");
      why.className = "reason";
      why.textContent = p.reasons.join("; ");
      item.append(strong, why);
      item.addEventListener("click", () => { $("prompt").value = p.prompt; generate(); });
      $("suggestions").append(item);
    });
  } catch (e) { showError(e.message); }
}

async function scoreUpload() {
  showError("");
  $("upload-result").textContent = "";
  const file = $("upload").files[0];
  if (!file) { showError("choose a file to score first"); return; }
  const image = await new Promise((resolve) => { const r = new FileReader(); r.onload = () => resolve(r.result); r.readAsDataURL(file); });
  try {
    const data = await call("/api/score", { text: $("prompt").value, image });
    $("upload-result").textContent = "score " + data.score.toFixed(3) + " for “" + data.text + "”";
  } catch (e) { showError(e.message); }
}

function percent(x) { return (100 * x).toFixed(2) + "%"; }

async function ctrReport() {
  showError("");
  const file = $("ctr-file").files[0];
  if (!file) { showError("choose an impressions CSV first"); return; }
  try {
    const data = await call("/api/ctr", { csv: await file.text() });
    const report = data.report;
    $("ctr-table").tBodies[0].replaceChildren(...report.creatives.map((c) => {
      const row = document.createElement("tr");
      for (const value of [c.creative, c.impressions.toLocaleString(), c.clicks.toLocaleString(), percent(c.ctr),
                           percent(c.ctr_low) + " – " + percent(c.ctr_high), percent(report.next_allocation[c.creative])]) {
        const cell = document.createElement("td"); cell.textContent = value; row.append(cell);
      }
      return row;
    }));
    $("ctr-rejected").replaceChildren(...report.rejected.map((r) => {
      const item = document.createElement("li"); item.textContent = "line " + r.line + " rejected: " + r.reason; return item;
    }));
    $("ctr-chart").src = "data:image/png;base64," + data.chart;
    $("ctr-table").hidden = false; $("ctr-chart").hidden = false;
  } catch (e) { showError(e.message); }
}

window.addEventListener("DOMContentLoaded", async () => {
  $("generate").addEventListener("click", generate);
  $("compose").addEventListener("click", compose);
  $("suggest").addEventListener("click", suggest);
  $("score-upload").addEventListener("click", scoreUpload);
  $("ctr-run").addEventListener("click", ctrReport);
  const info = await call("/api/info");
  fill($("template"), info.templates);
  fill($("size"), info.sizes);
  if (info.users.length) { fill($("user"), info.users); $("users-box").hidden = false; }
  document.body.dataset.ready = "1";
});
"""
