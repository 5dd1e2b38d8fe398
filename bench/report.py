"""What the suite measured: figures with their targets, a table for people and JSON for files."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch


@dataclass
class Figure:
    section: str  # training, end to end, serving, responsiveness, scaling
    name: str
    value: float
    unit: str  # "x" for a ratio, "ms", "s", "points/s", "epochs/s"
    target: str = ""  # as the issue states it, e.g. ">= 2"; empty when there is none
    met: bool | None = None  # None: no target
    detail: str = ""  # the pair behind a ratio, or the spread of the samples


def at_least(value: float, bound: float) -> tuple[str, bool]:
    return f">= {bound:g}", value >= bound


def at_most(value: float, bound: float) -> tuple[str, bool]:
    return f"<= {bound:g}", value <= bound


def below(value: float, bound: float) -> tuple[str, bool]:
    return f"< {bound:g}", value < bound


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float], unit: str = "") -> str:
    """The range of the repeats behind a median: 'from 2.31 to 2.94x over 5 repeats'."""
    return f"from {min(values):.2f} to {max(values):.2f}{unit} over {len(values)} repeats"


def format_value(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("points/s", "epochs/s"):
        return f"{value:,.0f} {unit}"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:.2f} {unit}"


def print_table(figures: list[Figure]) -> None:
    rows = [("section", "figure", "measured", "target", "met", "detail")]
    for figure in figures:
        met = "" if figure.met is None else ("yes" if figure.met else "NO")
        value = format_value(figure.value, figure.unit)
        rows.append((figure.section, figure.name, value, figure.target, met, figure.detail))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for index, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[5]]).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def write_json(path: Path, figures: list[Figure], options: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "options": options,
        "figures": [asdict(figure) for figure in figures],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
