"""The models store going wrong under a run: a checkpoint path turned into a folder, a run
folder turned into a file, a full disk, a store mounted read-only. Each is a clear 409 (or a
clean failure), never a 500, never a half file left behind."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from fastapi.testclient import TestClient

from app.core.config import PROJECT_ROOT, Settings
from app.core.errors import DatabaseUnusable
from app.main import create_app
from app.ml.architectures import SIMPLE
from app.ml.checkpoints import TMP_SUFFIX, checkpoint_relpath, export_relpath, write_checkpoint
from app.ml.engine import Report, TrainConfig, TrainResult, train
from app.models import Checkpoint


class KeepStates:
    def __init__(self) -> None:
        self.states: dict[int, dict[str, Any]] = {}

    def on_progress(self, reports: list[Report]) -> Collection[int]:
        return ()

    def on_checkpoint(self, member: int, epoch: int, state: dict[str, Any]) -> None:
        self.states[epoch] = state

    def on_end(self, member: int, result: TrainResult) -> None:
        pass


def trained_state(epochs: int = 20) -> dict[str, Any]:
    corners = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    kept = KeepStates()
    config = TrainConfig(network=SIMPLE, epochs=epochs, checkpoint_every=epochs)
    train(config, corners, torch.device("cpu"), kept)
    return kept.states[epochs]


def add_checkpoint(
    client: TestClient, store: Path, epochs: int = 20, state: dict[str, Any] | None = None
) -> tuple[int, str]:
    """A run (queued, no workers here) with one real checkpoint file and its row."""
    run_id: int = client.post("/runs", json={"architecture": "simple", "epochs": epochs}).json()[
        "id"
    ]
    relpath = checkpoint_relpath(run_id, epochs)
    sha256, size = write_checkpoint(store, relpath, state or trained_state(epochs))
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        session.add(
            Checkpoint(run_id=run_id, epoch=epochs, path=relpath, sha256=sha256, size_bytes=size)
        )
        session.commit()
    return run_id, relpath


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")


@pytest.fixture
def small_store(tmp_path: Path) -> Iterator[Path]:
    store = tmp_path / "store"
    mount_tmpfs(store, "2m")
    try:
        yield store
    finally:
        subprocess.run(["umount", "-l", str(store)], check=False)


@pytest.fixture
def store_client(settings: Settings, small_store: Path) -> Iterator[TestClient]:
    settings.models_store = small_store
    with TestClient(create_app(settings)) as client:
        yield client


def expect_409_naming(response: Any, relpath: str) -> None:
    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert relpath in detail, detail


@pytest.mark.parametrize("fault", ["file became a folder", "folder became a file"])
def test_a_damaged_store_is_409_on_every_route_that_reads_it(
    client: TestClient, settings: Settings, fault: str
) -> None:
    run_id, relpath = add_checkpoint(client, settings.models_store)
    path = settings.models_store / relpath
    if fault == "file became a folder":
        path.unlink()
        path.mkdir()
    else:
        shutil.rmtree(path.parent)
        path.parent.write_text("not a folder")
    expect_409_naming(client.get(f"/runs/{run_id}/boundary.png"), relpath)
    expect_409_naming(client.get(f"/runs/{run_id}/checkpoints/20"), relpath)
    expect_409_naming(
        client.post("/predict", json={"run_id": run_id, "points": [[0.5, 0.5]]}), relpath
    )


def test_a_full_disk_leaves_no_temporary_file(small_store: Path) -> None:
    state = trained_state()
    state["padding"] = torch.zeros(1_000_000)  # 4 MB: more than the 2 MB store holds
    with pytest.raises(OSError, match="No space left"):
        write_checkpoint(small_store, checkpoint_relpath(1, 20), state)
    leftovers = [p.name for p in small_store.rglob("*") if p.name.endswith(TMP_SUFFIX)]
    assert leftovers == []


def test_delete_on_a_read_only_store_deletes_the_run_and_leaves_its_files_to_the_sweep(
    store_client: TestClient, small_store: Path, settings: Settings, caplog: Any
) -> None:
    # Files go after the rows commit, never before: a store that will not let them go leaves
    # stray files (logged, swept at the next start), never a run whose files are half gone.
    run_id, relpath = add_checkpoint(store_client, small_store)
    subprocess.run(["mount", "-o", "remount,ro", str(small_store)], check=True)
    try:
        response = store_client.delete(f"/runs/{run_id}")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_store)], check=True)
    assert response.status_code == 204, response.text
    assert store_client.get(f"/runs/{run_id}").status_code == 404
    assert (small_store / relpath).is_file()
    assert "could not remove" in caplog.text
    with TestClient(create_app(settings)):
        pass  # a start sweeps the store
    assert not (small_store / f"run-{run_id}").exists()


def fill(store: Path) -> None:
    """Write a file until the store has not one byte left."""
    with pytest.raises(OSError, match="No space left"):
        (store / "filler").write_bytes(bytes(4 * 1024 * 1024))  # twice what the store holds


def expect_onnx_served_uncached(client: TestClient, store: Path, run_id: int, caplog: Any) -> bytes:
    """The export answers 200 with a model that predicts as /predict does, though the store
    kept no copy of it, and the log says why."""
    response = client.get(f"/runs/{run_id}/export", params={"format": "onnx"})
    assert response.status_code == 200, response.text
    session = ort.InferenceSession(response.content, providers=["CPUExecutionProvider"])
    points = [[0.0, 0.0], [1.0, 1.0], [0.25, 0.75]]
    (probabilities,) = session.run(None, {"points": np.array(points, dtype=np.float32)})
    predicted = client.post("/predict", json={"run_id": run_id, "points": points})
    assert predicted.status_code == 200, predicted.text
    assert np.abs(probabilities - predicted.json()["probabilities"]).max() < 1e-6
    sha256 = client.get(f"/runs/{run_id}/checkpoints").json()[0]["sha256"]
    assert not (store / export_relpath(run_id, 20, sha256)).exists()
    assert [p.name for p in store.rglob(f"*{TMP_SUFFIX}")] == []
    assert "served uncached" in caplog.text
    served: bytes = response.content
    return served


def test_onnx_export_on_a_read_only_store_is_served_uncached(
    store_client: TestClient, small_store: Path, caplog: Any
) -> None:
    run_id, _ = add_checkpoint(store_client, small_store)
    subprocess.run(["mount", "-o", "remount,ro", str(small_store)], check=True)
    try:
        expect_onnx_served_uncached(store_client, small_store, run_id, caplog)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_store)], check=True)


def test_onnx_export_on_a_full_store_is_served_uncached_and_cached_once_there_is_room(
    store_client: TestClient, small_store: Path, caplog: Any
) -> None:
    run_id, _ = add_checkpoint(store_client, small_store)
    fill(small_store)
    served = expect_onnx_served_uncached(store_client, small_store, run_id, caplog)
    (small_store / "filler").unlink()
    again = store_client.get(f"/runs/{run_id}/export", params={"format": "onnx"})
    assert again.content == served
    assert [p.suffix for p in (small_store / f"run-{run_id}").iterdir()].count(".onnx") == 1


def test_predict_refuses_coordinates_past_float32_and_never_answers_nan(
    client: TestClient, settings: Settings
) -> None:
    state = trained_state()
    # Weights that make 3e38 overflow: 2 * 3e38 is infinite in float32, and x - y then NaN.
    state["model"] = {"0.weight": torch.tensor([[2.0, 2.0]]), "0.bias": torch.tensor([0.0])}
    run_id, _ = add_checkpoint(client, settings.models_store, state=state)
    for value in (1e39, -1e300):
        response = client.post("/predict", json={"run_id": run_id, "points": [[0.5, value]]})
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", "points", 0, 1]
    fine = client.post("/predict", json={"run_id": run_id, "points": [[0.5, 0.5], [3e38, 3e38]]})
    assert fine.status_code == 200, fine.text
    assert fine.json()["probabilities"] == [pytest.approx(0.8808, abs=1e-4), 1.0]
    response = client.post(
        "/predict", json={"run_id": run_id, "points": [[0.5, 0.5], [3e38, -3e38]]}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("points[1] = [3e+38, -3e+38]")


def test_a_read_only_database_at_start_names_pc_database_url(
    small_store: Path, tmp_path: Path
) -> None:
    database = small_store / "pc.sqlite3"
    database.write_bytes(b"")
    subprocess.run(["mount", "-o", "remount,ro", str(small_store)], check=True)
    settings = Settings(
        database_url=f"sqlite:///{database}",
        models_store=tmp_path / "store",
        builtin_data_dir=PROJECT_ROOT / "data",
        runner_enabled=False,
    )
    with (
        pytest.raises(DatabaseUnusable, match="PC_DATABASE_URL") as caught,
        TestClient(create_app(settings)),
    ):
        pass
    assert str(database) in str(caught.value)
    assert "writable" in str(caught.value)
