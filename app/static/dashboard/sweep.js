// One sweep: its runs with the values they were given and their verdicts, its two pictures,
// live while its runs train; each run a click away.
import {
  ENDED, api, badge, confirmAction, el, every, fileUrl, formatLoss, formatPercent, linkFiles,
  ready, showError,
} from "./api.js";

const sweepId = Number(document.getElementById("sweep-title").dataset.sweep);
let shownKey = "";

async function showPictures(sweep) {
  // Drawn again only when something ended since: they take the server a moment.
  const key = sweep.runs.map((run) => `${run.id}:${run.status}`).join(",");
  if (key === shownKey) return;
  shownKey = key;
  const [rows, cols] = [Object.keys(sweep.grid)[1], Object.keys(sweep.grid)[0]];
  const query = new URLSearchParams({ cols, ...(rows ? { rows } : {}) });
  document.getElementById("sweep-boundaries").src = await fileUrl(`/sweeps/${sweepId}/boundaries.png?${query}`);
  document.getElementById("sweep-losses").src = await fileUrl(`/sweeps/${sweepId}/losses.png`);
}

function show(sweep) {
  const keys = Object.keys(sweep.grid);
  document.getElementById("sweep-summary").textContent =
    `${sweep.name ?? "unnamed"} on ${sweep.dataset}: ${sweep.runs.length} runs over ${keys.join(", ")}`;
  document.getElementById("sweep-head").replaceChildren(
    el("tr", {}, ...["Run", ...keys, "Status", "Epoch", "Final loss", "Best loss", "Accuracy", "Verdict"]
      .map((name) => el("th", { scope: "col", text: name }))),
  );
  document.getElementById("sweep-body").replaceChildren(
    ...sweep.runs.map((run) =>
      el(
        "tr",
        { "data-run": run.id, "data-verdict": run.verdict ?? "" },
        el("td", {}, el("a", { href: `/ui/runs/${run.id}`, text: `#${run.id}` })),
        ...keys.map((key) => el("td", { text: JSON.stringify(run.values[key]) })),
        el("td", {}, badge(run.status)),
        el("td", { text: `${run.epoch} / ${run.epochs}` }),
        el("td", { class: "num", text: formatLoss(run.final_loss) }),
        el("td", { class: "num", text: formatLoss(run.best_loss) }),
        el("td", { class: "num", text: formatPercent(run.accuracy) }),
        el("td", {
          text: run.verdict ? `${run.verdict} (${run.verdict_number.toPrecision(3)})` : "–",
          title: run.verdict_reason ?? "",
        }),
      ),
    ),
  );
}

async function refresh() {
  const sweep = await api(`/sweeps/${sweepId}`);
  show(sweep);
  const active = sweep.runs.some((run) => !ENDED.has(run.status));
  if (!active) await showPictures(sweep);
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
