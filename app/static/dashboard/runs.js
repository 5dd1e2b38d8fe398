// The runs table: filtered, paginated, live while runs train, with cancel, resume and delete.
import {
  api, badge, confirmAction, describeModel, el, every, formatDate, formatDuration, formatLoss,
  formatPercent, ready, showError,
} from "./api.js";
import { ENDED, MAX_PAGE_SIZE } from "./vocabulary.js";

const PAGE_SIZE = 20;
const query = new URLSearchParams(location.search);
const state = {
  status: query.get("status") ?? "",
  dataset: query.get("dataset") ?? "",
  page: Math.max(0, Number(query.get("page") ?? 0) || 0),
};
const selected = new Set();
const statusSelect = document.getElementById("filter-status");
const datasetSelect = document.getElementById("filter-dataset");
const body = document.getElementById("runs-body");

function remember() {
  const params = new URLSearchParams();
  if (state.status) params.set("status", state.status);
  if (state.dataset) params.set("dataset", state.dataset);
  if (state.page) params.set("page", state.page);
  history.replaceState(null, "", params.size ? `?${params}` : location.pathname);
}

async function act(run, action) {
  try {
    if (action === "cancel") {
      await api(`/runs/${run.id}/cancel`, { method: "POST" });
    } else if (action === "resume") {
      const epochs = await confirmAction({
        text: `Resume run ${run.id} from its last checkpoint.`,
        yes: "Resume",
        no: "Not now",
        number: { label: "Epochs more", value: run.requested_epochs },
      });
      if (!epochs) return;
      await api(`/runs/${run.id}/resume`, { method: "POST", json: { epochs } });
    } else if (action === "delete") {
      const sure = await confirmAction({
        text: `Delete run ${run.id}, its history and its checkpoint files? This cannot be undone.`,
        yes: "Delete",
      });
      if (!sure) return;
      await api(`/runs/${run.id}`, { method: "DELETE" });
      selected.delete(run.id);
    }
    showError(null);
  } catch (error) {
    showError(error);
  }
  poller.now();
}

function row(run) {
  const active = !ENDED.has(run.status);
  const checkbox = el("input", {
    type: "checkbox",
    "aria-label": `select run ${run.id} for comparing`,
    checked: selected.has(run.id),
    onchange: (event) => {
      if (event.target.checked) selected.add(run.id);
      else selected.delete(run.id);
      updateCompare();
    },
  });
  const progress = el("progress", {
    max: run.epochs,
    value: run.epoch,
    "aria-label": `run ${run.id}: epoch ${run.epoch} of ${run.epochs}`,
  });
  const actions = el("div", { class: "actions" });
  if (active) {
    actions.append(
      el("button", {
        type: "button",
        text: run.cancel_requested ? "Cancelling…" : "Cancel",
        disabled: run.cancel_requested,
        "aria-label": `cancel run ${run.id}`,
        onclick: () => act(run, "cancel"),
      }),
    );
  } else {
    actions.append(
      el("button", { type: "button", text: "Resume", "aria-label": `resume run ${run.id}`, onclick: () => act(run, "resume") }),
    );
  }
  actions.append(
    el("button", { type: "button", class: "danger", text: "Delete", "aria-label": `delete run ${run.id}`, onclick: () => act(run, "delete") }),
  );
  const loss = run.final_loss ?? run.loss;
  const status = badge(run.status);
  if (run.error) status.title = run.error; // why it failed, on hover; its page says it in full
  const cells = [
    ["", checkbox],
    ["Run", el("a", { href: `/ui/runs/${run.id}`, text: `#${run.id}` }), "num"],
    ["Status", status],
    ["Dataset", run.dataset],
    ["Model", modelWords(run)],
    ["Optimizer", run.optimizer],
    ["Learning rate", String(run.learning_rate), "num"],
    ["Epoch", el("div", { class: "epoch" }, progress, `${run.epoch.toLocaleString()} / ${run.epochs.toLocaleString()}`)],
    ["Loss", formatLoss(loss), "num"],
    ["Accuracy", formatPercent(run.accuracy), "num"],
    ["Device", run.device_used ?? run.device],
    ["Duration", formatDuration(run), "num"],
    ["Created", formatDate(run.created_at, { seconds: false })],
    ["", actions],
  ];
  // data-label: on a phone each row is a card, and each value says what it is.
  return el(
    "tr",
    { "data-run": run.id, "data-status": run.status },
    ...cells.map(([label, value, kind]) => el("td", { class: kind, "data-label": label || null }, value)),
  );
}

