"""The CUDA path: real code, run when a GPU is present and skipped, with the reason, where not."""

from __future__ import annotations

import pytest
import torch
from fastapi.testclient import TestClient

from app.ml.devices import resolve_device
from app.ml.engine import train
from tests.ml.training import Recorder, config, points

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine"
)


def test_training_on_cuda_follows_the_cpu_history() -> None:
    data = points("curve")
    cpu, gpu = Recorder(), Recorder()
    train(config(seed=3, epochs=300, checkpoint_every=100), data, torch.device("cpu"), cpu)
    result = train(
        config(seed=3, epochs=300, checkpoint_every=100), data, resolve_device("cuda"), gpu
    )
    assert result.outcome == "completed"
    assert result.device.startswith("cuda")
    assert len(gpu.losses) == 300
    assert gpu.losses[0] == pytest.approx(cpu.losses[0], rel=1e-4)
    assert gpu.losses[-1] == pytest.approx(cpu.losses[-1], rel=1e-2)
    # Checkpoints hold CPU tensors, so a machine without a GPU can load them.
    assert gpu.checkpoints[300]["model"]["0.weight"].device.type == "cpu"


def test_auto_picks_cuda_and_mini_batches_run_there() -> None:
    assert resolve_device("auto").type == "cuda"
    recorder = Recorder()
    result = train(
        config(epochs=20, batch_size=32), points("curve"), resolve_device("auto"), recorder
    )
    assert result.outcome == "completed"
    assert len(recorder.losses) == 20


def test_post_runs_accepts_cuda_devices_that_exist(client: TestClient) -> None:
    count = torch.cuda.device_count()
    for device in ("cuda", "cuda:0", f"cuda:{count - 1}"):
        response = client.post(
            "/runs", json={"architecture": "simple", "epochs": 5, "device": device}
        )
        assert response.status_code == 202, response.text
    response = client.post(
        "/runs", json={"architecture": "simple", "epochs": 5, "device": f"cuda:{count}"}
    )
    assert response.status_code == 422
    assert "does not exist" in response.json()["detail"]


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_the_fast_path_on_cuda_follows_autograd_on_cuda(loss: str) -> None:
    data, device = points("curve"), resolve_device("cuda")
    reference, fast = Recorder(), Recorder()
    run_config = config(seed=3, epochs=100, validation_split=0.1, loss=loss)
    train(run_config, data, device, reference, fast=False)
    train(run_config, data, device, fast, fast=True)
    # cuBLAS may pick other kernels for the two paths' products: rounding, not bits.
    assert fast.losses == pytest.approx(reference.losses, rel=1e-5)
    assert fast.val_losses == pytest.approx(reference.val_losses, rel=1e-5)
