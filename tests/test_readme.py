"""The docs' curl lines, pasted line by line into a shell, work to the end.

Every `curl` command of the walk-through (docs/walkthrough.md) and of the README's first taste
runs, in order, with the real curl, against a live server started as `make serve` starts it (on
a port of its own and a fresh database); the walk-through also runs on the Celery runner. Each
must answer 2xx; the pictures saved must decode; and a sample answer shown under a command
(`# {...}`) must match the real one in the fields that do not vary between runs.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.core.config import PROJECT_ROOT
from app.testing.live_server import LiveServer
from tests.celery_cluster import celery_cluster
from tests.images import decode_png

pytestmark = [pytest.mark.live, pytest.mark.cluster]

WALKTHROUGH = PROJECT_ROOT / "docs" / "walkthrough.md"
README = PROJECT_ROOT / "README.md"
README_SECTION = "## A first taste with curl"
# Fields of a sample answer that must match exactly; the rest (probabilities) vary by seed.
STABLE_FIELDS = ("run_id", "epoch", "labels")


@dataclass
class Command:
    line: str  # as in the page, continuation lines joined
    curl: list[str]  # the curl part, before any pipe or redirection
    sample: str | None  # a `# {...}` line the page shows as its answer


def readme_taste() -> str:
    """The README's first taste: from its heading to the next one."""
    text = README.read_text()
    section = text[text.index(README_SECTION) :]
    return section[: section.index("\n## ", len(README_SECTION))]


def walkthrough() -> str:
    return WALKTHROUGH.read_text()


# Each page whose curl lines run: the text that holds them, and how many there are at least.
PAGES: dict[str, tuple[Callable[[], str], int]] = {
    "walkthrough": (walkthrough, 30),
    "readme": (readme_taste, 5),
}


def page_commands(page: str) -> list[Command]:
    read, _ = PAGES[page]
    return curl_commands(read())


def curl_commands(text: str) -> list[Command]:
    commands: list[Command] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
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


def curl_outputs(commands: list[Command]) -> list[str]:
    """What curl itself saves in the current folder: `-o NAME`."""
    return [c.curl[c.curl.index("-o") + 1] for c in commands if "-o" in c.curl]


def saved_files(commands: list[Command]) -> list[str]:
    """What the commands save in the current folder: curl's `-o NAME` and the shell's `> NAME`."""
    saved = curl_outputs(commands)
    for command in commands:
        tokens = shlex.split(command.line, comments=True)
        saved += [tokens[i + 1] for i, token in enumerate(tokens[:-1]) if token == ">"]
    return saved


@pytest.mark.parametrize("page", PAGES)
def test_the_page_is_found_and_uses_runs_that_exist(page: str) -> None:
    commands = page_commands(page)
    assert len(commands) >= PAGES[page][1]
    # Nothing is used after it was deleted.
    deleted = {c.curl[-1] for c in commands if "DELETE" in c.curl}
    for index, command in enumerate(commands):
        if "DELETE" in command.curl:
            later = " ".join(" ".join(c.curl) for c in commands[index + 1 :])
            assert command.curl[-1] not in later, f"{command.line!r} is used after it"
    if page == "walkthrough":
        assert deleted


@pytest.mark.parametrize("page", PAGES)
def test_what_the_commands_save_in_the_repository_root_is_git_ignored(page: str) -> None:
    # The pages say so: pasted in the repository root, the pictures and files stay out of git.
    saved = saved_files(page_commands(page))
    assert saved
    for name in saved:
        ignored = subprocess.run(["git", "check-ignore", "-q", name], cwd=PROJECT_ROOT, check=False)
        assert ignored.returncode == 0, f"{name}, saved by {page}, is not git-ignored"


@contextmanager
def service(runner: str, folder: Path) -> Iterator[LiveServer]:
    """The service as the docs start it: `make serve`, or as docs/SCALING.md does (one API,
    two workers, PostgreSQL and Redis)."""
    folder.mkdir(parents=True)
    if runner == "celery":
        with celery_cluster(folder, redis_database=10) as cluster:
            yield cluster.a
        return
    with LiveServer(folder) as server:
        server.wait_for_workers()
        yield server


@pytest.mark.slow
@pytest.mark.parametrize(
    ("page", "runner"),
    [("walkthrough", "embedded"), ("walkthrough", "celery"), ("readme", "embedded")],
)
def test_the_pages_curl_lines_run_line_by_line(tmp_path: Path, page: str, runner: str) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    commands = page_commands(page)
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
        pictures = curl_outputs(commands)
        assert pictures
        for name in pictures:
            saved = (workdir / name).read_bytes()
            if name.endswith(".gif"):
                assert saved[:6] == b"GIF89a", name
            else:
                decode_png(saved)
    assert "Traceback" not in server.log()


def _read(path: Path) -> str:
    return path.read_text(errors="replace")[:2000] if path.exists() else ""
