// The sweeps: each with its grid and its runs counted by status.
import { api, el, formatDate, ready, showError } from "./api.js";

function counts(sweep) {
  return Object.entries(sweep.counts)
    .filter(([, count]) => count)
    .map(([status, count]) => `${count} ${status}`)
    .join(", ");
}

await ready;
try {
  const { data } = await api("/sweeps?limit=200");
  document.getElementById("sweeps-body").replaceChildren(
    ...data.map((sweep) =>
      el(
        "tr",
        { "data-sweep": sweep.id },
        el("td", { class: "num" }, el("a", { href: `/ui/sweeps/${sweep.id}`, text: `#${sweep.id}` })),
        el("td", { text: sweep.name ?? "–" }),
        el("td", { text: sweep.dataset }),
        el("td", { text: Object.entries(sweep.grid).map(([key, values]) => `${key}: ${values.map((v) => JSON.stringify(v)).join(", ")}`).join("; ") }),
        el("td", { text: counts(sweep) }),
        el("td", { text: formatDate(sweep.created_at) }),
      ),
    ),
  );
  document.getElementById("sweeps-empty").hidden = data.length > 0;
} catch (error) {
  showError(error);
}
