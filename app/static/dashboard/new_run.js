// The new-run form: every run parameter, the dataset picked from thumbnails, the service's own
// validation messages shown next to the field they are about.
import { api, el, errorText, fieldOf, ready, showError } from "./api.js";
import { THUMBNAIL_POINTS, drawThumbnail } from "./plane.js";
import { MAX_PAGE_SIZE } from "./vocabulary.js";

const form = document.getElementById("run-form");
const choices = document.getElementById("dataset-choices");
const wanted = new URLSearchParams(location.search).get("dataset") ?? "curve";
const NUMBERS = ["epochs", "learning_rate", "momentum", "validation_split", "checkpoint_every", "log_every"];
const OPTIONAL_NUMBERS = ["batch_size", "seed"];

function architecture() {
  return form.querySelector("input[name=architecture]:checked").value;
}

function showMlpFields() {
  document.getElementById("mlp-fields").hidden = architecture() !== "mlp";
}

// A number where the text is one; otherwise the text itself, for the service to explain.
function number(text) {
  const value = Number(text);
  return text.trim() !== "" && Number.isFinite(value) ? value : text;
}

function body() {
  const data = new FormData(form);
  const run = { dataset: data.get("dataset") ?? "", architecture: architecture() };
  for (const name of NUMBERS) {
    const text = String(data.get(name) ?? "");
    if (text.trim() !== "") run[name] = number(text);
  }
  for (const name of OPTIONAL_NUMBERS) {
    const text = String(data.get(name) ?? "");
    run[name] = text.trim() === "" ? null : number(text);
  }
  run.optimizer = data.get("optimizer");
  run.loss = data.get("loss");
  run.device = data.get("device");
  if (run.architecture === "mlp") {
    run.hidden_layers = String(data.get("hidden_layers"))
      .split(/[,\s]+/)
      .filter(Boolean)
      .map(number);
    run.activation = data.get("activation");
  }
  return run;
}

function clearErrors() {
  for (const box of form.querySelectorAll(".error")) box.textContent = "";
  for (const field of form.querySelectorAll(".field.invalid")) field.classList.remove("invalid");
}

function showFieldError(name, message) {
  const box = document.getElementById(`f-${name}-error`);
  if (!box) return false;
  box.textContent = box.textContent ? `${box.textContent}\n${message}` : message;
  const field = box.closest(".field");
  field?.classList.add("invalid");
  field?.querySelector("input, select")?.setAttribute("aria-invalid", "true");
  return true;
}

// The service names the field: in the location of a validation error, or as the first word of
// its message ("dataset: no dataset with id or name 'x'", "device 'cuda' was asked for …").
function showErrors(detail) {
  const unplaced = [];
  const items = Array.isArray(detail) ? detail : [{ msg: errorText(detail) }];
  for (const item of items) {
    let name = fieldOf(item.loc);
    let message = item.msg;
    if (!name) {
      const match = /^([a-z_]+)\b[:\s]/.exec(message);
      if (match && document.getElementById(`f-${match[1]}-error`)) name = match[1];
    }
    if (name && Array.isArray(item.loc) && typeof item.loc.at(-1) === "number") {
      message = `width ${item.loc.at(-1) + 1}: ${message}`;
    }
    if (!name || !showFieldError(name, message)) unplaced.push(name ? `${name}: ${message}` : message);
  }
  document.getElementById("form-error").textContent = unplaced.join("\n");
  form.querySelector("[aria-invalid=true]")?.focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  const button = document.getElementById("start-run");
  button.disabled = true;
  try {
    const run = await api("/runs", { method: "POST", json: body() });
    location.href = `/ui/runs/${run.id}`;
  } catch (error) {
    if (error.detail !== undefined) showErrors(error.detail);
    else showError(error);
  } finally {
    button.disabled = false;
  }
});
for (const radio of form.querySelectorAll("input[name=architecture]")) {
  radio.addEventListener("change", showMlpFields);
}
showMlpFields();

async function loadDatasets() {
  const { data } = await api(`/datasets?limit=${MAX_PAGE_SIZE}`);
  const names = new Set(data.map((dataset) => dataset.name));
  const chosen = names.has(wanted) ? wanted : data[0]?.name;
  for (const dataset of data) {
    const canvas = el("canvas", { "aria-hidden": "true" });
    const radio = el("input", {
      type: "radio",
      name: "dataset",
      value: dataset.name,
      id: `dataset-${dataset.id}`,
      checked: dataset.name === chosen,
      "aria-label": `${dataset.name}, ${dataset.n_points} points`,
    });
    choices.append(
      el("label", { class: "choice", for: `dataset-${dataset.id}` }, radio, canvas,
        el("span", { text: dataset.name }),
        el("small", { class: "muted", text: `${dataset.n_points} points, ${dataset.source}` })),
    );
    api(`/datasets/${dataset.id}/points?max_points=${THUMBNAIL_POINTS}`).then(({ points }) => drawThumbnail(canvas, points)).catch(() => {});
  }
}

await ready;
try {
  await loadDatasets();
} catch (error) {
  showError(error);
}
