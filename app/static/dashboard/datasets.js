// Datasets: the gallery, an upload (file picker or drag and drop) and the generator with a
// preview. The service's messages are shown as it writes them.
import { api, confirmAction, el, errorText, fieldOf, linkFiles, ready, showError } from "./api.js";
import { Plane, THUMBNAIL_POINTS, drawThumbnail } from "./plane.js";
import { MAX_PAGE_SIZE } from "./vocabulary.js";

const gallery = document.getElementById("gallery");
const uploadForm = document.getElementById("upload-form");
const fileInput = document.getElementById("upload-file");
const dropzone = document.getElementById("dropzone");
const generateForm = document.getElementById("generate-form");
const preview = new Plane(document.getElementById("preview"));

function card(dataset) {
  const canvas = el("canvas", { "aria-hidden": "true" });
  const counts = dataset.class_counts;
  const actions = el(
    "div",
    { class: "actions", style: "display:flex;gap:.35rem;flex-wrap:wrap" },
    el("a", { class: "button primary", href: `/ui/new?dataset=${encodeURIComponent(dataset.name)}`, text: "Train on it" }),
    el("a", { class: "button", href: `/datasets/${dataset.id}/csv`, "data-file": `${dataset.name}.csv`, text: "CSV" }),
  );
  if (dataset.source !== "builtin") {
    actions.append(
      el("button", {
        type: "button",
        class: "danger",
        text: "Delete",
        "aria-label": `delete dataset ${dataset.name}`,
        onclick: () => remove(dataset),
      }),
    );
  }
  const node = el(
    "article",
    { class: "card", "data-dataset": dataset.name },
    canvas,
    el("h3", { text: dataset.name }),
    el("p", {
      class: "small muted",
      text: `${dataset.n_points} points (${counts["0"]} label 0, ${counts["1"]} label 1), ${dataset.source}`,
    }),
    actions,
  );
  api(`/datasets/${dataset.id}/points?max_points=${THUMBNAIL_POINTS}`).then(({ points }) => drawThumbnail(canvas, points)).catch(() => {});
  linkFiles(node);
  return node;
}

async function loadGallery() {
  const { data } = await api(`/datasets?limit=${MAX_PAGE_SIZE}`);
  gallery.replaceChildren(...data.map(card));
}

async function remove(dataset) {
  const sure = await confirmAction({ text: `Delete dataset '${dataset.name}'?`, yes: "Delete" });
  if (!sure) return;
  try {
    await api(`/datasets/${dataset.id}`, { method: "DELETE" });
    showError(null);
    await loadGallery();
  } catch (error) {
    showError(error);
  }
}

// --- upload ----------------------------------------------------------------------------

async function upload() {
  const box = document.getElementById("upload-error");
  box.textContent = "";
  box.classList.add("error");
  const file = fileInput.files[0];
  if (!file) {
    box.textContent = "Choose a CSV file first.";
    return;
  }
  const form = new FormData();
  form.append("file", file, file.name);
  const name = document.getElementById("upload-name").value.trim();
  if (name) form.append("name", name);
  try {
    const dataset = await api("/datasets", { method: "POST", body: form });
    box.classList.remove("error");
    box.textContent = `Uploaded '${dataset.name}': ${dataset.n_points} points.`;
    uploadForm.reset();
    await loadGallery();
  } catch (error) {
    box.textContent = error.detail !== undefined ? errorText(error.detail) : error.message;
  }
}

uploadForm.addEventListener("submit", (event) => {
  event.preventDefault();
  upload();
});
for (const name of ["dragenter", "dragover"]) {
  dropzone.addEventListener(name, (event) => {
    event.preventDefault();
    dropzone.classList.add("over");
  });
}
dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropzone.classList.remove("over");
  const file = event.dataTransfer?.files?.[0];
  if (!file) return;
  const files = new DataTransfer();
  files.items.add(file);
  fileInput.files = files.files;
  upload();
});

// --- generate --------------------------------------------------------------------------

function recipe() {
  const data = new FormData(generateForm);
  const numberOr = (text) => (text.trim() !== "" && Number.isFinite(Number(text)) ? Number(text) : text);
  const noise = String(data.get("noise")).trim();
  return {
    kind: data.get("kind"),
    n: numberOr(String(data.get("n"))),
    noise: noise === "" ? null : numberOr(noise),
    seed: numberOr(String(data.get("seed"))),
  };
}

const RECIPE_FIELDS = ["kind", "n", "noise", "seed"];

function clearGenerateErrors(fields = [...RECIPE_FIELDS, "name"]) {
  for (const name of fields) document.getElementById(`g-${name}-error`).textContent = "";
  document.getElementById("generate-error").textContent = "";
}

function showGenerateErrors(error) {
  clearGenerateErrors();
  const unplaced = [];
  const items = Array.isArray(error.detail) ? error.detail : [{ msg: error.message }];
  for (const item of items) {
    let name = fieldOf(item.loc);
    if (!name) name = /^([a-z_]+):/.exec(item.msg ?? "")?.[1] ?? "";
    const box = document.getElementById(`g-${name}-error`);
    if (box) box.textContent = item.msg;
    else unplaced.push(item.msg);
  }
  document.getElementById("generate-error").textContent = unplaced.join("\n");
}

let previewTimer = null;
async function showPreview() {
  try {
    const answer = await api("/datasets/generate/preview", { method: "POST", json: recipe() });
    // Only the recipe's own messages: a refused name stays until the next try to create.
    for (const name of RECIPE_FIELDS) document.getElementById(`g-${name}-error`).textContent = "";
    preview.bounds = null;
    preview.setPoints(answer.points);
    const p = answer.params;
    document.getElementById("preview-note").textContent =
      `${p.kind}: ${p.n} points, noise ${p.noise}, seed ${p.seed} (not stored yet)`;
  } catch (error) {
    showGenerateErrors(error);
  }
}

generateForm.addEventListener("input", (event) => {
  if (event.target.name === "name") return;
  clearTimeout(previewTimer);
  previewTimer = setTimeout(showPreview, 300);
});
document.getElementById("preview-button").addEventListener("click", showPreview);
generateForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = document.getElementById("g-name").value.trim();
  try {
    const dataset = await api("/datasets/generate", { method: "POST", json: { ...recipe(), name } });
    clearGenerateErrors();
    document.getElementById("preview-note").textContent = `Created '${dataset.name}'.`;
    await loadGallery();
  } catch (error) {
    showGenerateErrors(error);
  }
});

await ready;
try {
  await loadGallery();
  await showPreview();
} catch (error) {
  showError(error);
}
