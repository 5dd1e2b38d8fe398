"""GET /runs/{id}/export: ONNX files that onnxruntime runs to /predict's answers (without
PyTorch), and JSON weights that NumPy runs, as docs/operations.md shows."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient

from app.core.config import PROJECT_ROOT, Settings
from app.main import create_app
from app.ml.checkpoints import export_relpath
from app.services.storage import sweep_models_store
from tests.polling import wait_ended

OPERATIONS = (PROJECT_ROOT / "docs" / "operations.md").read_text()
# Every network a run can have: the tutorial's two, and an mlp with each activation.
NETWORKS: dict[str, dict[str, Any]] = {
    "simple": {"architecture": "simple"},
    "complex": {"architecture": "complex"},
    **{
        f"mlp-{activation}": {
            "architecture": "mlp",
            "hidden_layers": [12, 7],
            "activation": activation,
        }
        for activation in ("relu", "tanh", "sigmoid", "gelu", "none")
    },
}


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, dict[str, int]]]:
    folder = tmp_path_factory.mktemp("export")
    settings = Settings(
        database_url=f"sqlite:///{folder / 'pc.sqlite3'}",
        models_store=folder / "models_store",
        builtin_data_dir=PROJECT_ROOT / "data",
        allowed_hosts=["testserver"],  # the Host that Starlette's TestClient sends
        workers=2,
    )
    with TestClient(create_app(settings)) as client:
        ids = {}
        for name, network in NETWORKS.items():
            body = {
                **network,
                "epochs": 300,
                "checkpoint_every": 100,
                "seed": 2,
                "learning_rate": 0.01,
            }
            ids[name] = client.post("/runs", json=body).json()["id"]
        for run_id in ids.values():
            assert wait_ended(client, run_id, 120)["status"] == "succeeded"
        yield client, ids


def thousand_points() -> np.ndarray:
    return np.random.default_rng(5).uniform(-0.3, 1.3, size=(1000, 2)).astype(np.float32)


def predicted(
    client: TestClient, run_id: int, points: np.ndarray, epoch: int | None = None
) -> np.ndarray:
    body = {"run_id": run_id, "points": points.tolist(), "epoch": epoch}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    return np.array(response.json()["probabilities"])


@pytest.mark.live
@pytest.mark.parametrize("network", list(NETWORKS))
def test_onnx_gives_predicts_probabilities(
    trained: tuple[TestClient, dict[str, int]], network: str
) -> None:
    client, ids = trained
    response = client.get(f"/runs/{ids[network]}/export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    assert (
        f'filename="run-{ids[network]}-epoch-300.onnx"' in response.headers["content-disposition"]
    )
    session = ort.InferenceSession(response.content, providers=["CPUExecutionProvider"])
    (inputs,), (outputs,) = session.get_inputs(), session.get_outputs()
    assert (inputs.name, inputs.type, inputs.shape[1]) == ("points", "tensor(float)", 2)
    assert isinstance(inputs.shape[0], str)  # N is dynamic
    assert (outputs.name, outputs.type, len(outputs.shape)) == ("probabilities", "tensor(float)", 1)
    points = thousand_points()
    (probabilities,) = session.run(None, {"points": points})
    assert probabilities.shape == (1000,)
    assert np.abs(probabilities - predicted(client, ids[network], points)).max() < 1e-6
    metadata = session.get_modelmeta().custom_metadata_map
    assert metadata["run_id"] == str(ids[network])
    assert metadata["epoch"] == "300"
    assert metadata["architecture"] == NETWORKS[network]["architecture"]
    assert metadata["dataset"] == "curve"


@pytest.mark.live
def test_an_earlier_checkpoint_and_the_cache(
    trained: tuple[TestClient, dict[str, int]], tmp_path: Path
) -> None:
    client, ids = trained
    run_id = ids["complex"]
    first = client.get(f"/runs/{run_id}/export", params={"epoch": 100})
    assert first.status_code == 200
    session = ort.InferenceSession(first.content, providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map["epoch"] == "100"
    points = thousand_points()
    (early,) = session.run(None, {"points": points})
    assert np.abs(early - predicted(client, run_id, points, epoch=100)).max() < 1e-6
    assert np.abs(early - predicted(client, run_id, points)).max() > 1e-3  # not the last one
    checkpoint = client.get(f"/runs/{run_id}/checkpoints").json()[1]
    store: Path = client.app.state.settings.models_store  # type: ignore[attr-defined]
    cached = store / export_relpath(run_id, 100, checkpoint["sha256"])
    assert cached.read_bytes() == first.content
    assert client.get(f"/runs/{run_id}/export", params={"epoch": 100}).content == first.content
    # The start-up sweep keeps an export whose checkpoint is known, and drops an orphan.
    orphan = store / export_relpath(run_id, 150, "0" * 64)
    orphan.write_bytes(b"stale")
    with client.app.state.session_factory() as session_:  # type: ignore[attr-defined]
        removed = sweep_models_store(session_, store)
    assert removed == [orphan.relative_to(store).as_posix()]
    assert cached.is_file()
    assert len(list((store / f"run-{run_id}").glob("epoch-000000100*.pt"))) == 1  # kept


@pytest.mark.live
def test_refusals(trained: tuple[TestClient, dict[str, int]], client: TestClient) -> None:
    trained_client, ids = trained
    missing = trained_client.get(f"/runs/{ids['simple']}/export", params={"epoch": 150})
    assert missing.status_code == 404
    assert missing.json()["detail"].endswith("its checkpoints: 0, 100, 200, 300")
    assert trained_client.get("/runs/99999/export").status_code == 404
    bad = trained_client.get(f"/runs/{ids['simple']}/export", params={"format": "pt"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "format"]
    queued = client.post("/runs", json={"epochs": 5}).json()["id"]  # no runner in `client`
    for format in ("onnx", "json"):
        response = client.get(f"/runs/{queued}/export", params={"format": format})
        assert response.status_code == 409
        assert "no checkpoint yet" in response.json()["detail"]


@pytest.mark.live
@pytest.mark.parametrize("network", ["complex", "mlp-gelu", "mlp-none", "simple"])
def test_json_weights_run_in_numpy_as_the_docs_show(
    trained: tuple[TestClient, dict[str, int]], network: str
) -> None:
    client, ids = trained
    response = client.get(f"/runs/{ids[network]}/export", params={"format": "json"})
    assert response.status_code == 200
    model = response.json()
    assert (model["run_id"], model["epoch"], model["dataset"]) == (ids[network], 300, "curve")
    widths = [2, *model["hidden_layers"], 1]
    assert [np.shape(layer["weight"]) for layer in model["layers"]] == list(
        zip(widths[1:], widths[:-1], strict=True)
    )
    snippet = re.search(r"```python\n(import json\n.*?)```", OPERATIONS, re.S)
    assert snippet is not None, "docs/operations.md's NumPy example is missing"
    names: dict[str, Any] = {}
    exec(snippet.group(1), names)
    points = thousand_points()
    ours = names["probabilities"](model, points)
    # NumPy computes in float64, the service in float32: 128-wide sums differ by a few 1e-6.
    assert np.abs(ours - predicted(client, ids[network], points)).max() < 1e-5


@pytest.mark.live
def test_the_docs_onnx_example_runs_without_pytorch(
    trained: tuple[TestClient, dict[str, int]], tmp_path: Path
) -> None:
    client, ids = trained
    (tmp_path / "run-1.onnx").write_bytes(client.get(f"/runs/{ids['complex']}/export").content)
    example = re.search(
        r'python -c "\n(import numpy as np, onnxruntime as ort\n.*?)"\n', OPERATIONS, re.S
    )
    assert example is not None, "docs/operations.md's onnxruntime example is missing"
    blocked = "import sys; sys.modules['torch'] = None\n"  # any import of torch now fails
    done = subprocess.run(
        [sys.executable, "-c", blocked + example.group(1)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    metadata_line, numbers = done.stdout.splitlines()[0], " ".join(done.stdout.splitlines()[1:])
    assert f"'run_id': '{ids['complex']}'" in metadata_line
    shown = [float(v) for v in re.findall(r"[\d.e-]+", numbers)]
    expected = predicted(client, ids["complex"], np.array([[0.2, 0.9], [0.8, 0.1]], np.float32))
    assert np.allclose(shown, expected, atol=1e-6)


def test_the_exporter_is_not_imported_at_start_up() -> None:
    code = "import sys, app.main; print(sorted(m for m in sys.modules if m.startswith('onnx')))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.replace("'", '"')) == []
