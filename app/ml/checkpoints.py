"""Checkpoint files: written atomically, named by the server, loaded only after a hash check.

A checkpoint holds everything needed to rebuild the model and continue training from the file
alone: model and optimizer state, epochs done, the run's configuration and the RNG states.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from app.vocabulary import Optimizer

CHECKPOINT_FORMAT = 1
TMP_SUFFIX = ".tmp"
# A temporary file names the host and pid writing it (`.<host>-<pid>.tmp`): only a process on
# that host can tell whether the writer is gone (the store may be shared by several machines).
TMP_WRITER = re.compile(r"\.([A-Za-z0-9_]+)-(\d+)" + re.escape(TMP_SUFFIX) + "$")


def host_tag() -> str:
    """This host's name as it stands in temporary files' names."""
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:64] or "host"


@dataclass(frozen=True)
class CheckpointRef:
    """Where a run's checkpoint lives in the store, and the sha256 it must have."""

    run_id: int
    epoch: int
    path: str  # relative to the store
    sha256: str


class CheckpointError(Exception):
    """A checkpoint file is missing, does not match its recorded hash, or cannot be read."""


def run_folder_name(run_id: int) -> str:
    return f"run-{int(run_id)}"


def checkpoint_relpath(run_id: int, epoch: int, claim: int = 0) -> str:
    """Where a run's checkpoint lives, relative to the store: built from integers only. A
    worker names the claim it holds on the run (`runs.claim`, never the same for two workers),
    so two workers that both believe they own a run never write the same file; claim 0 is a
    file written outside any worker (scripts, tests)."""
    name = f"epoch-{int(epoch):09d}" + (f"-c{int(claim)}" if claim else "")
    return f"{run_folder_name(run_id)}/{name}.pt"


def export_relpath(run_id: int, epoch: int, sha256: str) -> str:
    """Where a checkpoint's ONNX export is cached: beside it, named by its hash as well, so a
    checkpoint written again never serves an old export."""
    return f"{run_folder_name(run_id)}/epoch-{int(epoch):09d}-{sha256[:12]}.onnx"


def to_cpu(value: Any) -> Any:
    """A copy of nested state with every tensor on the CPU, so any machine can load it."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: to_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(to_cpu(item) for item in value)
    return value


def estimated_checkpoint_bytes(parameter_count: int, optimizer_slots: int) -> int:
    """About how large a checkpoint of a network is: its weights and as many more per
    optimizer slot (Adam keeps two), in float32, and torch's format around them."""
    return parameter_count * 4 * (1 + optimizer_slots) + 16 * 1024


# torch.optim's names for the two per-parameter buffers of each optimizer, in its state_dict.
STATE_NAMES: dict[Optimizer, tuple[str, str | None]] = {
    Optimizer.ADAM: ("exp_avg", "exp_avg_sq"),
    Optimizer.RMSPROP: ("momentum_buffer", "square_avg"),
    Optimizer.SGD: ("momentum_buffer", None),
}


def kept_buffers(kind: Optimizer, momentum: float) -> dict[str, bool]:
    """torch.optim's per-parameter buffers for this optimizer, by name, each with whether it
    keeps that one: SGD keeps neither a step count nor, without momentum, any buffer."""
    first_name, second_name = STATE_NAMES[kind]
    kept = {first_name: kind == Optimizer.ADAM or momentum > 0}
    if second_name is not None:
        kept[second_name] = True
    return kept


def run_checkpoint_bytes(parameter_count: int, optimizer: Optimizer, momentum: float) -> int:
    """About how large one checkpoint of a network trained with this optimizer is: its
    weights and each per-parameter buffer the optimizer keeps."""
    slots = sum(kept_buffers(optimizer, momentum).values())
    return estimated_checkpoint_bytes(parameter_count, slots)


def serialize_checkpoint(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buffer)
    return buffer.getvalue()


def write_checkpoint(store: Path, relpath: str, state: dict[str, Any]) -> tuple[str, int]:
    """Write atomically (temporary file, fsync, rename); return (sha256, size in bytes)."""
    return write_checkpoint_bytes(store, relpath, serialize_checkpoint(state))


def write_checkpoint_bytes(store: Path, relpath: str, data: bytes) -> tuple[str, int]:
    path = store / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{host_tag()}-{os.getpid()}{TMP_SUFFIX}")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half file behind
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return hashlib.sha256(data).hexdigest(), len(data)


def read_checkpoint_bytes(store: Path, relpath: str, sha256: str) -> bytes:
    path = store / relpath
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file {relpath} is missing") from None
    except OSError as exc:  # a folder in its place, a folder above it that became a file, ...
        reason = exc.strerror or type(exc).__name__
        raise CheckpointError(f"checkpoint file {relpath} cannot be read: {reason}") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise CheckpointError(
            f"checkpoint file {relpath} does not match its recorded sha256; refusing to load it"
        )
    return data


def load_checkpoint(store: Path, relpath: str, sha256: str) -> dict[str, Any]:
    """Load with `weights_only=True` after the hash matches: no pickled code ever runs."""
    data = read_checkpoint_bytes(store, relpath, sha256)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint file {relpath} cannot be read: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint file {relpath} is not a checkpoint of this service")
    return state
