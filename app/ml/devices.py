"""Which compute devices this machine has, and turning a requested device into a real one."""

from __future__ import annotations

import re

import torch

DEVICE_PATTERN = r"^(auto|cpu|cuda|cuda:\d{1,2})$"
DEVICE_RULE = "auto, cpu, cuda or cuda:N (N: a CUDA device's index)"


class DeviceUnavailable(ValueError):
    """The requested device does not exist on this machine; the message says what does."""


def cuda_device_names() -> list[str]:
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def available_devices() -> list[str]:
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["cpu", *(["cuda"] if count else []), *(f"cuda:{i}" for i in range(count))]


def training_device_name() -> str:
    """What this process trains on by default, for the workers table: its GPU's name, or cpu."""
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def device_refusal(requested: str) -> str:
    """What a device that is not one of DEVICE_PATTERN's is told: what is accepted, and what
    this machine has."""
    return (
        f"device {requested!r} is not one of {DEVICE_RULE}; this server has "
        f"{', '.join(available_devices())}"
    )


def resolve_device(requested: str) -> torch.device:
    """`auto` picks CUDA when present; asking for a device that is not there is an error."""
    if not re.fullmatch(DEVICE_PATTERN, requested):
        raise DeviceUnavailable(device_refusal(requested))
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if requested == "auto":
        return torch.device("cuda:0" if count else "cpu")
    if requested == "cpu":
        return torch.device("cpu")
    index = int(requested.partition(":")[2] or 0)
    if count == 0:
        raise DeviceUnavailable(
            f"device {requested!r} was asked for but CUDA is not available on this server; "
            f"available devices: {', '.join(available_devices())}"
        )
    if index >= count:
        raise DeviceUnavailable(
            f"device {requested!r} does not exist: this server has {count} CUDA device(s); "
            f"available devices: {', '.join(available_devices())}"
        )
    return torch.device(f"cuda:{index}")
