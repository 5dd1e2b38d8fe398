"""The settings docs/configuration.md derives from others (tests/test_docs.py checks the
defaults themselves against the page)."""

from __future__ import annotations

import os

from app.core.config import Settings


def test_a_worker_beats_every_min_of_1_and_a_fifth_of_the_timeout() -> None:
    # PC_HEARTBEAT_TIMEOUT_S: "a training worker beats every min(1, timeout/5) seconds".
    assert Settings(heartbeat_timeout_s=15).heartbeat_interval_s == 1.0
    assert Settings(heartbeat_timeout_s=5).heartbeat_interval_s == 1.0
    assert Settings(heartbeat_timeout_s=1).heartbeat_interval_s == 0.2


def test_pc_workers_0_is_one_worker_per_core() -> None:
    assert Settings(workers=0).worker_count == (os.cpu_count() or 1)
    assert Settings(workers=3).worker_count == 3
