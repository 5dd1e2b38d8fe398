// Loss curves with uPlot (vendored, global `uPlot`): one x axis of epochs, any number of
// curves, linear or log scale. Curves differ by dash as well as colour (Okabe-Ito palette).

export const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C6D31"];
const DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3]];
// Entries of a loss history a chart asks for at most: the server keeps each bucket of epochs'
// lowest and highest loss (GET /runs/{id}/history?max_points=).
export const MAX_CURVE_POINTS = 2000;

export class LossChart {
  constructor(container) {
    this.container = container;
    this.log = false;
    this.x = [];
    this.curves = [];
    this.plot = null;
    this.signature = "";
    new ResizeObserver(() => this.plot?.setSize(this.size())).observe(container);
  }

  size() {
    return { width: Math.max(200, this.container.clientWidth), height: 300 };
  }

  // `curves`: [{label, values}] aligned with `x` (null where a curve has no value).
  set(x, curves) {
    this.x = x;
    this.curves = curves;
    // What is drawn, for whoever reads the page without seeing the canvas (tests, too).
    this.container.dataset.points = String(x.length);
    this.container.dataset.curves = String(curves.length);
    const signature = curves.map((curve) => curve.label).join("|");
    if (this.plot && signature === this.signature) {
      this.plot.setData(this.data());
    } else {
      this.signature = signature;
      this.build();
    }
  }

  setLog(log) {
    this.log = log;
    this.build();
  }

  // The scale a chart opens in, before anything is drawn.
  startLog(log) {
    this.log = log;
    this.container.dataset.scale = log ? "log" : "linear";
  }

  data() {
    // A log axis cannot show zero or less: those points are left out.
    const clean = (values) => (this.log ? values.map((v) => (v > 0 ? v : null)) : values);
    return [this.x, ...this.curves.map((curve) => clean(curve.values))];
  }

  build() {
    this.plot?.destroy();
    this.container.dataset.scale = this.log ? "log" : "linear";
    const options = {
      ...this.size(),
      scales: { x: { time: false }, y: this.log ? { distr: 3 } : { auto: true } },
      axes: [
        { label: "epoch" },
        { label: this.log ? "loss (log scale)" : "loss", size: 60, values: (u, splits) => splits.map(tickLabel) },
      ],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      series: [
        { label: "epoch" },
        ...this.curves.map((curve, index) => ({
          label: curve.label,
          stroke: curve.color ?? PALETTE[index % PALETTE.length],
          dash: curve.dash ?? DASHES[Math.floor(index / PALETTE.length) % DASHES.length],
          width: 1.5,
          spanGaps: true,
          points: { show: false },
          value: (u, v) => (v === null || v === undefined ? "–" : v.toPrecision(5)),
        })),
      ],
    };
    this.plot = new uPlot(options, this.data(), this.container);
  }
}

// A loss axis' tick: small and large values in scientific notation (uPlot's own labels keep
// three decimals, so a log axis read 1e-4 to 1e-7 as "0"), others without float noise. Null:
// a tick uPlot leaves unlabelled.
export function tickLabel(value) {
  if (value === null || value === undefined) return null;
  const size = Math.abs(value);
  if (size !== 0 && (size < 1e-3 || size >= 1e5)) return value.toExponential().replace("+", "");
  return String(Number(value.toPrecision(6)));
}

// Curves of different runs on one x axis: the union of their epochs, null where one has none.
export function alignCurves(histories) {
  const epochs = [...new Set(histories.flatMap((history) => history.epoch))].sort((a, b) => a - b);
  const at = new Map(epochs.map((epoch, index) => [epoch, index]));
  const columns = histories.map((history) => {
    const values = new Array(epochs.length).fill(null);
    history.epoch.forEach((epoch, index) => {
      values[at.get(epoch)] = history.loss[index];
    });
    return values;
  });
  return { epochs, columns };
}
