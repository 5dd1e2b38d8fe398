// The plane a classifier divides: its probability field (the numbers of GET /runs/{id}/field),
// the 0.5 contour, and the data points, drawn on a canvas; the same colours as boundary.png.
import { FIELD_RAMP, LABEL_COLOURS } from "./vocabulary.js";

// The field's ramp: light red at P = 0, white at 0.5, light blue at 1 (boundary.png's), as
// [r, g, b].
const [LOW, MID, HIGH] = FIELD_RAMP.map((hex) => [1, 3, 5].map((at) => parseInt(hex.slice(at, at + 2), 16)));
const MARGIN = { left: 34, bottom: 26, top: 8, right: 8 };

function ramp(p) {
  const [from, to, t] = p < 0.5 ? [LOW, MID, p * 2] : [MID, HIGH, (p - 0.5) * 2];
  return from.map((value, index) => Math.round(value + (to[index] - value) * t));
}

function niceTicks(low, high, count = 5) {
  const span = high - low;
  const step = 10 ** Math.floor(Math.log10(span / count));
  const unit = [1, 2, 5, 10].map((m) => m * step).find((s) => span / s <= count) ?? step * 10;
  const ticks = [];
  for (let t = Math.ceil(low / unit) * unit; t <= high + 1e-12; t += unit) ticks.push(+t.toFixed(10));
  return ticks;
}

// The segments where the field crosses 0.5 (marching squares over the grid's cells).
function contourSegments(field) {
  const n = field.resolution;
  const p = field.probabilities;
  const segments = [];
  const cross = (a, b) => (0.5 - a) / (b - a);
  for (let row = 0; row < n - 1; row++) {
    for (let col = 0; col < n - 1; col++) {
      const a = p[row * n + col];
      const b = p[row * n + col + 1];
      const c = p[(row + 1) * n + col + 1];
      const d = p[(row + 1) * n + col];
      const points = [];
      if ((a < 0.5) !== (b < 0.5)) points.push([col + cross(a, b), row]);
      if ((b < 0.5) !== (c < 0.5)) points.push([col + 1, row + cross(b, c)]);
      if ((d < 0.5) !== (c < 0.5)) points.push([col + cross(d, c), row + 1]);
      if ((a < 0.5) !== (d < 0.5)) points.push([col, row + cross(a, d)]);
      if (points.length >= 2) segments.push([points[0], points[1]]);
      if (points.length === 4) segments.push([points[2], points[3]]);
    }
  }
  return segments;
}

