// One run: its loss curve live, its decision boundary at any checkpoint (slider, play), a
// prediction wherever the plane is clicked, its log lines and its files.
import {
  api, badge, confirmAction, describeModel, el, formatDate, formatDuration, formatLoss,
  formatPercent, linkFiles, ready, showError, streamEvents,
} from "./api.js";
import { LossChart, MAX_CURVE_POINTS, PALETTE } from "./chart.js";
import { Plane } from "./plane.js";
import { ENDED } from "./vocabulary.js";

const runId = Number(document.getElementById("run-title").dataset.run);
const FIELD_RESOLUTION = 100;
const PLAY_STEP_MS = 300;

let run = null;
let history = { epoch: [], loss: [], val_loss: null };
let epochs = []; // the checkpoints' epochs, oldest first
const fields = new Map(); // epoch -> Promise of its probability field
let shownEpoch = null;
let playing = null;

const chart = new LossChart(document.getElementById("loss-chart"));
const plane = new Plane(document.getElementById("plane"), { onPick: predictAt });
const slider = document.getElementById("checkpoint-slider");
const logBox = document.getElementById("log-scale");
logBox.addEventListener("change", () => chart.setLog(logBox.checked));
const playButton = document.getElementById("play");

// --- the run ---------------------------------------------------------------------------

function fact(name, value) {
  return [el("dt", { text: name }), el("dd", { text: value ?? "–" })];
}

function showRun() {
  document.getElementById("run-badge").replaceChildren(badge(run.status));
  document.title = `Run ${run.id} (${run.status}) · Point Classifier`;
  document.getElementById("run-summary").textContent =
    `${describeModel(run)} on ${run.dataset}, ${run.parameter_count.toLocaleString()} parameters`;
  const progress = document.getElementById("run-progress");
  progress.max = run.epochs;
  progress.value = run.epoch;
  const loss = run.final_loss ?? run.loss;
  document.getElementById("run-epoch").textContent =
    `epoch ${run.epoch.toLocaleString()} of ${run.epochs.toLocaleString()}` +
    (loss !== null ? `, loss ${formatLoss(loss)}` : "");
  document.getElementById("run-facts").replaceChildren(
    ...fact("Status", run.status + (run.cancel_requested && !ENDED.has(run.status) ? " (cancel asked)" : "")),
    ...fact("Dataset", run.dataset),
    ...fact("Optimizer", `${run.optimizer}, learning rate ${run.learning_rate}` + (run.momentum ? `, momentum ${run.momentum}` : "")),
    ...fact("Batch", run.batch_size ?? "full batch"),
    ...fact("Seed", run.seed),
    ...fact("Validation split", run.validation_split),
    ...fact("Latest loss", formatLoss(run.loss)),
    ...fact("Validation loss", formatLoss(run.val_loss)),
    ...fact("Final loss", formatLoss(run.final_loss)),
    ...fact("Accuracy", formatPercent(run.accuracy)),
    ...fact("Device", run.device_used ? `${run.device_used} (asked: ${run.device})` : run.device),
    ...fact("Created", formatDate(run.created_at)),
    ...fact("Started", formatDate(run.started_at)),
    ...fact("Finished", formatDate(run.finished_at)),
    ...fact("Duration", formatDuration(run)),
    ...(run.error ? fact("Error", run.error) : []),
  );
  const actions = document.getElementById("run-actions");
  const offer = `${ENDED.has(run.status)} ${run.cancel_requested}`;
  if (actions.dataset.offer === offer) return; // drawn again, they would lose the focus
  actions.dataset.offer = offer;
  actions.replaceChildren(
    ENDED.has(run.status)
      ? el("button", { type: "button", text: "Resume", onclick: resume })
      : el("button", { type: "button", text: "Cancel", disabled: run.cancel_requested, onclick: cancel }),
    el("button", { type: "button", class: "danger", text: "Delete", onclick: remove }),
  );
}

async function cancel() {
  try {
    run = await api(`/runs/${runId}/cancel`, { method: "POST" });
    showRun();
  } catch (error) {
    showError(error);
  }
}

