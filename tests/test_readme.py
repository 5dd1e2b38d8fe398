"""The README's curl walk-through, pasted line by line into a shell, works to the end.

Every `curl` command of the walk-through section runs, in order, with the real curl, against a
live server started as `make serve` starts it (on a port of its own and a fresh database). Each
must answer 2xx; pictures must decode; and a sample answer the README shows under a command
(`# {...}`) must match the real one in the fields that do not vary between runs.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.core.config import PROJECT_ROOT
from scripts.live_server import LiveServer
from tests.celery_cluster import celery_cluster
from tests.images import decode_png

pytestmark = [pytest.mark.live, pytest.mark.cluster]

README = PROJECT_ROOT / "README.md"
SECTION = "## A walk-through with curl"
# Fields of a sample answer that must match exactly; the rest (probabilities) vary by seed.
STABLE_FIELDS = ("run_id", "epoch", "labels")


@dataclass
class Command:
    line: str  # as in the README, continuation lines joined
    curl: list[str]  # the curl part, before any pipe or redirection
    sample: str | None  # a `# {...}` line the README shows as its answer


def walkthrough_commands(text: str) -> list[Command]:
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    commands: list[Command] = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL):
        joined = block.replace("\\\n", " ")
        for raw in joined.splitlines():
            line = raw.strip()
            if line.startswith("# {") and commands:
                commands[-1].sample = line[2:]
            if not line.startswith("curl "):
                continue
            tokens = shlex.split(line, comments=True)
            stop = next((i for i, t in enumerate(tokens) if t in {"|", ">"}), len(tokens))
            commands.append(Command(line, tokens[:stop], None))
    return commands


def test_walkthrough_is_found_and_uses_runs_that_exist() -> None:
    commands = walkthrough_commands(README.read_text())
    assert len(commands) >= 30
    # Nothing is used after it was deleted.
    deleted = {c.curl[-1] for c in commands if "DELETE" in c.curl}
    for index, command in enumerate(commands):
        if "DELETE" in command.curl:
            later = " ".join(" ".join(c.curl) for c in commands[index + 1 :])
            assert command.curl[-1] not in later, f"{command.line!r} is used after it"
    assert deleted


@contextmanager
def service(runner: str, folder: Path) -> Iterator[LiveServer]:
    """The service as the README starts it: `make serve`, or its scale-out section (one API,
    two workers, PostgreSQL and Redis)."""
    folder.mkdir(parents=True)
    if runner == "celery":
        with celery_cluster(folder, redis_database=13) as cluster:
            yield cluster.a
        return
    with LiveServer(folder) as server:
        server.wait_for_workers()
        yield server


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["embedded", "celery"])
def test_readme_walkthrough_runs_line_by_line(tmp_path: Path, runner: str) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    commands = walkthrough_commands(README.read_text())
    workdir = tmp_path / "cwd"
    (workdir / "data").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "data" / "curve.csv", workdir / "data" / "curve.csv")
    with service(runner, tmp_path / "service") as server:
        for index, command in enumerate(commands):
            arguments = [
                argument.replace("localhost:8000", f"127.0.0.1:{server.port}")
                for argument in command.curl[1:]
            ]
            body = workdir / f"answer-{index}"
            output = [] if "-o" in arguments else ["-o", str(body)]
            result = subprocess.run(
                [curl, *arguments, *output, "-w", "%{http_code}", "--max-time", "180"],
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=200,
            )
            status = result.stdout.strip()[-3:]
            context = f"{command.line!r} answered {status}:\n{_read(body)}\n{server.log()[-3000:]}"
            assert result.returncode == 0, context
            assert status.startswith("2"), context
            if command.sample is not None:
                answer = json.loads(_read(body))
                sample = json.loads(re.sub(r"(\d)\.\.\.", r"\1", command.sample))
                for field in STABLE_FIELDS:
                    assert answer[field] == sample[field], (field, answer, sample)
        for picture in ("curve.png", "loss.png", "boundary.png", "untrained.png", "early.png"):
            decode_png((workdir / picture).read_bytes())
        assert (workdir / "evolution.gif").read_bytes()[:6] == b"GIF89a"
    assert "Traceback" not in server.log()


def _read(path: Path) -> str:
    return path.read_text(errors="replace")[:2000] if path.exists() else ""
