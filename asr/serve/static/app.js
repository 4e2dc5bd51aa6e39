// The page of `asr serve`: upload a file to /v1/audio/transcriptions, or stream the microphone
// as 16 kHz 16-bit PCM over the WebSocket /v1/stream (protocol: docs/serving.md).
"use strict";

const RATE = 16000;
const $ = (id) => document.getElementById(id);
const status = (text) => { $("status").textContent = text; };
window.asrLog = [];  // every stream message, for tests and curious users
let modelName = "";
let mic = null;

function authHeaders() {
  const key = $("key").value.trim();
  return key ? { Authorization: "Bearer " + key } : {};
}

function seconds(t) { return t.toFixed(2); }

function showWords(table, words) {
  table.replaceChildren();
  const head = table.insertRow();
  for (const h of ["word", "start (s)", "end (s)"]) head.insertCell().textContent = h;
  for (const w of words || []) {
    const row = table.insertRow();
    row.insertCell().textContent = w.word;
    row.insertCell().textContent = seconds(w.start);
    row.insertCell().textContent = seconds(w.end);
  }
}

async function upload() {
  const file = $("file").files[0];
  if (!file) { status("choose a file first"); return; }
  const form = new FormData();
  form.append("file", file);
  form.append("model", modelName);
  form.append("response_format", "verbose_json");
  form.append("timestamp_granularities[]", "word");
  status("transcribing " + file.name + " …");
  const start = performance.now();
  try {
    const response = await fetch("/v1/audio/transcriptions", { method: "POST", headers: authHeaders(), body: form });
    const body = await response.json();
    if (!response.ok) { status("error: " + body.error.message); return; }
    $("upload-text").textContent = body.text;
    showWords($("upload-words"), body.words);
    status(`transcribed ${seconds(body.duration)} s of audio in ${seconds((performance.now() - start) / 1000)} s`);
  } catch (e) {
    status("error: " + e);
  }
}

// Linear-interpolation resampler to 16 kHz, for browsers whose AudioContext cannot run at 16 kHz.
function resampler(from) {
  if (from === RATE) return (x) => x;
  let pos = 0, last = 0;  // pos: where the next output sample falls, in input samples
  return (x) => {
    const step = from / RATE, out = [];
    for (; pos < x.length; pos += step) {
      const i = Math.floor(pos), f = pos - i;
      const a = i === 0 ? last : x[i - 1], b = x[i];
      out.push(a + (b - a) * f);
    }
    pos -= x.length;
    last = x[x.length - 1];
    return Float32Array.from(out);
  };
}

function int16(samples) {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32768)));
  return out;
}

function addFinal(message) {
  const div = document.createElement("div");
  for (const w of message.words) {
    const span = document.createElement("span");
    span.className = "word";
    const times = document.createElement("small");
    times.textContent = `${seconds(w.start)}–${seconds(w.end)}`;
    span.append(w.word + " ", times);
    div.append(span);
  }
  $("finals").append(div);
  const text = $("mic-text");
  text.textContent = (text.textContent + " " + message.text).trim();
  $("partial").textContent = "";
}

function onMessage(event) {
  const message = JSON.parse(event.data);
  window.asrLog.push(message);
  if (message.type === "ready") status(`listening (${message.mode}) …`);
  else if (message.type === "partial") $("partial").textContent = message.text;
  else if (message.type === "final") addFinal(message);
  else if (message.type === "done") { status("stopped"); mic && mic.ws.close(); mic = null; $("record").disabled = false; }
  else if (message.type === "error") status("error: " + message.error.message);
}

async function audioGraph(stream) {
  // 16 kHz straight from the browser when it can resample the microphone; else in resampler()
  for (const options of [{ sampleRate: RATE }, {}]) {
    const ctx = new AudioContext(options);
    try {
      await ctx.audioWorklet.addModule("/static/worklet.js");
      const source = ctx.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(ctx, "pcm-capture");
      source.connect(node);
      node.connect(ctx.destination);  // silent: keeps the node pulled by the graph
      return { ctx, source, node };
    } catch (e) {
      await ctx.close();
      if (!options.sampleRate) throw e;
    }
  }
}

async function record() {
  $("record").disabled = true;
  $("partial").textContent = $("mic-text").textContent = "";
  $("finals").replaceChildren();
  try {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/v1/stream`);
    ws.binaryType = "arraybuffer";
    ws.onmessage = onMessage;
    ws.onclose = () => { if (mic && mic.ws === ws) { status("connection closed"); stopAudio(); mic = null; $("record").disabled = false; } };
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error("cannot connect")); });
    ws.send(JSON.stringify({ type: "config", sample_rate: RATE, format: "s16le", api_key: $("key").value.trim() }));
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
    const graph = await audioGraph(stream);
    const resample = resampler(graph.ctx.sampleRate);
    graph.node.port.onmessage = (e) => { if (ws.readyState === WebSocket.OPEN) ws.send(int16(resample(e.data)).buffer); };
    mic = { ws, stream, ...graph };
    $("stop").disabled = false;
  } catch (e) {
    status("error: " + e.message);
    $("record").disabled = false;
  }
}

function stopAudio() {
  if (!mic) return;
  mic.node.port.onmessage = null;
  mic.source.disconnect();
  mic.node.disconnect();
  mic.stream.getTracks().forEach((t) => t.stop());
  mic.ctx.close();
}

function stop() {
  $("stop").disabled = true;
  if (!mic) return;
  stopAudio();
  status("finishing …");
  mic.ws.send(JSON.stringify({ type: "end" }));  // the server answers with the last final, then done
}

async function init() {
  $("key").value = sessionStorage.getItem("asr-key") || "";
  $("key").onchange = () => sessionStorage.setItem("asr-key", $("key").value.trim());
  $("upload").onclick = upload;
  $("record").onclick = record;
  $("stop").onclick = stop;
  try {
    const health = await (await fetch("/health")).json();
    modelName = health.model;
    $("model").textContent = `${health.model} (stream: ${health.stream_mode})`;
    status("ready");
  } catch (e) {
    status("cannot reach the server: " + e);
  }
}

init();