async function resume() {
  const more = await confirmAction({
    text: `Resume run ${runId} from its last checkpoint.`,
    yes: "Resume",
    no: "Not now",
    number: { label: "Epochs more", value: run.requested_epochs },
  });
  if (!more) return;
  try {
    run = await api(`/runs/${runId}/resume`, { method: "POST", json: { epochs: more } });
    showRun();
    follow();
  } catch (error) {
    showError(error);
  }
}

async function remove() {
  const sure = await confirmAction({
    text: `Delete run ${runId}, its history and its checkpoint files? This cannot be undone.`,
    yes: "Delete",
  });
  if (!sure) return;
  try {
    await api(`/runs/${runId}`, { method: "DELETE" });
    location.href = "/";
  } catch (error) {
    showError(error);
  }
}

// --- the loss curve --------------------------------------------------------------------

function drawCurve() {
  const curves = [{ label: "training loss", values: history.loss, color: PALETTE[0] }];
  if (history.val_loss) {
    curves.push({ label: "validation loss", values: history.val_loss, color: PALETTE[1], dash: [8, 4] });
  }
  chart.set(history.epoch, curves);
}

async function loadHistory() {
  const loaded = await api(`/runs/${runId}/history?max_points=${MAX_CURVE_POINTS}`);
  history = { epoch: loaded.epoch, loss: loaded.loss, val_loss: loaded.val_loss ?? null };
  drawCurve();
}

// A progress event's loss joins the curve until the next full read of the history.
function extendCurve(event) {
  const last = history.epoch.at(-1);
  const epoch = event.epoch - 1; // `epoch` counts steps done; the loss is the last step's
  if (event.loss === null || (last !== undefined && epoch <= last)) return;
  history.epoch.push(epoch);
  history.loss.push(event.loss);
  if (history.val_loss) history.val_loss.push(event.val_loss);
  drawCurve();
}

// --- the boundary ----------------------------------------------------------------------

function field(epoch) {
  if (!fields.has(epoch)) {
    const promise = api(`/runs/${runId}/field?epoch=${epoch}&resolution=${FIELD_RESOLUTION}`);
    promise.catch(() => fields.delete(epoch));
    fields.set(epoch, promise);
  }
  return fields.get(epoch);
}

async function showEpoch(epoch) {
  shownEpoch = epoch;
  const output = document.getElementById("checkpoint-epoch");
  output.textContent = `epoch ${epoch.toLocaleString()}`;
  slider.setAttribute("aria-valuetext", `epoch ${epoch}`);
  try {
    const loaded = await field(epoch);
    if (shownEpoch === epoch) {
      plane.setField(loaded);
      document.getElementById("plane").dataset.epoch = String(epoch);
    }
  } catch (error) {
    showError(error);
  }
}

function setCheckpoints(list) {
  const atEnd = epochs.length === 0 || Number(slider.value) === epochs.length - 1;
  epochs = list.map((checkpoint) => checkpoint.epoch);
  const files = document.getElementById("checkpoint-files");
  files.replaceChildren(
    ...epochs.flatMap((epoch, index) => [
      index ? ", " : "",
      el("a", { href: `/runs/${runId}/checkpoints/${epoch}`, "data-file": `run-${runId}-epoch-${epoch}.pt`, text: String(epoch) }),
    ]),
  );
  if (!epochs.length) files.textContent = "none yet";
  linkFiles(files);
  slider.max = Math.max(0, epochs.length - 1);
  slider.disabled = epochs.length === 0;
  playButton.disabled = epochs.length < 2;
  if (!epochs.length) return;
  // Following the newest checkpoint unless the reader moved the slider back.
  if (atEnd && !playing) slider.value = epochs.length - 1;
  const epoch = epochs[Number(slider.value)];
  if (epoch !== shownEpoch) showEpoch(epoch);
}

slider.addEventListener("input", () => {
  stopPlaying();
  showEpoch(epochs[Number(slider.value)]);
});

function stopPlaying() {
  if (playing) clearTimeout(playing);
  playing = null;
  playButton.textContent = "Play";
}

