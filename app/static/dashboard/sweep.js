// One sweep: its runs with the values they were given and their verdicts, its two pictures,
// live while its runs train; each run a click away.
import {
  api, badge, confirmAction, el, every, formatLoss, formatPercent, linkFiles, ready, showError,
} from "./api.js";
import { ENDED } from "./vocabulary.js";

const sweepId = Number(document.getElementById("sweep-title").dataset.sweep);
// While runs train, the pictures are drawn again at most this often (each takes the server a
// moment), and again once every run has ended.
const PICTURES_EVERY_MS = 5000;
const PICTURES = {
  "sweep-boundaries": `/sweeps/${sweepId}/boundaries.png`,
  "sweep-losses": `/sweeps/${sweepId}/losses.png`,
};
let shownKey = "";
let shownAt = -Infinity;

// A picture takes its place only once it has loaded and decoded, as a new element: the page
// never shows a broken or half-loaded image, and the last good one stays until the next is
// ready.
async function showPicture(id, path) {
  const url = URL.createObjectURL(await api(path, { blob: true }));
  const loaded = new Image();
  loaded.src = url;
  try {
    await loaded.decode();
  } catch (error) {
    URL.revokeObjectURL(url);
    throw error;
  }
  const shown = document.getElementById(id);
  for (const name of ["id", "alt", "class"]) {
    if (shown.hasAttribute(name)) loaded.setAttribute(name, shown.getAttribute(name));
  }
  shown.replaceWith(loaded);
  if (shown.src.startsWith("blob:")) URL.revokeObjectURL(shown.src);
  document.getElementById(`${id}-note`).hidden = true;
}

async function showPictures(sweep, active) {
  // Drawn from the start (a run with no checkpoint yet is a panel that says it waits), then
  // again as the runs move on.
  const key = sweep.runs.map((run) => `${run.id}:${run.status}:${run.epoch}`).join(",");
  if (key === shownKey || (active && performance.now() - shownAt < PICTURES_EVERY_MS)) return;
  shownKey = key;
  shownAt = performance.now();
  try {
    await Promise.all(Object.entries(PICTURES).map(([id, path]) => showPicture(id, path)));
  } catch (error) {
    shownKey = ""; // tried again at the next look
    showError(error);
  }
}

function show(sweep) {
  const keys = Object.keys(sweep.grid);
  document.getElementById("sweep-summary").textContent =
    `${sweep.name ?? "unnamed"} on ${sweep.dataset}: ${sweep.runs.length} runs over ${keys.join(", ")}`;
  document.getElementById("sweep-head").replaceChildren(
    el("tr", {}, ...["Run", ...keys, "Status", "Epoch", "Final loss", "Best loss", "Accuracy", "Verdict"]
      .map((name) => el("th", { scope: "col", text: name }))),
  );
  // data-label: on a phone each row is a card, and each value says what it is.
  const cell = (label, content, kind = null) => el("td", { "data-label": label, class: kind }, content);
  document.getElementById("sweep-body").replaceChildren(
    ...sweep.runs.map((run) => {
      const verdict = cell("Verdict", run.verdict ? `${run.verdict} (${run.verdict_number.toPrecision(3)})` : "–");
      if (run.verdict_reason) verdict.title = run.verdict_reason;
      return el(
        "tr",
        { "data-run": run.id, "data-verdict": run.verdict ?? "" },
        cell("Run", el("a", { href: `/ui/runs/${run.id}`, text: `#${run.id}` })),
        ...keys.map((key) => cell(key, JSON.stringify(run.values[key]))),
        cell("Status", badge(run.status)),
        cell("Epoch", `${run.epoch.toLocaleString()} / ${run.epochs.toLocaleString()}`),
        cell("Final loss", formatLoss(run.final_loss), "num"),
        cell("Best loss", formatLoss(run.best_loss), "num"),
        cell("Accuracy", formatPercent(run.accuracy), "num"),
        verdict,
      );
    }),
  );
}

async function refresh() {
  const sweep = await api(`/sweeps/${sweepId}`);
  show(sweep);
  const active = sweep.runs.some((run) => !ENDED.has(run.status));
  await showPictures(sweep, active);
  return active ? 2000 : null; // one read every two seconds while it trains, then none
}

document.getElementById("sweep-cancel").addEventListener("click", async () => {
  try {
    show(await api(`/sweeps/${sweepId}/cancel`, { method: "POST" }));
  } catch (error) {
    showError(error);
  }
});
document.getElementById("sweep-delete").addEventListener("click", async () => {
  const sure = await confirmAction({ text: `Delete sweep ${sweepId} and all its runs?`, yes: "Delete" });
  if (!sure) return;
  try {
    await api(`/sweeps/${sweepId}`, { method: "DELETE" });
    location.href = "/ui/sweeps";
  } catch (error) {
    showError(error);
  }
});

await ready;
linkFiles(document.getElementById("content"));
every(refresh);