// The model as words that wrap at their spaces: a shape (2-64-64-1) is not cut, but a deep
// one (2-128-128-64-64-32-1) may wrap after a layer, or it would widen the table.
const DEEP_SHAPE = 12; // characters

function modelWords(run) {
  const words = describeModel(run).split(" ");
  return el(
    "span",
    {},
    ...words.flatMap((word, index) => {
      const parts = word.length > DEEP_SHAPE ? word.split(/(?<=-)/).flatMap((part) => [part, el("wbr")]) : [word];
      return [index ? " " : null, el("span", { class: "word" }, ...parts)];
    }),
  );
}

function controlName(control) {
  return control.getAttribute("aria-label") ?? control.textContent;
}

function updateCompare() {
  const button = document.getElementById("compare-selected");
  button.disabled = selected.size < 2;
  button.textContent = selected.size ? `Compare selected (${selected.size})` : "Compare selected";
}

async function refresh() {
  const params = new URLSearchParams({ limit: PAGE_SIZE, offset: state.page * PAGE_SIZE });
  if (state.status) params.set("status", state.status);
  if (state.dataset) params.set("dataset", state.dataset);
  const { data, count } = await api(`/runs?${params}`);
  if (!data.length && state.page > 0 && count > 0) {
    state.page = Math.floor((count - 1) / PAGE_SIZE);
    remember();
    return 0;
  }
  // The rows are drawn again every second while runs train: whoever is tabbing through them
  // keeps their place.
  const focused = body.contains(document.activeElement) ? document.activeElement : null;
  const place = focused && [focused.closest("tr")?.dataset.run, controlName(focused)];
  body.replaceChildren(...data.map(row));
  if (place) {
    const again = [...(body.querySelector(`tr[data-run="${place[0]}"]`)?.querySelectorAll("a, button, input") ?? [])]
      .find((control) => controlName(control) === place[1]);
    again?.focus();
  }
  document.getElementById("runs-empty").hidden = count > 0;
  const first = count ? state.page * PAGE_SIZE + 1 : 0;
  document.getElementById("page-info").textContent =
    `Runs ${first}–${state.page * PAGE_SIZE + data.length} of ${count}`;
  document.getElementById("page-previous").disabled = state.page === 0;
  document.getElementById("page-next").disabled = (state.page + 1) * PAGE_SIZE >= count;
  // Live while anything shown trains; a slow look otherwise, for runs started elsewhere.
  return data.some((run) => !ENDED.has(run.status)) ? 1000 : 5000;
}

async function loadDatasets() {
  const { data } = await api(`/datasets?limit=${MAX_PAGE_SIZE}`);
  const names = data.map((dataset) => dataset.name).sort();
  datasetSelect.replaceChildren(
    el("option", { value: "", text: "any" }),
    ...names.map((name) => el("option", { value: name, text: name })),
  );
  datasetSelect.value = state.dataset;
}

statusSelect.value = state.status;
statusSelect.addEventListener("change", () => {
  state.status = statusSelect.value;
  state.page = 0;
  remember();
  poller.now();
});
datasetSelect.addEventListener("change", () => {
  state.dataset = datasetSelect.value;
  state.page = 0;
  remember();
  poller.now();
});
document.getElementById("page-previous").addEventListener("click", () => {
  state.page = Math.max(0, state.page - 1);
  remember();
  poller.now();
});
document.getElementById("page-next").addEventListener("click", () => {
  state.page += 1;
  remember();
  poller.now();
});
document.getElementById("compare-selected").addEventListener("click", () => {
  location.href = `/ui/compare?runs=${[...selected].sort((a, b) => a - b).join(",")}`;
});

let poller = { now() {} };
await ready;
try {
  await loadDatasets();
} catch (error) {
  showError(error);
}
poller = every(refresh);
