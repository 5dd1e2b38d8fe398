// What every page shares: the JSON API with the key as a bearer token, the key prompt, the
// confirm dialog, and how numbers, dates and errors are written.

import { ARCHITECTURES } from "./vocabulary.js";

const KEY_ITEM = "pc-api-key";
const keyNeeded = document.body.dataset.keyNeeded; // "", "writes" or "reads"

export class ApiError extends Error {
  constructor(status, detail) {
    super(errorText(detail));
    this.status = status;
    this.detail = detail;
  }
}

function storedKey() {
  return localStorage.getItem(KEY_ITEM);
}

function authHeaders() {
  const key = storedKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function detailOf(response) {
  const text = await response.text();
  try {
    return JSON.parse(text).detail ?? text;
  } catch {
    return text || `${response.status} ${response.statusText}`;
  }
}

// fetch() against the service: JSON in and out, errors thrown as ApiError with the service's
// own detail, and a 401 brings the key prompt back.
export async function api(path, { method = "GET", json, body, signal, blob = false } = {}) {
  const headers = authHeaders();
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const response = await fetch(path, { method, headers, body, signal });
  if (!response.ok) {
    const detail = await detailOf(response);
    if (response.status === 401 && keyNeeded) {
      localStorage.removeItem(KEY_ITEM);
      showKeyState();
      askForKey("The key was not accepted. Give it again.");
    }
    throw new ApiError(response.status, detail);
  }
  if (response.status === 204) return null;
  if (blob) return response.blob();
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) return response.json();
  if (type.startsWith("text/")) return response.text();
  return response.blob();
}

// Where reads need the key, a plain link or <img> cannot send it: the file is fetched with it.
export async function fileUrl(path) {
  if (keyNeeded !== "reads") return path;
  return URL.createObjectURL(await api(path, { blob: true }));
}

export function linkFiles(root) {
  if (keyNeeded !== "reads") return;
  for (const link of root.querySelectorAll("a[data-file]:not([data-linked])")) {
    link.dataset.linked = "";
    link.addEventListener("click", async (event) => {
      event.preventDefault();
      try {
        const url = await fileUrl(link.getAttribute("href"));
        const opener = document.createElement("a");
        opener.href = url;
        opener.download = link.dataset.file;
        opener.click();
      } catch (error) {
        showError(error);
      }
    });
  }
}

// --- the key prompt -------------------------------------------------------------------

const keyDialog = document.getElementById("key-dialog");
let keyWaiters = [];

function showKeyState() {
  document.getElementById("key-status").hidden = !storedKey();
}

function settleKey() {
  const waiters = keyWaiters;
  keyWaiters = [];
  waiters.forEach((resolve) => resolve());
}

function askForKey(message = "") {
  document.getElementById("key-error").textContent = message;
  if (!keyDialog.open) keyDialog.showModal();
  document.getElementById("key-input").focus();
}

document.getElementById("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("key-input");
  const response = await fetch("/auth/check", {
    method: "POST",
    headers: { Authorization: `Bearer ${input.value}` },
  });
  if (response.status !== 204) {
    document.getElementById("key-error").textContent =
      response.status === 401 ? "This key was not accepted." : await detailOf(response);
    input.select();
    return;
  }
  localStorage.setItem(KEY_ITEM, input.value);
  input.value = "";
  keyDialog.close();
  showKeyState();
  settleKey();
});
keyDialog.addEventListener("cancel", (event) => {
  if (keyNeeded === "reads") event.preventDefault(); // nothing to show without it
});
keyDialog.addEventListener("close", () => {
  if (keyNeeded !== "reads") settleKey();
});
document.getElementById("key-skip")?.addEventListener("click", () => keyDialog.close());
document.getElementById("forget-key").addEventListener("click", () => {
  localStorage.removeItem(KEY_ITEM);
  showKeyState();
  askForKey();
});

// Resolves when the page may load its data: no key needed, a key kept from before, or given
// now (or, where only writes need it, the prompt put aside).
export const ready = new Promise((resolve) => {
  showKeyState();
  if (!keyNeeded || storedKey()) {
    resolve();
    return;
  }
  keyWaiters.push(resolve);
  askForKey();
});