async function step() {
  const next = Number(slider.value) + 1;
  if (next >= epochs.length) {
    stopPlaying();
    return;
  }
  slider.value = next;
  const started = performance.now();
  await showEpoch(epochs[next]);
  if (playing) playing = setTimeout(step, Math.max(0, PLAY_STEP_MS - (performance.now() - started)));
}

playButton.addEventListener("click", () => {
  if (playing) {
    stopPlaying();
    return;
  }
  if (Number(slider.value) >= epochs.length - 1) {
    slider.value = 0;
    showEpoch(epochs[0]);
  }
  playButton.textContent = "Pause";
  playing = setTimeout(step, PLAY_STEP_MS);
});

// Fields fetched ahead, one at a time, so scrubbing an ended run is immediate.
async function prefetchFields() {
  for (const epoch of epochs) {
    try {
      await field(epoch);
    } catch {
      return;
    }
  }
}

async function predictAt(x, y) {
  plane.setMarker(x, y);
  document.getElementById("predict-x").value = x.toFixed(4);
  document.getElementById("predict-y").value = y.toFixed(4);
  const out = document.getElementById("prediction");
  try {
    const answer = await api("/predict", {
      method: "POST",
      json: { run_id: runId, points: [[x, y]], epoch: shownEpoch },
    });
    const p = answer.probabilities[0];
    out.textContent = `P(label 1) = ${p.toFixed(4)} at x = ${x.toFixed(3)}, y = ${y.toFixed(3)} ` +
      `(epoch ${answer.epoch}): label ${answer.labels[0]}`;
    Object.assign(out.dataset, { probability: String(p), x: String(x), y: String(y), epoch: String(answer.epoch) });
  } catch (error) {
    out.textContent = error.message;
  }
}

document.getElementById("predict-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const x = Number(document.getElementById("predict-x").value);
  const y = Number(document.getElementById("predict-y").value);
  if (!Number.isFinite(x) || !Number.isFinite(y)) {
    document.getElementById("prediction").textContent = "x and y must be numbers";
    return;
  }
  predictAt(x, y);
});

// --- keeping up with a training run ------------------------------------------------------

async function loadLog() {
  document.getElementById("run-log").textContent = (await api(`/runs/${runId}/log`)) || "(no lines yet)";
}

async function loadCheckpoints() {
  setCheckpoints(await api(`/runs/${runId}/checkpoints`));
}

let scaleChosen = false;

async function loadAll() {
  run = await api(`/runs/${runId}`);
  if (!scaleChosen) {
    // An ended run's curve opens in log scale, where its last thousands of epochs are not a
    // flat line; a training run's in linear, as its loss falls. The reader's choice stays.
    scaleChosen = true;
    logBox.checked = ENDED.has(run.status);
    chart.startLog(logBox.checked);
  }
  showRun();
  await Promise.all([loadHistory(), loadCheckpoints(), loadLog()]);
}

let following = false;

// While the run trains: its events stream (one request) and one other read a second, in turn.
async function follow() {
  if (following) return;
  following = true;
  const reads = [loadHistory, loadCheckpoints, loadLog];
  let turn = 0;
  const timer = setInterval(() => {
    if (!document.hidden) reads[turn++ % reads.length]().catch(() => {});
  }, 1000);
  try {
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        await streamEvents(`/runs/${runId}/events`, (kind, event) => {
          if (event.status === "deleted") return;
          Object.assign(run, event);
          showRun();
          if (kind === "progress") extendCurve(event);
        });
      } catch (error) {
        if (error.status === 404 || error.status === 401) throw error;
      }
      run = await api(`/runs/${runId}`);
      if (ENDED.has(run.status)) break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  } finally {
    clearInterval(timer);
    following = false;
  }
  await loadAll();
  prefetchFields();
}

await ready;
try {
  await loadAll();
  const dataset = await api(`/datasets/${run.dataset_id}/points`);
  plane.setPoints(dataset.points);
  linkFiles(document.getElementById("run-files"));
  if (ENDED.has(run.status)) prefetchFields();
  else await follow();
} catch (error) {
  showError(error);
}
