// The form that starts a sweep: settings every run shares and the grid's axes, each a run
// parameter and its values, posted to POST /sweeps as they are; the service checks them (every
// run, before any starts) and its message is shown as it writes it.
import { api, el, errorText, showError } from "./api.js";
import { MAX_PAGE_SIZE } from "./vocabulary.js";

const form = document.getElementById("sweep-form");
// Read as attributes: a form's `dataset` is its control named "dataset".
const example = JSON.parse(form.getAttribute("data-example"));
const parameters = JSON.parse(form.getAttribute("data-parameters"));
const KINDS = {
  base: { box: document.getElementById("sweep-base"), name: "setting", value: "value" },
  grid: { box: document.getElementById("sweep-grid"), name: "axis", value: "values" },
};

// One value as JSON reads it (0.003, [64, 64], "relu", null), else the text itself (relu).
function parseValue(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text.trim();
  }
}

// An axis' values: the text as the items of a JSON list ("0.003, 0.03", "[8], [64, 64]"),
// else the pieces between commas, each read as one value ("relu, tanh").
function parseValues(text) {
  try {
    return JSON.parse(`[${text}]`);
  } catch {
    return text.split(",").map((piece) => parseValue(piece)).filter((value) => value !== "");
  }
}

function written(value) {
  return typeof value === "string" ? value : JSON.stringify(value).replaceAll(",", ", ");
}

function addRow(kind, parameter = "", text = "") {
  const { box } = KINDS[kind];
  const select = el("select", {}, ...parameters.map((name) => el("option", { value: name, text: name })));
  const used = new Set([...rows("base"), ...rows("grid")].map(([name]) => name));
  select.value = parameter || (parameters.find((name) => !used.has(name)) ?? parameters[0]);
  const input = el("input", { type: "text", value: text, oninput: showCount });
  const remove = el("button", {
    type: "button",
    text: "Remove",
    onclick: () => {
      row.remove();
      relabel();
      showCount();
    },
  });
  const row = el("div", { class: "sweep-row", "data-kind": kind }, select, input, remove);
  box.append(row);
  relabel();
  return row;
}

// Each row's controls say which row they are in, for whoever cannot see the layout.
function relabel() {
  for (const [kind, { box, name, value }] of Object.entries(KINDS)) {
    [...box.children].forEach((row, index) => {
      const [select, input, remove] = row.children;
      select.setAttribute("aria-label", `${name} ${index + 1}: parameter`);
      input.setAttribute("aria-label", `${name} ${index + 1}: ${value}`);
      remove.setAttribute("aria-label", `remove ${name} ${index + 1}`);
      row.dataset.kind = kind;
    });
  }
}

function rows(kind) {
  return [...KINDS[kind].box.children].map((row) => [row.children[0].value, row.children[1].value]);
}

function showCount() {
  const sizes = rows("grid").map(([, text]) => parseValues(text).length);
  const total = sizes.reduce((product, size) => product * size, 1);
  document.getElementById("sweep-count").textContent = sizes.length
    ? `${total} run${total === 1 ? "" : "s"}${sizes.length > 1 ? ` (${sizes.join(" x ")})` : ""}`
    : "Add an axis: a sweep varies at least one parameter.";
}

// The request body; a parameter named twice is the one mistake JSON cannot carry to the
// service, so it is caught here.
function body() {
  const sweep = { dataset: document.getElementById("s-dataset").value, base: {}, grid: {} };
  const name = document.getElementById("s-name").value.trim();
  if (name) sweep.name = name;
  for (const [kind, read] of [["base", parseValue], ["grid", parseValues]]) {
    for (const [parameter, text] of rows(kind)) {
      if (parameter in sweep.base || parameter in sweep.grid) {
        throw new Error(`${parameter} is given twice; give it once, in the grid or for every run`);
      }
      sweep[kind][parameter] = read(text);
    }
  }
  return sweep;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const box = document.getElementById("sweep-form-error");
  const button = document.getElementById("start-sweep");
  box.textContent = "";
  button.disabled = true;
  try {
    const sweep = await api("/sweeps", { method: "POST", json: body() });
    location.href = `/ui/sweeps/${sweep.id}`;
  } catch (error) {
    box.textContent = error.detail !== undefined ? errorText(error.detail) : error.message;
  } finally {
    button.disabled = false;
  }
});
document.getElementById("add-base").addEventListener("click", () => addRow("base").children[1].focus());
document.getElementById("add-axis").addEventListener("click", () => {
  addRow("grid").children[1].focus();
  showCount();
});

for (const [parameter, value] of Object.entries(example.base)) addRow("base", parameter, written(value));
for (const [parameter, values] of Object.entries(example.grid)) {
  addRow("grid", parameter, values.map(written).join(", "));
}
showCount();

export async function loadDatasets() {
  try {
    const { data } = await api(`/datasets?limit=${MAX_PAGE_SIZE}`);
    const select = document.getElementById("s-dataset");
    select.replaceChildren(...data.map((dataset) => el("option", { value: dataset.name, text: dataset.name })));
    select.value = data.some((dataset) => dataset.name === example.dataset) ? example.dataset : (data[0]?.name ?? "");
  } catch (error) {
    showError(error);
  }
}
