"""The tutorial's training loop, written as the tutorial writes it: the baseline of the suite.

Full batch, a sigmoid output with BCELoss, Adam with lr 0.003 and its default kernel, and the
loss printed every 1000 epochs.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

EVERY = 1000


def tutorial_model(architecture: str) -> nn.Sequential:
    if architecture == "simple":
        return nn.Sequential(nn.Linear(2, 1), nn.Sigmoid())
    return nn.Sequential(
        nn.Linear(2, 128),
        nn.ReLU(),
        nn.Linear(128, 128),
        nn.ReLU(),
        nn.Linear(128, 1),
        nn.Sigmoid(),
    )


def run_tutorial_loop(csv_path: Path, architecture: str, epochs: int, seed: int = 0) -> float:
    """Train as the tutorial does; the seconds the loop took (data loading excluded)."""
    data = np.loadtxt(csv_path, delimiter=",", dtype=np.float32)
    x, y = torch.tensor(data[:, :2]), torch.tensor(data[:, 2:])
    torch.manual_seed(seed)
    model = tutorial_model(architecture)
    criterion = nn.BCELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    printed = io.StringIO()  # printed as the tutorial prints, kept off the suite's table
    started = time.perf_counter()
    for epoch in range(epochs):
        optimizer.zero_grad()
        outputs = model(x)
        loss = criterion(outputs, y)
        loss.backward()
        optimizer.step()
        if epoch % EVERY == 0:
            print(f"Epoch {epoch}, Loss: {loss.item()}", file=printed)
    return time.perf_counter() - started
