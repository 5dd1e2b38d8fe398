"""Sweeps: a grid expanded into ordinary runs, refused whole when any run would be, read back
with values and verdicts, cancelled and deleted as one."""

from __future__ import annotations

import csv as csv_module
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.config import PROJECT_ROOT, Settings
from app.main import create_app
from tests.images import decode_png, has_field_tints, saturated_pixels
from tests.polling import run_status, wait_ended, wait_for


def sweep_body(**values: Any) -> dict[str, Any]:
    body = {
        "dataset": "curve",
        "base": {"architecture": "simple", "epochs": 50},
        "grid": {"learning_rate": [0.01, 0.1], "seed": [1, 2, 3]},
    }
    return {**body, **values}


def test_the_grid_becomes_one_ordinary_run_per_combination(client: TestClient) -> None:
    response = client.post("/sweeps", json=sweep_body(name="rates"))
    assert response.status_code == 202, response.text
    sweep = response.json()
    assert response.headers["location"] == f"/sweeps/{sweep['id']}"
    assert (sweep["name"], sweep["dataset"]) == ("rates", "curve")
    assert sweep["counts"]["queued"] == 6
    values = [run["values"] for run in sweep["runs"]]
    assert values == [
        {"learning_rate": lr, "seed": seed} for lr in (0.01, 0.1) for seed in (1, 2, 3)
    ]
    for run in sweep["runs"]:
        assert run["verdict"] is None  # not ended yet
        ordinary = client.get(f"/runs/{run['id']}").json()
        assert (ordinary["learning_rate"], ordinary["seed"]) == (
            run["values"]["learning_rate"],
            run["values"]["seed"],
        )
        assert (ordinary["architecture"], ordinary["epochs"]) == ("simple", 50)
    assert client.get("/sweeps").json()["data"][0]["counts"]["queued"] == 6


def test_the_tutorials_defaults_fill_what_base_leaves_out(client: TestClient) -> None:
    sweep = client.post("/sweeps", json={"grid": {"loss": ["bce", "mse"]}}).json()
    runs = [client.get(f"/runs/{run['id']}").json() for run in sweep["runs"]]
    assert [run["loss_function"] for run in runs] == ["bce", "mse"]
    assert {(run["architecture"], run["epochs"], run["learning_rate"]) for run in runs} == {
        ("complex", 20001, 0.003)
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (sweep_body(grid={"learning_rate": [0.1] * 8, "seed": list(range(9))}), "it makes 72 runs"),
        (sweep_body(grid={"learning_rate": []}), "grid.learning_rate: give at least one value"),
        (sweep_body(grid={"learning_rate": [0.1, 20]}), '{"learning_rate": 20}: learning_rate'),
        (sweep_body(grid={"hidden_layers": [[8]]}), "hidden_layers: Extra inputs"),
        (sweep_body(grid={"epochs": [10, "many"]}), '{"epochs": "many"}: epochs'),
    ],
)
def test_a_grid_with_any_bad_run_is_refused_whole(
    client: TestClient, body: dict[str, Any], message: str
) -> None:
    response = client.post("/sweeps", json=body)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert client.get("/runs").json()["count"] == 0  # nothing was stored
    assert client.get("/sweeps").json()["count"] == 0


