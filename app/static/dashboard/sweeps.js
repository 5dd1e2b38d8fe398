// The sweeps: each with its grid and its runs counted by status; and a form to start one.
import { api, el, formatDate, ready, showError } from "./api.js";
import { loadDatasets } from "./sweep_form.js";

function counts(sweep) {
  return Object.entries(sweep.counts)
    .filter(([, count]) => count)
    .map(([status, count]) => `${count} ${status}`)
    .join(", ");
}

await ready;
loadDatasets();
try {
  const { data } = await api("/sweeps?limit=200");
  document.getElementById("sweeps-body").replaceChildren(
    ...data.map((sweep) =>
      el(
        "tr",
        { "data-sweep": sweep.id },
        // data-label: on a phone each row is a card, and each value says what it is.
        el("td", { class: "num", "data-label": "Sweep" }, el("a", { href: `/ui/sweeps/${sweep.id}`, text: `#${sweep.id}` })),
        el("td", { "data-label": "Name", text: sweep.name ?? "–" }),
        el("td", { "data-label": "Dataset", text: sweep.dataset }),
        el("td", { "data-label": "Grid", class: "wrap", text: Object.entries(sweep.grid).map(([key, values]) => `${key}: ${values.map((v) => JSON.stringify(v)).join(", ")}`).join("; ") }),
        el("td", { "data-label": "Runs", text: counts(sweep) }),
        el("td", { "data-label": "Created", text: formatDate(sweep.created_at) }),
      ),
    ),
  );
  document.getElementById("sweeps-empty").hidden = data.length > 0;
  document.getElementById("sweeps-table").hidden = data.length === 0;
} catch (error) {
  showError(error);
}