export class Plane {
  constructor(canvas, { onPick = null } = {}) {
    this.canvas = canvas;
    this.points = [];
    this.field = null;
    this.bounds = null;
    this.marker = null;
    this.image = null;
    if (onPick) {
      canvas.addEventListener("click", (event) => {
        const spot = this.toData(event.offsetX, event.offsetY);
        if (spot) onPick(spot[0], spot[1]);
      });
    }
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  setPoints(points, bounds = null) {
    this.points = points;
    if (!this.field && bounds) this.bounds = bounds;
    if (!this.bounds && points.length) {
      const xs = points.map((p) => p[0]);
      const ys = points.map((p) => p[1]);
      const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
      const padX = Math.max((x1 - x0) * 0.1, 0.05);
      const padY = Math.max((y1 - y0) * 0.1, 0.05);
      this.bounds = { x_min: x0 - padX, x_max: x1 + padX, y_min: y0 - padY, y_max: y1 + padY };
    }
    this.draw();
  }

  setField(field) {
    this.field = field;
    this.bounds = field;
    const n = field.resolution;
    const image = new ImageData(n, n);
    for (let row = 0; row < n; row++) {
      for (let col = 0; col < n; col++) {
        const [r, g, b] = ramp(field.probabilities[row * n + col]);
        const at = ((n - 1 - row) * n + col) * 4; // row 0 is y_min: the bottom
        image.data[at] = r;
        image.data[at + 1] = g;
        image.data[at + 2] = b;
        image.data[at + 3] = 255;
      }
    }
    const offscreen = document.createElement("canvas");
    offscreen.width = n;
    offscreen.height = n;
    offscreen.getContext("2d").putImageData(image, 0, 0);
    this.image = offscreen;
    this.segments = contourSegments(field);
    this.draw();
  }

  setMarker(x, y) {
    this.marker = [x, y];
    this.draw();
  }

  // The drawing area in CSS pixels.
  area() {
    const width = this.canvas.clientWidth;
    const height = this.canvas.clientHeight;
    return {
      x: MARGIN.left,
      y: MARGIN.top,
      width: Math.max(10, width - MARGIN.left - MARGIN.right),
      height: Math.max(10, height - MARGIN.top - MARGIN.bottom),
    };
  }

  toData(px, py) {
    if (!this.bounds) return null;
    const a = this.area();
    const fx = (px - a.x) / a.width;
    const fy = (py - a.y) / a.height;
    if (fx < 0 || fx > 1 || fy < 0 || fy > 1) return null;
    const b = this.bounds;
    return [b.x_min + fx * (b.x_max - b.x_min), b.y_max - fy * (b.y_max - b.y_min)];
  }

  toPixel(x, y) {
    const a = this.area();
    const b = this.bounds;
    return [
      a.x + ((x - b.x_min) / (b.x_max - b.x_min)) * a.width,
      a.y + ((b.y_max - y) / (b.y_max - b.y_min)) * a.height,
    ];
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    if (!this.bounds) return;
    const a = this.area();
    const b = this.bounds;
    if (this.image) {
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(this.image, a.x, a.y, a.width, a.height);
      const n = this.field.resolution;
      const sx = a.width / (n - 1);
      const sy = a.height / (n - 1);
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 1.6;
      ctx.beginPath();
      for (const [[c0, r0], [c1, r1]] of this.segments) {
        ctx.moveTo(a.x + c0 * sx, a.y + a.height - r0 * sy);
        ctx.lineTo(a.x + c1 * sx, a.y + a.height - r1 * sy);
      }
      ctx.stroke();
    }
    ctx.strokeStyle = "#8a949e";
    ctx.lineWidth = 1;
    ctx.strokeRect(a.x, a.y, a.width, a.height);
    // Axes: ticks and numbers.
    ctx.fillStyle = "#1d232a";
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const t of niceTicks(b.x_min, b.x_max)) {
      const [px] = this.toPixel(t, b.y_min);
      ctx.fillText(String(t), px, a.y + a.height + 4);
    }
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const t of niceTicks(b.y_min, b.y_max)) {
      const [, py] = this.toPixel(b.x_min, t);
      ctx.fillText(String(t), a.x - 4, py);
    }
    // Points: label 0 red circles, label 1 blue squares, white edges.
    ctx.save();
    ctx.beginPath();
    ctx.rect(a.x, a.y, a.width, a.height);
    ctx.clip();
    const dense = this.points.length > 2000 ? 2 : this.points.length > 500 ? 3 : 4;
    const size = Math.max(1.5, Math.min(dense, a.width / 90));
    ctx.lineWidth = 0.6;
    ctx.strokeStyle = "#fff";
    for (const [x, y, label] of this.points) {
      const [px, py] = this.toPixel(x, y);
      ctx.fillStyle = LABEL_COLOURS[label > 0.5 ? 1 : 0];
      ctx.beginPath();
      if (label > 0.5) ctx.rect(px - size, py - size, size * 2, size * 2);
      else ctx.arc(px, py, size, 0, Math.PI * 2);
      ctx.fill();
      ctx.stroke();
    }
    if (this.marker) {
      const [px, py] = this.toPixel(...this.marker);
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(px - 8, py);
      ctx.lineTo(px + 8, py);
      ctx.moveTo(px, py - 8);
      ctx.lineTo(px, py + 8);
      ctx.stroke();
      ctx.beginPath();
      ctx.arc(px, py, 5, 0, Math.PI * 2);
      ctx.stroke();
    }
    ctx.restore();
  }
}

// Points a thumbnail shows at most: a large dataset's are sampled by the server.
export const THUMBNAIL_POINTS = 1000;

// A small scatter of a dataset's points, for thumbnails.
export function drawThumbnail(canvas, points) {
  const plane = new Plane(canvas);
  plane.setPoints(points);
  return plane;
}
