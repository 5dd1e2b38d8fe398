"""The runs API in-process, with the runner off: the contract and every refusal."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from app.core.config import PROJECT_ROOT
from app.ml.checkpoints import checkpoint_relpath
from app.ml.devices import available_devices
from app.ml.engine import split_indices
from app.models import Checkpoint


@pytest.fixture
def database_url(both_databases: str) -> str:
    return both_databases  # these run on SQLite and on PostgreSQL


SHORT = {"architecture": "simple", "epochs": 10}


def create(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/runs", json={**SHORT, **body})
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()
    return run


def test_post_runs_queues_with_tutorial_defaults(client: TestClient) -> None:
    response = client.post("/runs", json={})
    assert response.status_code == 202
    run = response.json()
    assert response.headers["location"] == f"/runs/{run['id']}"
    assert run["status"] == "queued"
    assert run["dataset"] == "curve"
    assert run["architecture"] == "complex"
    assert run["hidden_layers"] == [128, 128]
    assert run["activation"] == "relu"
    assert run["parameter_count"] == 17025
    assert run["epochs"] == run["requested_epochs"] == 20001  # range(20001)
    assert run["cancel_requested"] is False
    assert run["epoch"] == 0
    assert run["learning_rate"] == 0.003
    assert run["optimizer"] == "adam"
    assert run["loss_function"] == "bce"
    assert run["batch_size"] is None
    assert run["device"] == "auto"
    assert run["checkpoint_every"] == 1000
    assert run["log_every"] == 1000
    assert isinstance(run["seed"], int)
    for field in ("device_used", "final_loss", "accuracy", "error", "started_at", "finished_at"):
        assert run[field] is None
    assert client.get(f"/runs/{run['id']}").json() == run


def test_a_seed_is_drawn_and_stored_when_not_given(client: TestClient) -> None:
    seeds = {create(client)["seed"] for _ in range(5)}
    assert len(seeds) > 1
    assert create(client, seed=42)["seed"] == 42


def test_mlp_records_its_shape_and_parameter_count(client: TestClient) -> None:
    run = create(client, architecture="mlp", hidden_layers=[8, 4], activation="tanh")
    assert run["hidden_layers"] == [8, 4]
    assert run["activation"] == "tanh"
    assert run["parameter_count"] == (2 * 8 + 8) + (8 * 4 + 4) + (4 + 1)
    assert create(client, architecture="mlp")["hidden_layers"] == [64, 64]


def test_the_loss_is_a_choice_kept_with_the_run(client: TestClient) -> None:
    run = client.post("/runs", json={"architecture": "simple", "loss": "mse"}).json()
    assert run["loss_function"] == "mse"
    assert client.get(f"/runs/{run['id']}").json()["loss_function"] == "mse"


def test_architectures_lists_parameter_counts(client: TestClient) -> None:
    counts = {a["name"]: a["parameter_count"] for a in client.get("/architectures").json()}
    assert counts["simple"] == 3
    assert counts["complex"] == 17025
    assert "mlp" in counts


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"architecture": "transformer"}, "architecture"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": -3}, "epochs"),
        ({"epochs": 10**9}, "epochs"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"loss": "hinge"}, "loss"),
        ({"loss": 1}, "loss"),
        ({"momentum": 1.5}, "momentum"),
        ({"batch_size": 0}, "batch_size"),
        ({"seed": -1}, "seed"),
        ({"device": "tpu"}, "device"),
        ({"device": "cuda:x"}, "device"),
        ({"validation_split": 0.9}, "validation_split"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
        ({"log_every": 0}, "log_every"),
        ({"architecture": "mlp", "hidden_layers": [2000]}, "hidden_layers"),
        ({"architecture": "mlp", "hidden_layers": [0]}, "hidden_layers"),
        ({"architecture": "mlp", "hidden_layers": [8] * 9}, "hidden_layers"),
        ({"architecture": "mlp", "hidden_layers": []}, "hidden_layers"),
        ({"architecture": "simple", "hidden_layers": [8]}, "hidden_layers"),
        ({"architecture": "complex", "activation": "tanh"}, "activation"),
        ({"architecture": "mlp", "activation": "swish"}, "activation"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_run_requests_are_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/runs", json={**SHORT, **body})
    assert response.status_code == 422, response.text
    assert field in str(response.json()["detail"])
    assert client.get("/runs").json()["count"] == 0


def test_hidden_layers_are_1_to_8_widths_of_1_to_1024(client: TestClient) -> None:
    # docs/walkthrough.md: `hidden_layers` (1 to 8 widths up to 1024), at both edges.
    for layers in ([1], [1024] * 8):
        assert create(client, architecture="mlp", hidden_layers=layers)["hidden_layers"] == layers
    for layers in ([], [0], [1025], [1] * 9):
        body = {**SHORT, "architecture": "mlp", "hidden_layers": layers}
        response = client.post("/runs", json=body)
        assert response.status_code == 422, layers
        assert "hidden_layers" in str(response.json()["detail"])
    assert client.get("/runs").json()["count"] == 2


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "CPU", "mps", "cuda:123"])
def test_an_unknown_device_is_422_listing_the_devices_accepted_and_present(
    client: TestClient, device: str
) -> None:
    response = client.post("/runs", json={**SHORT, "device": device})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "simple", "device"]
    assert error["msg"] == (
        f"device {device!r} is not one of auto, cpu, cuda or cuda:N (N: a CUDA device's "
        f"index); this server has {', '.join(available_devices())}"
    )
    assert client.get("/runs").json()["count"] == 0


def test_unknown_dataset_is_404_naming_the_field(client: TestClient) -> None:
    response = client.post("/runs", json={**SHORT, "dataset": "nope"})
    assert response.status_code == 404
    assert response.json()["detail"] == "dataset: no dataset with id or name 'nope'"


def test_too_small_checkpoint_interval_is_raised_to_keep_1000_checkpoints(
    client: TestClient,
) -> None:
    run = create(client, epochs=100_000, checkpoint_every=1)
    assert run["checkpoint_every"] == 100
    assert create(client, epochs=100_000, checkpoint_every=500)["checkpoint_every"] == 500


def test_a_wrong_method_lists_every_allowed_one(client: TestClient) -> None:
    response = client.put("/datasets/curve")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"


def test_cuda_where_there_is_none_says_what_is_available(client: TestClient) -> None:
    import torch

    if torch.cuda.is_available():
        response = client.post("/runs", json={**SHORT, "device": "cuda:99"})
        assert response.status_code == 422
        assert "does not exist" in response.json()["detail"]
        return
    for device in ("cuda", "cuda:0", "cuda:3"):
        response = client.post("/runs", json={**SHORT, "device": device})
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert "CUDA is not available" in detail
        assert "available devices: cpu" in detail
    assert client.post("/runs", json={**SHORT, "device": "cpu"}).status_code == 202


def test_a_validation_split_always_holds_out_a_point(client: TestClient) -> None:
    client.post(
        "/datasets",
        files={"file": ("two.csv", b"0.1,0.1,0\n0.9,0.9,1\n")},
        data={"name": "two"},
    )
    response = client.post("/runs", json={**SHORT, "dataset": "two", "validation_split": 0.1})
    assert response.status_code == 202
    assert split_indices(2, 0.1, seed=0)[1].numel() == 1
    assert split_indices(200, 0.0001, seed=0)[1].numel() == 1
    assert split_indices(200, 0.5, seed=0)[1].numel() == 100


def test_list_runs_newest_first_with_filters(client: TestClient) -> None:
    a = create(client, dataset="linear")
    b = create(client, architecture="complex")
    c = create(client, architecture="mlp", dataset="random")
    body = client.get("/runs").json()
    assert [r["id"] for r in body["data"]] == [c["id"], b["id"], a["id"]]
    assert body["count"] == 3
    assert [r["id"] for r in client.get("/runs?architecture=complex").json()["data"]] == [b["id"]]
    assert [r["id"] for r in client.get("/runs?dataset=linear").json()["data"]] == [a["id"]]
    linear_id = client.get("/datasets/linear").json()["id"]
    assert client.get(f"/runs?dataset={linear_id}").json()["count"] == 1
    assert client.get("/runs?status=queued&limit=1&offset=1").json()["data"][0]["id"] == b["id"]
    assert client.get("/runs?status=succeeded").json()["count"] == 0
    assert client.get("/runs?status=bogus").status_code == 422
    assert client.get("/runs?dataset=nope").status_code == 404


def test_unknown_run_is_404_everywhere(client: TestClient) -> None:
    for method, path in [
        ("GET", "/runs/999"),
        ("GET", "/runs/999/log"),
        ("GET", "/runs/999/checkpoints"),
        ("GET", "/runs/999/checkpoints/0"),
        ("POST", "/runs/999/cancel"),
        ("DELETE", "/runs/999"),
    ]:
        response = client.request(method, path)
        assert response.status_code == 404, (method, path)
        assert "no run with id 999" in response.json()["detail"]
    assert client.post("/runs/999/resume", json={"epochs": 5}).status_code == 404
    assert client.get("/runs/0").status_code == 422
    assert client.get("/runs/abc").status_code == 422


def test_cancel_a_queued_run_then_cancel_again_is_409(client: TestClient) -> None:
    run = create(client)
    response = client.post(f"/runs/{run['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None
    again = client.post(f"/runs/{run['id']}/cancel")
    assert again.status_code == 409
    assert "already ended (cancelled)" in again.json()["detail"]


def test_resume_needs_an_ended_run_and_starts_over_without_a_checkpoint(
    client: TestClient,
) -> None:
    run = create(client, epochs=300)
    response = client.post(f"/runs/{run['id']}/resume", json={"epochs": 5})
    assert response.status_code == 409
    assert "only an ended run" in response.json()["detail"]
    client.post(f"/runs/{run['id']}/cancel")  # while queued: no checkpoint yet
    response = client.post(f"/runs/{run['id']}/resume", json={"epochs": 5})
    assert response.status_code == 202
    resumed = response.json()
    assert (resumed["status"], resumed["epochs"], resumed["requested_epochs"]) == ("queued", 5, 300)
    client.post(f"/runs/{run['id']}/cancel")
    for bad in ({"epochs": 0}, {}, {"epochs": 5, "lr": 1}):
        assert client.post(f"/runs/{run['id']}/resume", json=bad).status_code == 422


def test_delete_run_then_404_and_dataset_is_free(client: TestClient) -> None:
    client.post("/datasets/generate", json={"kind": "xor", "name": "mine"})
    run = create(client, dataset="mine")
    response = client.delete("/datasets/mine")
    assert response.status_code == 409
    assert "used by 1 run(s)" in response.json()["detail"]
    assert client.delete(f"/runs/{run['id']}").status_code == 204
    assert client.get(f"/runs/{run['id']}").status_code == 404
    assert client.delete("/datasets/mine").status_code == 204


def test_health_counts_the_queue(client: TestClient) -> None:
    create(client)
    create(client)
    assert client.get("/health").json()["queue"] == {"queued": 2, "running": 0}
    assert client.get("/health").json()["workers"] is None  # this app runs no workers


def test_log_of_a_run_with_no_epochs_yet_is_empty_text(client: TestClient) -> None:
    run = create(client)
    response = client.get(f"/runs/{run['id']}/log")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == ""


def test_a_missing_checkpoint_is_the_404_the_walkthrough_shows(client: TestClient) -> None:
    # docs/walkthrough.md quotes the 404 for the tutorial's run 1 asked for epoch 1500.
    page = (PROJECT_ROOT / "docs" / "walkthrough.md").read_text()
    quoted = re.search(r"names every checkpoint the run has, shortly:\s*`([^`]+)`", page)
    assert quoted is not None
    expected = " ".join(quoted.group(1).split())
    run = create(client, architecture="complex", epochs=20001)
    assert run["id"] == 1
    epochs = [*range(0, 20001, 1000), 20001]  # every checkpoint_every, and at the end
    fake = {"run_id": 1, "sha256": "0" * 64, "size_bytes": 1}  # rows only: no file is read
    rows = [{**fake, "epoch": epoch, "path": checkpoint_relpath(1, epoch)} for epoch in epochs]
    with client.app.state.session_factory.begin() as session:  # type: ignore[attr-defined]
        session.execute(insert(Checkpoint), rows)
    for response in (
        client.get("/runs/1/checkpoints/1500"),
        client.get("/runs/1/boundary.png", params={"epoch": 1500}),
        client.get("/runs/1/export", params={"epoch": 1500}),
        client.post("/predict", json={"run_id": 1, "points": [[0.5, 0.5]], "epoch": 1500}),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["detail"] == expected