@pytest.mark.parametrize(
    "body",
    [
        sweep_body(grid={"dataset": ["linear"]}),
        sweep_body(grid={"colour": ["red"]}),
        sweep_body(base={"dataset": "linear"}),
        sweep_body(grid={}),
    ],
)
def test_what_a_sweep_may_set_is_a_run_parameter(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/sweeps", json=body)
    assert response.status_code == 422
    assert client.get("/runs").json()["count"] == 0


def test_the_limit_is_a_setting(settings: Settings) -> None:
    settings.max_sweep_runs = 4
    with TestClient(create_app(settings)) as client:
        response = client.post("/sweeps", json=sweep_body())
    assert response.status_code == 422
    assert "it makes 6 runs (2 x 3); a sweep may make at most 4" in response.json()["detail"]


def test_unknown_sweep_and_dataset(client: TestClient) -> None:
    for method, path in (
        ("GET", "/sweeps/9"),
        ("POST", "/sweeps/9/cancel"),
        ("DELETE", "/sweeps/9"),
    ):
        response = client.request(method, path)
        assert response.status_code == 404
        assert response.json()["detail"] == "no sweep with id 9"
    response = client.post("/sweeps", json=sweep_body(dataset="spirals"))
    assert response.status_code == 404
    assert response.json()["detail"].startswith("dataset: ")


def test_cancel_and_delete_act_on_every_run(client: TestClient, settings: Settings) -> None:
    sweep = client.post("/sweeps", json=sweep_body()).json()
    other = client.post("/runs", json={"epochs": 5}).json()
    cancelled = client.post(f"/sweeps/{sweep['id']}/cancel").json()
    assert cancelled["counts"]["cancelled"] == 6
    assert client.get(f"/runs/{other['id']}").json()["status"] == "queued"  # not the sweep's
    assert client.post(f"/sweeps/{sweep['id']}/cancel").status_code == 200  # nothing left
    assert client.delete(f"/sweeps/{sweep['id']}").status_code == 204
    assert client.get(f"/sweeps/{sweep['id']}").status_code == 404
    for run in sweep["runs"]:
        assert client.get(f"/runs/{run['id']}").status_code == 404
    assert client.get(f"/runs/{other['id']}").status_code == 200


def client_with_workers(settings: Settings, workers: int) -> Iterator[TestClient]:
    settings.runner_enabled = True
    settings.workers = workers
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def runner_client(settings: Settings) -> Iterator[TestClient]:
    yield from client_with_workers(settings, 2)


@pytest.mark.live
def test_ended_runs_get_verdicts_and_the_csv_lists_them(runner_client: TestClient) -> None:
    client = runner_client
    body = {
        "dataset": "curve",
        "base": {"epochs": 600, "seed": 3, "checkpoint_every": 600},
        "grid": {"architecture": ["simple", "complex"], "learning_rate": [0.01]},
    }
    sweep = client.post("/sweeps", json=body).json()
    for run in sweep["runs"]:
        assert wait_ended(client, run["id"], 180)["status"] == "succeeded"
    done = client.get(f"/sweeps/{sweep['id']}").json()
    verdicts = {run["values"]["architecture"]: run for run in done["runs"]}
    assert verdicts["simple"]["verdict"] == "underfit"
    assert verdicts["simple"]["verdict_number"] > 0.35
    assert verdicts["complex"]["verdict"] == "learned"
    for run in done["runs"]:
        assert run["best_loss"] <= run["final_loss"]
        assert run["duration_s"] > 0
        assert run["epoch"] == run["epochs"] == 600
    csv = client.get(f"/sweeps/{sweep['id']}", params={"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    header, *rows = list(csv_module.reader(io.StringIO(csv.text)))
    assert header[:4] == ["run_id", "architecture", "learning_rate", "status"]
    assert [row[1] for row in rows] == ["simple", "complex"]
    assert rows[0][-2] == "underfit"
    wait_for(lambda: client.get("/sweeps").json()["data"][0]["counts"]["succeeded"] == 2, 10)


def test_the_docs_sweep_and_the_schemas_example_are_accepted(client: TestClient) -> None:
    page = (PROJECT_ROOT / "docs" / "sweeps.md").read_text()
    found = re.search(
        r"-d '(\{\n  \"dataset\": \"curve\", \"name\": \"exercise\".*?)'\n", page, re.S
    )
    assert found is not None, "docs/sweeps.md's sweep example is missing"
    response = client.post(
        "/sweeps", content=found.group(1), headers={"content-type": "application/json"}
    )
    assert response.status_code == 202, response.text
    assert len(response.json()["runs"]) == 16
    operation = client.get("/openapi.json").json()["paths"]["/sweeps"]["post"]
    example = operation["requestBody"]["content"]["application/json"]["examples"]["exercise"]
    assert client.post("/sweeps", json=example["value"]).status_code == 202


@pytest.mark.live
def test_pictures_have_a_panel_per_run_and_refuse_unknown_axes(runner_client: TestClient) -> None:
    client = runner_client
    body = {
        "dataset": "linear",
        "base": {"architecture": "simple", "epochs": 200, "checkpoint_every": 100},
        "grid": {"learning_rate": [0.01, 0.1, 1.0], "seed": [1, 2]},
        "name": "rates",
    }
    sweep = client.post("/sweeps", json=body).json()
    for run in sweep["runs"]:
        wait_ended(client, run["id"], 120)
    boundaries = client.get(f"/sweeps/{sweep['id']}/boundaries.png")
    assert boundaries.status_code == 200
    image = decode_png(boundaries.content)
    # 3 learning rates across, 2 seeds down: a wide picture of 6 panels, field tints in each.
    assert image.width > image.height
    assert has_field_tints(image)
    turned = decode_png(
        client.get(f"/sweeps/{sweep['id']}/boundaries.png?cols=seed&rows=learning_rate").content
    )
    assert turned.height > turned.width
    early = client.get(f"/sweeps/{sweep['id']}/boundaries.png", params={"epoch": 0})
    assert early.status_code == 200
    assert early.content != boundaries.content
    losses = client.get(f"/sweeps/{sweep['id']}/losses.png", params={"colour_by": "learning_rate"})
    assert losses.status_code == 200
    assert decode_png(losses.content).size == (800, 500)
    # A run parameter this sweep did not vary, and a name that is no run parameter at all.
    for path in (
        "boundaries.png?rows=epochs",
        "boundaries.png?cols=optimizer",
        "losses.png?colour_by=loss",
    ):
        response = client.get(f"/sweeps/{sweep['id']}/{path}")
        assert response.status_code == 422
        assert "its axes: learning_rate, seed" in response.json()["detail"]
    response = client.get(f"/sweeps/{sweep['id']}/boundaries.png", params={"rows": "colour"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "rows"]
    assert client.get("/sweeps/99/losses.png").status_code == 404


def test_the_csv_writes_lists_as_json_writes_them(client: TestClient) -> None:
    body = {
        "base": {"architecture": "mlp", "epochs": 10},
        "grid": {"hidden_layers": [[64, 64], [8]], "activation": ["relu", "none"]},
    }
    sweep = client.post("/sweeps", json=body).json()
    text = client.get(f"/sweeps/{sweep['id']}", params={"format": "csv"}).text
    assert '"[64, 64]"' in text  # quoted: the comma is JSON's, not a new cell
    header, *rows = list(csv_module.reader(io.StringIO(text)))
    assert [(row[1], row[2]) for row in rows] == [
        ("[64, 64]", "relu"),
        ("[64, 64]", "none"),
        ("[8]", "relu"),
        ("[8]", "none"),
    ]
    assert {len(row) for row in rows} == {len(header)}
    assert [json.loads(row[1]) for row in rows] == [[64, 64], [64, 64], [8], [8]]


def test_a_three_axis_grid_is_laid_out_about_square_by_default(client: TestClient) -> None:
    """The README's exercise: 4 activations across, 2 learning rates by 2 widths down (its
    own rows= and cols= give the same), where the grid's first two axes made 2 by 8."""
    exercise = client.get("/openapi.json").json()["paths"]["/sweeps"]["post"]["requestBody"]
    body = exercise["content"]["application/json"]["examples"]["exercise"]["value"]
    sweep = client.post("/sweeps", json=body).json()
    path = f"/sweeps/{sweep['id']}/boundaries.png"
    default = decode_png(client.get(path).content)
    assert 0.75 < default.width / default.height < 1.33, default.size
    readmes = decode_png(
        client.get(path, params={"cols": "activation", "rows": "hidden_layers"}).content
    )
    assert readmes.size == default.size


@pytest.mark.live
def test_pictures_show_what_there_is_while_runs_train(one_worker_client: TestClient) -> None:
    """One worker: the first run trains and checkpoints while the second waits its turn. Its
    boundary is drawn at once; the second's panel is empty (no data, no field) until it has a
    checkpoint of its own, and the loss picture draws the curve so far."""
    client = one_worker_client
    body = {
        "dataset": "linear",
        "base": {"epochs": 1_000_000, "learning_rate": 0.1, "checkpoint_every": 500, "seed": 1},
        "grid": {"architecture": ["simple", "complex"]},
    }
    sweep = client.post("/sweeps", json=body).json()
    first, second = (run["id"] for run in sweep["runs"])
    try:
        wait_for(lambda: len(client.get(f"/runs/{first}/checkpoints").json()) >= 3, 60)
        assert run_status(client, second)["status"] == "queued"
        response = client.get(f"/sweeps/{sweep['id']}/boundaries.png")
        assert response.status_code == 200
        picture = decode_png(response.content).convert("RGB")
        left = picture.crop((0, 0, picture.width // 2, picture.height))
        right = picture.crop((picture.width // 2, 0, picture.width, picture.height))
        assert has_field_tints(left)
        assert not has_field_tints(right)
        assert saturated_pixels(left) > 100  # the data's markers
        assert saturated_pixels(right) == 0
        losses = client.get(f"/sweeps/{sweep['id']}/losses.png")
        assert losses.status_code == 200
        assert decode_png(losses.content).size == (800, 500)
    finally:
        client.post(f"/sweeps/{sweep['id']}/cancel")
    for run in (first, second):
        wait_ended(client, run, 30)


@pytest.fixture
def one_worker_client(settings: Settings) -> Iterator[TestClient]:
    yield from client_with_workers(settings, 1)


@pytest.mark.live
def test_runs_of_one_shape_train_together_and_end_each_on_its_own(
    one_worker_client: TestClient,
) -> None:
    client = one_worker_client
    base = {"architecture": "mlp", "hidden_layers": [16], "activation": "tanh", "seed": 5}
    body = {
        "dataset": "curve",
        "base": {**base, "epochs": 6000, "checkpoint_every": 1000},
        "grid": {"learning_rate": [0.001, 0.003, 0.01, 0.03]},
    }
    sweep = client.post("/sweeps", json=body).json()
    ids = [run["id"] for run in sweep["runs"]]
    # One worker, and yet all four train at once: as one stacked model.
    wait_for(lambda: all(run_status(client, run)["status"] == "running" for run in ids), 60)
    assert client.post(f"/runs/{ids[1]}/cancel").status_code == 200
    cancelled = wait_ended(client, ids[1], 30)
    assert cancelled["status"] == "cancelled"
    assert cancelled["epoch"] < 6000
    # Cancelling one run of the group stopped that run only.
    assert {run_status(client, run)["status"] for run in ids if run != ids[1]} <= {
        "running",
        "succeeded",
    }
    for run in (ids[0], ids[2], ids[3]):
        ended = wait_ended(client, run, 180)
        assert (ended["status"], ended["epoch"]) == ("succeeded", 6000), ended
    checkpoints = client.get(f"/runs/{ids[1]}/checkpoints").json()
    assert max(c["epoch"] for c in checkpoints) == cancelled["epoch"]
    # Trained alone, the first run of the sweep learns the same: the float32 tolerance.
    alone = client.post(
        "/runs", json={**base, "dataset": "curve", "epochs": 6000, "learning_rate": 0.001}
    ).json()
    alone = wait_ended(client, alone["id"], 180)
    together = run_status(client, ids[0])
    assert together["accuracy"] == alone["accuracy"]
    solo_losses = client.get(f"/runs/{alone['id']}/history").json()["loss"][:100]
    group_losses = client.get(f"/runs/{ids[0]}/history").json()["loss"][:100]
    assert group_losses == pytest.approx(solo_losses, rel=1e-5)
    done = client.get(f"/sweeps/{sweep['id']}").json()
    assert (done["counts"]["cancelled"], done["counts"]["succeeded"]) == (1, 3)
