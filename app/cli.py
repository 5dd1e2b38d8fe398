"""The tutorial's two commands, without a server, on the same ML core as the service.

    python -m app.cli train data/curve.csv complex      # prints Epoch 0, Loss: ... every 1000
    python -m app.cli dump-points data/curve.csv        # saves the scatter picture

Standard output carries exactly the tutorial's lines; everything else goes to standard error.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch

from app.ml.architectures import InvalidArchitecture, network_spec
from app.ml.datagen import Points
from app.ml.engine import Report, TrainConfig, TrainResult, train
from app.ml.inference import TrainedModel, model_from_checkpoint
from app.ml.plots import (
    render_model_boundary_png,
    render_model_tutorial_png,
    render_points_png,
)
from app.ml.points_csv import PointsFormatError, parse_points_csv
from app.vocabulary import (
    MAX_ID,
    TUTORIAL_EPOCHS,
    TUTORIAL_LEARNING_RATE,
    TUTORIAL_LOG_EVERY,
    Activation,
    Architecture,
    LossFunction,
    Optimizer,
)

MAX_CLI_POINTS = 10_000_000


class _PrintTutorialLines:
    """Prints `Epoch n, Loss: x` every `log_every` epochs and at the last, as losses arrive."""

    def __init__(self, log_every: int, last_epoch: int) -> None:
        self.log_every, self.last_epoch = log_every, last_epoch
        self.final_state: dict[str, Any] | None = None

    def on_progress(self, reports: list[Report]) -> Collection[int]:
        for report in reports:
            for epoch, loss in enumerate(report.losses, start=report.first_epoch):
                if epoch % self.log_every == 0 or epoch == self.last_epoch:
                    print(f"Epoch {epoch}, Loss: {loss}", flush=True)
        return ()

    def on_checkpoint(self, member: int, epoch: int, state: dict[str, Any]) -> None:
        self.final_state = state

    def on_end(self, member: int, result: TrainResult) -> None:
        pass


def _read_points(path: str) -> Points:
    try:
        return parse_points_csv(Path(path).read_bytes(), MAX_CLI_POINTS)
    except OSError as exc:
        raise SystemExit(f"error: cannot read {path}: {exc.strerror}") from None
    except PointsFormatError as exc:
        raise SystemExit(f"error: {path}: {exc}") from None


def _set_threads(asked: int | None) -> None:
    """One torch thread unless asked for more, as each of the service's workers trains: torch's
    default, a thread per core, gains nothing on a few hundred points, and on a machine whose
    cores are busy its threads wait on each other at every step."""
    torch.set_num_threads(asked or 1)
    hint = "" if asked else " (--threads N for more)"
    print(f"threads: {torch.get_num_threads()}{hint}", file=sys.stderr)


def _train(args: argparse.Namespace) -> None:
    _set_threads(args.threads)
    points = _read_points(args.csv)
    hidden = [int(w) for w in args.hidden_layers.split(",")] if args.hidden_layers else None
    try:
        spec = network_spec(args.architecture, hidden, args.activation)
    except (InvalidArchitecture, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    seed = args.seed if args.seed is not None else secrets.randbelow(MAX_ID + 1)
    print(f"seed: {seed}", file=sys.stderr)
    config = TrainConfig(
        network=spec,
        epochs=args.epochs,
        learning_rate=args.lr,
        optimizer=args.optimizer,
        momentum=args.momentum,
        batch_size=args.batch_size,
        loss=args.loss,
        seed=seed,
        checkpoint_every=args.epochs,  # only the final state is kept, for the picture
    )
    printer = _PrintTutorialLines(args.log_every, args.epochs - 1)
    result = train(config, points, torch.device("cpu"), printer)
    if result.outcome == "diverged":
        raise SystemExit(f"error: loss diverged at epoch {result.diverged_at}")
    assert printer.final_state is not None
    model = model_from_checkpoint(printer.final_state)
    output = Path(args.output or f"{Path(args.csv).stem}-{args.architecture}-boundary.png")
    output.write_bytes(_boundary_png(model, points, args, Path(args.csv).stem))
    print(f"accuracy: {result.accuracy:.4f}; boundary picture saved to {output}", file=sys.stderr)


def _boundary_png(
    model: TrainedModel, points: Points, args: argparse.Namespace, name: str
) -> bytes:
    if args.style == "field":
        return render_model_boundary_png(model, points, f"{args.architecture} on {name}")
    return render_model_tutorial_png(model, f"{args.architecture} on {name}")


def _dump_points(args: argparse.Namespace) -> None:
    points = _read_points(args.csv)
    output = Path(args.output or f"{Path(args.csv).stem}-points.png")
    output.write_bytes(render_points_png(points, Path(args.csv).stem))
    print(f"{len(points)} points; picture saved to {output}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.cli", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train_cmd = commands.add_parser("train", help="train a model and print the tutorial's lines")
    train_cmd.add_argument("csv", help="points as CSV rows x,y,label")
    train_cmd.add_argument("architecture", choices=list(Architecture))
    train_cmd.add_argument(
        "--epochs",
        type=int,
        default=TUTORIAL_EPOCHS,
        help=f"the tutorial's loop: {TUTORIAL_EPOCHS}",
    )
    train_cmd.add_argument(
        "--lr", type=float, default=TUTORIAL_LEARNING_RATE, help="the tutorial's: 0.003"
    )
    train_cmd.add_argument("--optimizer", choices=list(Optimizer), default=Optimizer.ADAM)
    train_cmd.add_argument("--momentum", type=float, default=0.0)
    train_cmd.add_argument(
        "--loss", choices=list(LossFunction), default=LossFunction.BCE, help="bce: the tutorial's"
    )
    train_cmd.add_argument("--batch-size", type=int, default=None, help="default: full batch")
    train_cmd.add_argument("--hidden-layers", default=None, help="mlp widths, e.g. 64,64")
    train_cmd.add_argument("--activation", choices=list(Activation), default=None, help="mlp only")
    train_cmd.add_argument("--seed", type=int, default=None, help="default: drawn and printed")
    train_cmd.add_argument("--log-every", type=int, default=TUTORIAL_LOG_EVERY)
    train_cmd.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: 1, as each service worker uses)",
    )
    train_cmd.add_argument(
        "--style",
        choices=["tutorial", "field"],
        default="tutorial",
        help="tutorial: 1000 random points by predicted class; field: probabilities",
    )
    train_cmd.add_argument("--output", "-o", default=None, help="the boundary picture's path")
    train_cmd.set_defaults(handler=_train)

    dump_cmd = commands.add_parser("dump-points", help="save the scatter picture of a CSV")
    dump_cmd.add_argument("csv")
    dump_cmd.add_argument("--output", "-o", default=None)
    dump_cmd.set_defaults(handler=_dump_points)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if getattr(args, "epochs", 1) < 1 or getattr(args, "log_every", 1) < 1:
        raise SystemExit("error: --epochs and --log-every must be at least 1")
    if getattr(args, "threads", None) is not None and args.threads < 1:
        raise SystemExit("error: --threads must be at least 1")
    args.handler(args)


if __name__ == "__main__":
    main()
