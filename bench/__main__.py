"""Run the benchmark suite: `python -m bench [--quick] [--only SECTION ...]`.

Prints a table of every figure with its target and writes the same as JSON
(bench/results/latest.json unless --json says otherwise). Exit status 0 whether or not targets
are met: the suite measures, it does not judge; the table says which targets were met. A section
that fails is reported with its traceback, the others still run, and the status is 1.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from app.core.config import PROJECT_ROOT
from app.testing.live_server import LiveServer
from bench import celery_runner, service, together, training
from bench.context import BenchContext
from bench.report import Figure, print_table, write_json

SECTIONS = ["training", "together", *service.SECTIONS, "celery"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="2001 epochs, one repeat: a smoke run (~2 min)"
    )
    parser.add_argument("--repeats", type=int, help="timed repeats per figure (default 3)")
    parser.add_argument("--epochs", type=int, help="epochs of each run (default 20001)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="sections to run")
    parser.add_argument(
        "--json", type=Path, default=PROJECT_ROOT / "bench" / "results" / "latest.json"
    )
    args = parser.parse_args()
    ctx = BenchContext(
        epochs=args.epochs or (2001 if args.quick else 20001),
        repeats=args.repeats or (1 if args.quick else 3),
        requests=100 if args.quick else 300,
    )
    chosen = args.only or SECTIONS
    print(
        f"bench: {', '.join(chosen)}; {ctx.epochs} epochs, {ctx.repeats} repeats, "
        f"data {ctx.csv_path}",
        flush=True,
    )
    started = time.monotonic()
    figures: list[Figure] = []
    failed: list[str] = []

    def run_section(name: str, measure: Callable[[], list[Figure]]) -> None:
        try:
            figures.extend(measure())
            print(f"  {name} done at {time.monotonic() - started:.0f} s", flush=True)
        except Exception:
            failed.append(name)
            print(f"  {name} FAILED:\n{traceback.format_exc()}", flush=True)

    if "training" in chosen:
        run_section("training", lambda: training.measure(ctx))
    if "together" in chosen:
        run_section("together", lambda: together.measure(ctx))
    served = [name for name in [*service.SECTIONS, "celery"] if name in chosen]
    measures = {**service.SECTIONS, "celery": celery_runner.celery}
    if served:
        with tempfile.TemporaryDirectory(prefix="pc-bench-") as folder:
            server = LiveServer(Path(folder))
            server.start()
            try:
                server.wait_for_workers()  # a user's first run pays their start-up; not timed
                under_test = service.Service(server, ctx)
                for name in served:
                    run_section(name, functools.partial(measures[name], under_test))
            finally:
                server.stop()
    print()
    print_table(figures)
    options: dict[str, object] = {
        "epochs": ctx.epochs,
        "repeats": ctx.repeats,
        "requests": ctx.requests,
        "sections": chosen,
        "data": str(ctx.csv_path),
        "seconds": round(time.monotonic() - started),
        "failed_sections": failed,
    }
    write_json(args.json, figures, options)
    print(f"\nwritten to {args.json}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
