"""How many training workers one database carries: simulated workers, no training.

Each simulated worker is a process that claims a run and then writes what a real worker writes,
through the same service functions: every `--report-s` a progress write (heartbeat, epoch, and a
batch of loss rows, `--epochs-per-s` x `--report-s` of them), every second a heartbeat-thread
write and a workers-table beat. The script steps the number of workers up and prints, for each
step, the write transactions per second the database completed and their latency. A step whose
p99 passes the report interval is where the database no longer keeps up.

    python -m scripts.simulate_workers --database-url postgresql+psycopg://postgres@127.0.0.1/x

The database must exist; it is migrated first. Runs made here are left in it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from multiprocessing.queues import Queue
from pathlib import Path

from app.core.config import Settings
from app.core.db import make_engine, make_session_factory, session_scope
from app.main import prepare_database
from app.services import run_lifecycle
from app.services.workers import register_worker, worker_beat
from app.vocabulary import RunnerKind

REPORT_S = 0.25  # the service's default PC_PROGRESS_INTERVAL_S
EPOCHS_PER_S = 3600  # the complex network on one thread of a recent CPU
# What a simulated worker reports: each write's latency in seconds, and the loss rows written.
Result = tuple[list[float], int]


def simulated_worker(
    url: str, index: int, seconds: float, report_s: float, epochs_per_s: int, out: Queue[Result]
) -> None:
    factory = make_session_factory(make_engine(url))
    worker_id = f"sim:{index}"
    with session_scope(factory) as session:
        register_worker(
            session,
            worker_id,
            runner=RunnerKind.CELERY,
            host="sim",
            pid=index,
            queues=["cpu"],
            device="cpu",
        )
    with session_scope(factory) as session:
        claim = run_lifecycle.claim_next_run(session, worker_id)
    assert claim is not None, "fewer queued runs than workers"
    per_report = max(1, int(epochs_per_s * report_s))
    latencies: list[float] = []
    epoch, next_beat = 0, time.monotonic() + 1.0
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        started = time.monotonic()
        with session_scope(factory) as session:
            losses = [0.5] * per_report
            run_lifecycle.record_progress(session, claim, epoch, losses, None)
        epoch += per_report
        latencies.append(time.monotonic() - started)
        if now >= next_beat:  # the heartbeat thread and the presence thread, once a second
            for write in ("heartbeat", "presence"):
                started = time.monotonic()
                with session_scope(factory) as session:
                    if write == "heartbeat":
                        run_lifecycle.record_progress(session, claim, 0, [], None)
                    else:
                        worker_beat(session, worker_id, claim.run_id)
                latencies.append(time.monotonic() - started)
            next_beat += 1.0
        time.sleep(max(0.0, report_s - (time.monotonic() - now)))
    out.put((latencies, epoch))


def queue_runs(url: str, count: int) -> None:
    from app.schemas.runs import ComplexRunCreate
    from app.services.runs import create_run

    factory = make_session_factory(make_engine(url))
    with session_scope(factory) as session:
        for _ in range(count):
            create_run(session, ComplexRunCreate(epochs=1_000_000), 10**15)


def step(url: str, workers: int, seconds: float, report_s: float, epochs_per_s: int) -> str:
    queue_runs(url, workers)
    context = multiprocessing.get_context("spawn")
    out: Queue[Result] = context.Queue()
    processes = [
        context.Process(
            target=simulated_worker, args=(url, i, seconds, report_s, epochs_per_s, out)
        )
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    results = [out.get() for _ in processes]
    for process in processes:
        process.join()
    latencies = sorted(latency for result in results for latency in result[0])
    writes = len(latencies)
    rows = sum(result[1] for result in results)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    verdict = "keeps up" if p99 < report_s * 1000 else "SATURATED (p99 past the report interval)"
    return (
        f"{workers:3d} workers: {writes / seconds:7.1f} writes/s, {rows / seconds:9.0f} loss "
        f"rows/s, latency p50 {p50:6.1f} ms p99 {p99:7.1f} ms: {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--workers", default="1,2,4,8,16,32", help="the steps, comma-separated")
    parser.add_argument("--seconds", type=float, default=8.0, help="per step")
    parser.add_argument("--report-s", type=float, default=REPORT_S)
    parser.add_argument("--epochs-per-s", type=int, default=EPOCHS_PER_S)
    args = parser.parse_args()
    # A store of its own: no checkpoint is written, and the database given here must not
    # claim (or be refused) the repository's models_store/, which `make serve`'s database owns.
    store = Path(tempfile.mkdtemp(prefix="pc-simulate-store-"))
    settings = Settings(database_url=args.database_url, models_store=store, runner_enabled=False)
    engine = make_engine(settings.database_url)
    prepare_database(settings, engine, make_session_factory(engine))
    engine.dispose()
    print(
        f"each worker: a progress write every {args.report_s} s with "
        f"{int(args.epochs_per_s * args.report_s)} loss rows, a heartbeat and a presence beat "
        "every second"
    )
    for workers in (int(w) for w in args.workers.split(",")):
        print(step(args.database_url, workers, args.seconds, args.report_s, args.epochs_per_s))


if __name__ == "__main__":
    main()