// --- dialogs, errors ------------------------------------------------------------------

// A modal question: resolves true/false, or with the number typed when `number` is given.
export function confirmAction({ text, yes = "Yes", no = "Keep it", number = null }) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-yes").textContent = yes;
  document.getElementById("confirm-no").textContent = no;
  const field = document.getElementById("confirm-field");
  const input = document.getElementById("confirm-number");
  field.hidden = number === null;
  if (number !== null) {
    document.getElementById("confirm-label").textContent = number.label;
    input.value = number.value;
  }
  dialog.showModal();
  (number !== null ? input : document.getElementById("confirm-no")).focus();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        const yesAnswer = dialog.returnValue === "yes";
        resolve(yesAnswer && number !== null ? Number(input.value) : yesAnswer);
      },
      { once: true },
    );
  });
}

export function showError(error) {
  const box = document.getElementById("page-error");
  box.textContent = error ? (error.message ?? String(error)) : "";
}

// The service's error detail as a person reads it: a string as it is, field errors as
// "field: message" lines.
export function errorText(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => {
        const field = fieldOf(item.loc);
        return field ? `${field}: ${item.msg}` : item.msg;
      })
      .join("\n");
  }
  return JSON.stringify(detail);
}

// A body's errors are located under "body" and the architecture's schema (its tag).
const BODY_TAGS = new Set(["body", ...ARCHITECTURES]);

// The form field an error is about: loc ["body", "mlp", "hidden_layers", 0] is hidden_layers.
export function fieldOf(loc) {
  if (!Array.isArray(loc)) return "";
  const names = loc.filter((part) => typeof part === "string" && !BODY_TAGS.has(part));
  return names[0] ?? "";
}

// --- how things are written -----------------------------------------------------------

export function formatLoss(value) {
  if (value === null || value === undefined) return "–";
  return value < 0.001 ? value.toExponential(3) : value.toPrecision(4);
}

export function formatPercent(value) {
  return value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)}%`;
}

export function formatDate(text, { seconds = true } = {}) {
  if (!text) return "–";
  return new Date(text).toLocaleString(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: seconds ? "2-digit" : undefined,
  });
}

export function formatDuration(run) {
  if (!run.started_at) return "–";
  const end = run.finished_at ? new Date(run.finished_at) : new Date();
  const seconds = Math.max(0, (end - new Date(run.started_at)) / 1000);
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes} min ${Math.round(seconds % 60)} s` : `${(minutes / 60).toFixed(1)} h`;
}

export function describeModel(run) {
  const shape = [2, ...run.hidden_layers, 1].join("-");
  if (run.architecture === "simple") return "simple 2-1";
  return `${run.architecture} ${shape} ${run.activation}`;
}

export function badge(status) {
  const span = document.createElement("span");
  span.className = `badge ${status}`;
  span.textContent = status;
  return span;
}

// An element with children, so pages build their DOM without innerHTML (no escaping to forget).
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

// Run `tick` now and again after the delay it returns (ms; null stops), paused while the tab
// is hidden: each open page asks the service about once a second at most. `now()` runs it at
// once (after the tick in flight, if any).
export function every(tick) {
  let timer = null;
  let stopped = false;
  let running = false;
  let again = false;
  async function loop() {
    clearTimeout(timer);
    timer = null;
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    if (document.hidden) {
      document.addEventListener("visibilitychange", loop, { once: true });
      return;
    }
    running = true;
    let delay = null;
    try {
      delay = await tick();
    } catch (error) {
      showError(error);
      delay = 5000;
    }
    running = false;
    if (stopped) return;
    if (again) {
      again = false;
      loop();
    } else if (delay !== null) {
      timer = setTimeout(loop, delay);
    }
  }
  loop();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
    now: loop,
  };
}

// The server-sent events of GET /runs/{id}/events, read with fetch() so the key can go with
// them (EventSource cannot send a header). Resolves when the stream ends.
export async function streamEvents(path, onEvent, signal) {
  const response = await fetch(path, { headers: authHeaders(), signal });
  if (!response.ok) throw new ApiError(response.status, await detailOf(response));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(event, JSON.parse(data.join("\n")));
    }
  }
}
