"""The tutorial's two commands, run as a person runs them: in a subprocess."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from app.cli import build_parser
from app.core.config import PROJECT_ROOT
from tests.images import decode_png

TUTORIAL_LINE = re.compile(r"^Epoch (\d+), Loss: (\S+)$")


def cli(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_train_prints_exactly_the_tutorial_lines_and_saves_the_boundary(tmp_path: Path) -> None:
    output = tmp_path / "boundary.png"
    result = cli(
        "train",
        "data/curve.csv",
        "simple",
        "--epochs",
        "2001",
        "--log-every",
        "500",
        "--seed",
        "4",
        "-o",
        str(output),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    matches = [TUTORIAL_LINE.match(line) for line in lines]
    assert all(matches), lines
    assert [int(m.group(1)) for m in matches if m] == [0, 500, 1000, 1500, 2000]
    for match in matches:
        assert match is not None
        assert repr(float(match.group(2))) == match.group(2)  # Python's repr of the float
    assert "seed: 4" in result.stderr
    assert decode_png(output.read_bytes()).size == (600, 640)


def test_train_uses_one_torch_thread_unless_threads_asks_for_more(tmp_path: Path) -> None:
    # torch's default is a thread per core, which on 200 points only contends: the CLI trains
    # as a service worker does, and says on standard error what torch was given.
    args = ("train", "data/curve.csv", "simple", "--epochs", "3", "-o", str(tmp_path / "b.png"))
    default = cli(*args)
    assert default.returncode == 0, default.stderr
    assert default.stderr.splitlines()[0] == "threads: 1 (--threads N for more)"
    assert TUTORIAL_LINE.match(default.stdout.splitlines()[0])  # stdout keeps the tutorial's
    more = cli(*args, "--threads", "2")
    assert more.returncode == 0, more.stderr
    assert more.stderr.splitlines()[0] == "threads: 2"
    refused = cli(*args, "--threads", "0")
    assert refused.returncode != 0
    assert "--threads must be at least 1" in refused.stderr
    help_text = cli("train", "--help").stdout
    assert "default: 1" in " ".join(help_text.split())


def test_train_field_style_and_mlp_flags(tmp_path: Path) -> None:
    output = tmp_path / "field.png"
    result = cli(
        "train",
        "data/linear.csv",
        "mlp",
        "--hidden-layers",
        "16,16",
        "--activation",
        "tanh",
        "--epochs",
        "300",
        "--optimizer",
        "sgd",
        "--lr",
        "0.1",
        "--momentum",
        "0.9",
        "--style",
        "field",
        "-o",
        str(output),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("Epoch 299, Loss: ")
    assert decode_png(output.read_bytes()).size == (800, 760)


def test_dump_points_saves_the_scatter(tmp_path: Path) -> None:
    output = tmp_path / "points.png"
    result = cli("dump-points", "data/curve.csv", "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert decode_png(output.read_bytes()).size == (600, 640)


def test_cli_refuses_bad_input_with_a_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("0.1,0.2,0\n0.3,nan,1\n")
    result = cli("train", str(bad), "simple")
    assert result.returncode != 0
    assert "row 2, column y: 'nan' is not a finite number" in result.stderr
    result = cli("train", "missing.csv", "simple")
    assert "cannot read missing.csv" in result.stderr
    result = cli("train", "data/curve.csv", "mlp", "--hidden-layers", "5000")
    assert "width 5000 is not allowed" in result.stderr
    result = cli("train", "data/curve.csv", "huge")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_pictures_go_to_the_current_folder_under_the_docs_names(tmp_path: Path) -> None:
    csv = str(PROJECT_ROOT / "data" / "curve.csv")
    trained = cli("train", csv, "simple", "--epochs", "50", "--seed", "1", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    dumped = cli("dump-points", csv, cwd=tmp_path)
    assert dumped.returncode == 0, dumped.stderr
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["curve-points.png", "curve-simple-boundary.png"]
    page = (PROJECT_ROOT / "docs" / "cli.md").read_text()
    for name in names:
        assert name in page
        # Run from the repository root, they are git-ignored.
        ignored = subprocess.run(["git", "check-ignore", "-q", name], cwd=PROJECT_ROOT, check=False)
        assert ignored.returncode == 0, f"{name} is not git-ignored"


def test_the_cli_and_the_ml_core_import_no_web_database_or_service_code() -> None:
    # app/ml/ is usable from a script, and the CLI is such a script.
    code = (
        "import sys, app.cli; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'sqlalchemy') "
        "or m.startswith(('app.services', 'app.api', 'app.models', 'app.core'))); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_service_commands_refuse_bad_input_saying_what_is_accepted() -> None:
    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app", *args],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    queues = run("worker", "--queues", "gpu")
    assert queues.returncode == 1
    assert "'gpu' is not one of cpu, cuda" in queues.stderr
    concurrency = run("worker", "--concurrency", "0")
    assert concurrency.returncode == 1
    assert "--concurrency must be at least 1" in concurrency.stderr
    unreachable = "postgresql+psycopg://postgres@127.0.0.1:9/nowhere"
    migrate = run("migrate", PC_DATABASE_URL=unreachable)
    assert migrate.returncode == 1
    assert "cannot migrate the database at PC_DATABASE_URL=" in migrate.stderr
    assert "Traceback" not in migrate.stderr


def test_train_defaults_and_flags_are_the_ones_docs_cli_md_gives() -> None:
    # docs/cli.md: `--epochs` defaults to the tutorial's 20001, a line every 1000 epochs, the
    # tutorial's Adam at lr 0.003 and full batch, `--style tutorial` the default; and it names
    # every flag of both commands.
    args = build_parser().parse_args(["train", "data/curve.csv", "complex"])
    assert (args.epochs, args.log_every, args.lr, args.optimizer, args.loss) == (
        20001,
        1000,
        0.003,
        "adam",
        "bce",
    )
    assert (args.batch_size, args.style, args.output) == (None, "tutorial", None)
    page = (PROJECT_ROOT / "docs" / "cli.md").read_text()
    prose = re.sub(r"```.*?```", "", page, flags=re.DOTALL)
    code = re.findall(r"```.*?```", page, flags=re.DOTALL) + re.findall(r"`([^`]+)`", prose)
    named = {word for span in code for word in span.split()}
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for command, subparser in commands.choices.items():
        assert command in named, command
        for action in subparser._actions:
            if action.option_strings and action.dest != "help":
                assert named & set(action.option_strings), (command, action.option_strings)
