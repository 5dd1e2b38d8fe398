// Compare runs: loss curves overlaid, boundaries side by side at the same epoch.
import { api, describeModel, el, formatLoss, ready, showError } from "./api.js";
import { LossChart, MAX_CURVE_POINTS, PALETTE, alignCurves } from "./chart.js";
import { Plane } from "./plane.js";

const picker = document.getElementById("pick-runs");
const slider = document.getElementById("compare-slider");
const chosen = (new URLSearchParams(location.search).get("runs") ?? "")
  .split(",")
  .map(Number)
  .filter((id) => Number.isInteger(id) && id > 0);

let panels = []; // {run, epochs, plane, caption}
let epochs = []; // every checkpoint epoch of any run, sorted
const chart = new LossChart(document.getElementById("compare-chart"));
const logBox = document.getElementById("compare-log");
chart.log = logBox.checked;

async function loadPicker() {
  const { data } = await api("/runs?limit=200");
  picker.replaceChildren(
    ...data.map((run) =>
      el("option", {
        value: run.id,
        selected: chosen.includes(run.id),
        text: `#${run.id} ${describeModel(run)} on ${run.dataset}, lr ${run.learning_rate} (${run.status})`,
      }),
    ),
  );
}

// The checkpoint a run shows at `epoch`: its latest at or before it (its first if none is).
function checkpointAt(runEpochs, epoch) {
  let best = runEpochs[0];
  for (const candidate of runEpochs) if (candidate <= epoch) best = candidate;
  return best;
}

async function showEpoch() {
  const epoch = epochs[Number(slider.value)];
  document.getElementById("compare-epoch").textContent = `epoch ${epoch?.toLocaleString() ?? "–"}`;
  slider.setAttribute("aria-valuetext", `epoch ${epoch}`);
  await Promise.all(
    panels.map(async (panel, index) => {
      if (!panel.epochs.length) {
        panel.caption.textContent = `#${panel.run.id}: no checkpoint yet`;
        return;
      }
      const at = checkpointAt(panel.epochs, epoch);
      const field = await api(`/runs/${panel.run.id}/field?epoch=${at}&resolution=80`);
      panel.plane.setField(field);
      panel.canvas.dataset.epoch = String(at);
      panel.caption.replaceChildren(
        el("a", { href: `/ui/runs/${panel.run.id}`, text: `#${panel.run.id}` }),
        ` ${describeModel(panel.run)} on ${panel.run.dataset}, lr ${panel.run.learning_rate} — epoch ${at}`,
        el("span", { style: `color:${PALETTE[index % PALETTE.length]}`, "aria-hidden": "true", text: " ■" }),
      );
    }),
  );
}

async function compare(ids) {
  const runs = await Promise.all(ids.map((id) => api(`/runs/${id}`)));
  const [histories, checkpoints, points] = await Promise.all([
    Promise.all(ids.map((id) => api(`/runs/${id}/history?max_points=${MAX_CURVE_POINTS}`))),
    Promise.all(ids.map((id) => api(`/runs/${id}/checkpoints`))),
    Promise.all(runs.map((run) => api(`/datasets/${run.dataset_id}/points`))),
  ]);
  const { epochs: x, columns } = alignCurves(histories);
  chart.set(
    x,
    runs.map((run, index) => ({
      label: `#${run.id} ${describeModel(run)} (final ${formatLoss(run.final_loss ?? run.loss)})`,
      values: columns[index],
    })),
  );
  const grid = document.getElementById("compare-grid");
  panels = runs.map((run, index) => {
    const canvas = el("canvas", {
      class: "plane",
      "data-run": run.id,
      "aria-label": `run ${run.id}'s decision boundary`,
      role: "img",
    });
    const caption = el("figcaption");
    return { run, canvas, caption, epochs: checkpoints[index].map((c) => c.epoch), figure: el("figure", {}, canvas, caption) };
  });
  grid.replaceChildren(...panels.map((panel) => panel.figure));
  panels.forEach((panel, index) => {
    panel.plane = new Plane(panel.canvas);
    panel.plane.setPoints(points[index].points);
  });
  epochs = [...new Set(panels.flatMap((panel) => panel.epochs))].sort((a, b) => a - b);
  slider.max = Math.max(0, epochs.length - 1);
  slider.value = slider.max;
  slider.disabled = !epochs.length;
  await showEpoch();
}

slider.addEventListener("input", () => showEpoch().catch(showError));
logBox.addEventListener("change", () => chart.setLog(logBox.checked));
document.getElementById("pick-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const ids = [...picker.selectedOptions].map((option) => option.value);
  location.href = `/ui/compare?runs=${ids.join(",")}`;
});

await ready;
try {
  await loadPicker();
  const show = chosen.length >= 1;
  document.getElementById("compare-empty").hidden = show;
  document.getElementById("compare-body").hidden = !show;
  if (show) await compare(chosen);
} catch (error) {
  showError(error);
}
