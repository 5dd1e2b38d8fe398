"""History, pictures and predictions of real trained runs (worker processes, SQLite)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image
from sqlalchemy import insert, update

from app.core.config import PROJECT_ROOT, Settings
from app.main import create_app
from app.ml.datagen import curve_boundary
from app.models import Run, RunHistory
from app.services import results as results_service
from app.services import runs as runs_service
from tests.images import decode_png, has_field_tints, has_label_colours, rgb_colours
from tests.polling import wait_ended

pytestmark = pytest.mark.live

CURVE_EPOCHS = 3000


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    """One client with two finished runs: `complex` on curve, and `simple` with a hold-out."""
    folder = tmp_path_factory.mktemp("trained")
    settings = Settings(
        database_url=f"sqlite:///{folder / 'pc.sqlite3'}",
        models_store=folder / "models_store",
        builtin_data_dir=PROJECT_ROOT / "data",
        allowed_hosts=["testserver"],  # the Host that Starlette's TestClient sends
        workers=2,
        progress_interval_s=0.1,
    )
    with TestClient(create_app(settings)) as client:
        complex_run = client.post(
            "/runs",
            json={
                "epochs": CURVE_EPOCHS,
                "learning_rate": 0.01,
                "seed": 3,
                "checkpoint_every": 500,
            },
        ).json()
        simple_run = client.post(
            "/runs",
            json={"architecture": "simple", "epochs": 1200, "validation_split": 0.25, "seed": 1},
        ).json()
        runs = {}
        for name, run in (("complex", complex_run), ("simple", simple_run)):
            runs[name] = wait_ended(client, run["id"], 180)
            assert runs[name]["status"] == "succeeded", runs[name]
        yield client, runs


def curve_rule_points(
    n: int, margin: float, seed: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Points labelled by the curve rule without noise, away from the noisy band."""
    rng = np.random.default_rng(seed)
    x, y = rng.random(n * 4), rng.random(n * 4)
    boundary = curve_boundary(x)
    far = np.abs(y - boundary) > margin
    xy = np.column_stack([x, y])[far][:n]
    return xy, (y > boundary)[far][:n].astype(int)


def test_history_has_one_entry_per_epoch(trained: tuple[TestClient, dict[str, Any]]) -> None:
    client, runs = trained
    run = runs["complex"]
    history = client.get(f"/runs/{run['id']}/history").json()
    assert history["epoch"] == list(range(CURVE_EPOCHS))
    assert len(history["loss"]) == CURVE_EPOCHS
    assert "val_loss" not in history
    assert history["loss"][-1] == run["final_loss"]
    assert history["loss"][-1] < history["loss"][0]
    sampled = client.get(f"/runs/{run['id']}/history", params={"every": 1000}).json()
    assert sampled["epoch"] == [0, 1000, 2000, CURVE_EPOCHS - 1]
    assert sampled["loss"] == [history["loss"][e] for e in sampled["epoch"]]
    csv = client.get(f"/runs/{run['id']}/history", params={"every": 1000, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0] == "epoch,loss"
    assert [float(line.split(",")[1]) for line in lines[1:]] == sampled["loss"]


def test_history_with_a_validation_split_has_val_loss(
    trained: tuple[TestClient, dict[str, Any]],
) -> None:
    client, runs = trained
    history = client.get(f"/runs/{runs['simple']['id']}/history").json()
    assert len(history["val_loss"]) == len(history["loss"]) == 1200
    assert all(isinstance(v, float) for v in history["val_loss"])
    csv = client.get(f"/runs/{runs['simple']['id']}/history?format=csv&every=600").text
    assert csv.splitlines()[0] == "epoch,loss,val_loss"


def test_history_max_points_downsamples_on_the_server(
    trained: tuple[TestClient, dict[str, Any]],
) -> None:
    client, runs = trained
    path = f"/runs/{runs['complex']['id']}/history"
    full = client.get(path).json()
    for max_points in (2, 100, 1000, 2999):
        sampled = client.get(path, params={"max_points": max_points}).json()
        assert len(sampled["epoch"]) <= max_points + 2  # and epoch 0 and the last
        assert sampled["epoch"] == sorted(set(sampled["epoch"]))
        assert (sampled["epoch"][0], sampled["epoch"][-1]) == (0, CURVE_EPOCHS - 1)
        assert sampled["loss"] == [full["loss"][epoch] for epoch in sampled["epoch"]]
        assert (min(sampled["loss"]), max(sampled["loss"])) == (
            min(full["loss"]),
            max(full["loss"]),
        )
    assert client.get(path, params={"max_points": 6000}).json() == full
    # `every` is the narrowest bucket: max_points never brings back more than it asks for.
    floor = client.get(path, params={"max_points": 2000, "every": 1000}).json()
    assert len(floor["epoch"]) <= 3 * 2 + 2


def history_with_spikes(client: TestClient, validation: bool) -> tuple[int, list[float]]:
    """A queued run (no runner here) given a history of 10,000 epochs near 0.1, one spike of
    10 at epoch 4321 (and of 7 in its validation loss at 6000) and its lowest loss at 7777."""
    body = {"epochs": 10_000, "validation_split": 0.25 if validation else 0.0}
    run_id: int = client.post("/runs", json=body).json()["id"]
    rng = np.random.default_rng(0)
    losses = (0.1 + 0.01 * rng.random(10_000)).tolist()
    losses[4321], losses[7777] = 10.0, 0.05
    val_losses = (0.12 + 0.01 * rng.random(10_000)).tolist()
    val_losses[6000] = 7.0
    rows = [
        {"run_id": run_id, "epoch": epoch, "loss": loss, "val_loss": val_losses[epoch]}
        for epoch, loss in enumerate(losses)
    ]
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        session.execute(insert(RunHistory), rows)
        session.execute(update(Run).where(Run.id == run_id).values(epoch=10_000))
        session.commit()
    return run_id, losses


@pytest.mark.parametrize("validation", [False, True], ids=["loss", "with-validation"])
def test_history_max_points_keeps_each_buckets_lowest_and_highest_loss(
    client: TestClient, validation: bool
) -> None:
    run_id, losses = history_with_spikes(client, validation)
    sampled = client.get(f"/runs/{run_id}/history", params={"max_points": 100}).json()
    assert len(sampled["epoch"]) <= 100 + 2
    assert dict(zip(sampled["epoch"], sampled["loss"], strict=True)) == {
        epoch: losses[epoch] for epoch in sampled["epoch"]
    }
    assert (sampled["epoch"][0], sampled["epoch"][-1]) == (0, 9999)
    assert max(sampled["loss"]) == 10.0  # the spike, not a tenth of it
    assert min(sampled["loss"]) == 0.05
    assert {4321, 7777} <= set(sampled["epoch"])
    if validation:
        assert max(sampled["val_loss"]) == 7.0
    else:
        assert "val_loss" not in sampled
    # `every` alone still samples: epoch 0, every N-th and the last, whatever lies between.
    every = client.get(f"/runs/{run_id}/history", params={"every": 1000}).json()
    assert every["epoch"] == [*range(0, 10_000, 1000), 9999]
    assert max(every["loss"]) < 1


def test_history_refusals(trained: tuple[TestClient, dict[str, Any]]) -> None:
    client, runs = trained
    assert client.get("/runs/999/history").status_code == 404
    assert client.get(f"/runs/{runs['complex']['id']}/history?every=0").status_code == 422
    assert client.get(f"/runs/{runs['complex']['id']}/history?max_points=1").status_code == 422
    assert client.get(f"/runs/{runs['complex']['id']}/history?format=xml").status_code == 422


def colours(image: Image.Image) -> int:
    return len(rgb_colours(image))


def test_loss_png_decodes(trained: tuple[TestClient, dict[str, Any]]) -> None:
    client, runs = trained
    for params in ({}, {"log": "true"}, {"width": 400, "height": 300}):
        response = client.get(f"/runs/{runs['simple']['id']}/loss.png", params=params)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        image = decode_png(response.content)
        assert image.size == ((400, 300) if "width" in params else (800, 500))
        assert colours(image) > 10


def test_boundary_png_latest_and_by_epoch_and_sizes(
    trained: tuple[TestClient, dict[str, Any]],
) -> None:
    client, runs = trained
    run_id = runs["complex"]["id"]
    latest = client.get(f"/runs/{run_id}/boundary.png")
    assert latest.status_code == 200
    image = decode_png(latest.content)
    assert image.size == (800, 760)
    assert colours(image) > 50  # a colour field, not a blank canvas
    assert has_label_colours(image)
    assert has_field_tints(image)  # light red and light blue, the points' own colours
    early = client.get(f"/runs/{run_id}/boundary.png", params={"epoch": 500})
    assert early.status_code == 200
    assert early.content != latest.content
    sized = client.get(
        f"/runs/{run_id}/boundary.png", params={"width": 500, "height": 400, "dpi": 80}
    )
    assert decode_png(sized.content).size == (500, 400)
    tutorial = client.get(f"/runs/{run_id}/boundary.png", params={"style": "tutorial"})
    tutorial_image = decode_png(tutorial.content)
    assert tutorial_image.size == (600, 640)  # the legend below the plot
    assert has_label_colours(tutorial_image)


def test_boundary_refusals(trained: tuple[TestClient, dict[str, Any]]) -> None:
    client, runs = trained
    run_id = runs["complex"]["id"]
    missing = client.get(f"/runs/{run_id}/boundary.png", params={"epoch": 7})
    assert missing.status_code == 404
    assert "no checkpoint at epoch 7" in missing.json()["detail"]
    assert missing.json()["detail"].endswith(
        "its checkpoints: 0, 500, 1000, 1500, 2000, 2500, 3000"
    )
    for params in ({"width": 10}, {"height": 99999}, {"dpi": 5}, {"style": "fancy"}, {"epoch": -1}):
        assert client.get(f"/runs/{run_id}/boundary.png", params=params).status_code == 422
    assert client.get("/runs/999/boundary.png").status_code == 404


def test_pictures_are_cached(trained: tuple[TestClient, dict[str, Any]]) -> None:
    client, runs = trained
    caches = client.app.state.result_caches  # type: ignore[attr-defined]
    url = f"/runs/{runs['complex']['id']}/boundary.png?epoch=1000"
    first = client.get(url).content
    hits = caches.pictures.hits
    assert client.get(url).content == first
    assert caches.pictures.hits == hits + 1


def test_boundary_gif_has_a_frame_per_checkpoint(
    trained: tuple[TestClient, dict[str, Any]],
) -> None:
    client, runs = trained
    response = client.get(
        f"/runs/{runs['complex']['id']}/boundary.gif", params={"width": 300, "height": 260}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "GIF"
    assert image.size == (300, 260)
    checkpoints = client.get(f"/runs/{runs['complex']['id']}/checkpoints").json()
    # From the untrained network (epoch 0) to the end.
    assert [c["epoch"] for c in checkpoints] == list(range(0, CURVE_EPOCHS + 1, 500))
    assert getattr(image, "n_frames", 1) == len(checkpoints)


def test_predict_learns_the_curve_away_from_the_noisy_band(
    trained: tuple[TestClient, dict[str, Any]],
) -> None:
    client, runs = trained
    xy, labels = curve_rule_points(2000, margin=0.15, seed=99)
    response = client.post(
        "/predict", json={"run_id": runs["complex"]["id"], "points": xy.tolist()}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["run_id"] == runs["complex"]["id"]
    assert body["epoch"] == CURVE_EPOCHS
    assert len(body["probabilities"]) == len(body["labels"]) == 2000
    assert all(0.0 <= p <= 1.0 for p in body["probabilities"])
    assert body["labels"] == [int(p > 0.5) for p in body["probabilities"]]
    accuracy = float(np.mean(np.array(body["labels"]) == labels))
    assert accuracy > 0.9, accuracy


def test_predict_from_an_earlier_epoch_and_model_cache(
    trained: tuple[TestClient, dict[str, Any]],
) -> None:
    client, runs = trained
    caches = client.app.state.result_caches  # type: ignore[attr-defined]
    body = {"run_id": runs["complex"]["id"], "points": [[0.5, 0.9]], "epoch": 500}
    first = client.post("/predict", json=body).json()
    assert first["epoch"] == 500
    hits = caches.models.hits
    assert client.post("/predict", json=body).json() == first
    assert caches.models.hits == hits + 1


def test_predict_takes_100000_points(trained: tuple[TestClient, dict[str, Any]]) -> None:
    client, runs = trained
    points = np.random.default_rng(0).random((100_000, 2)).round(6).tolist()
    response = client.post("/predict", json={"run_id": runs["simple"]["id"], "points": points})
    assert response.status_code == 200
    assert len(response.json()["labels"]) == 100_000


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"run_id": RUN, "points": []}', "points"),
        ('{"run_id": RUN}', "points"),
        ('{"run_id": RUN, "points": [[0.1, 0.2, 0.3]]}', "points"),
        ('{"run_id": RUN, "points": [[0.1]]}', "points"),
        ('{"run_id": RUN, "points": [["a", 0.2]]}', "points"),
        ('{"run_id": RUN, "points": [[NaN, 0.2]]}', "finite"),
        ('{"run_id": RUN, "points": [[0.1, Infinity]]}', "finite"),
        ('{"run_id": RUN, "points": [[0.1, 1e999]]}', "finite"),
        ('{"run_id": 0, "points": [[0.1, 0.2]]}', "run_id"),
        ('{"run_id": RUN, "points": [[0.1, 0.2]], "extra": 1}', "extra"),
        ('{"run_id": RUN, "points": [[0.1, 0.2]], "epoch": -1}', "epoch"),
        ("not json", "json"),
    ],
)
def test_predict_rejects_bad_input_naming_the_field(
    trained: tuple[TestClient, dict[str, Any]], body: str, expected: str
) -> None:
    client, runs = trained
    response = client.post(
        "/predict",
        content=body.replace("RUN", str(runs["simple"]["id"])),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert expected in json.dumps(response.json()["detail"]).lower()


def test_predict_too_many_points_is_422(trained: tuple[TestClient, dict[str, Any]]) -> None:
    client, runs = trained
    response = client.post(
        "/predict", json={"run_id": runs["simple"]["id"], "points": [[0.5, 0.5]] * 100_001}
    )
    assert response.status_code == 422
    assert "100000" in response.text


def test_predict_unknown_run_and_epoch(trained: tuple[TestClient, dict[str, Any]]) -> None:
    client, runs = trained
    response = client.post("/predict", json={"run_id": 999, "points": [[0.1, 0.2]]})
    assert response.status_code == 404
    assert "no run with id 999" in response.json()["detail"]
    response = client.post(
        "/predict", json={"run_id": runs["simple"]["id"], "points": [[0.1, 0.2]], "epoch": 3}
    )
    assert response.status_code == 404


def test_field_is_the_models_probabilities_on_the_pictures_region(
    trained: tuple[TestClient, dict[str, Any]],
) -> None:
    client, runs = trained
    run_id = runs["complex"]["id"]
    for epoch in (0, 1500, None):
        at = {} if epoch is None else {"epoch": epoch}
        response = client.get(f"/runs/{run_id}/field", params={"resolution": 40, **at})
        assert response.status_code == 200, response.text
        field = response.json()
        assert field["epoch"] == (CURVE_EPOCHS if epoch is None else epoch)
        assert field["resolution"] == 40
        assert len(field["probabilities"]) == 40 * 40
        # curve's points lie in [0, 1]; the region adds a tenth on each side.
        assert field["x_min"] < 0 < 1 < field["x_max"]
        assert field["y_min"] < 0 < 1 < field["y_max"]
        xs = np.linspace(field["x_min"], field["x_max"], 40)
        ys = np.linspace(field["y_min"], field["y_max"], 40)
        grid = [[float(x), float(y)] for y in ys for x in xs]  # row by row from y_min up
        predicted = client.post(
            "/predict", json={"run_id": run_id, "points": grid, "epoch": field["epoch"]}
        ).json()["probabilities"]
        assert np.allclose(field["probabilities"], predicted, atol=1e-5)
    untrained = client.get(f"/runs/{run_id}/field", params={"epoch": 0}).json()
    trained_field = client.get(f"/runs/{run_id}/field").json()
    assert len(trained_field["probabilities"]) == 100 * 100  # the default resolution
    assert np.ptp(trained_field["probabilities"]) > 0.9 > np.ptp(untrained["probabilities"])


def test_field_refusals(trained: tuple[TestClient, dict[str, Any]]) -> None:
    client, runs = trained
    run_id = runs["complex"]["id"]
    response = client.get(f"/runs/{run_id}/field", params={"epoch": 1234})
    assert response.status_code == 404
    assert response.json()["detail"].endswith(
        "its checkpoints: 0, 500, 1000, 1500, 2000, 2500, 3000"
    )
    assert client.get("/runs/999/field").status_code == 404
    for resolution in (9, 301, "many"):
        response = client.get(f"/runs/{run_id}/field", params={"resolution": resolution})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "resolution"]


def test_a_run_with_no_checkpoint_yet_is_409(client: TestClient) -> None:
    run_id = client.post("/runs", json={"epochs": 10}).json()["id"]  # the runner is off here
    for method, path, body in [
        ("POST", "/predict", {"run_id": run_id, "points": [[0.1, 0.2]]}),
        ("GET", f"/runs/{run_id}/boundary.png", None),
        ("GET", f"/runs/{run_id}/boundary.gif", None),
        ("GET", f"/runs/{run_id}/loss.png", None),
        ("GET", f"/runs/{run_id}/field", None),
    ]:
        response = client.request(method, path, json=body)
        assert response.status_code == 409, path
        assert "try again once it has trained" in response.json()["detail"]
    assert client.get(f"/runs/{run_id}/history").json() == {"epoch": [], "loss": []}


def test_events_of_an_ended_run_and_unknown_run(trained: tuple[TestClient, dict[str, Any]]) -> None:
    client, runs = trained
    response = client.get(f"/runs/{runs['simple']['id']}/events")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith("event: status\ndata: ")
    data = json.loads(response.text.split("data: ", 1)[1].split("\n", 1)[0])
    assert data["status"] == "succeeded"
    assert data["final_loss"] == runs["simple"]["final_loss"]
    assert client.get("/runs/999/events").status_code == 404


def test_boundary_title_numbers_are_the_runs_own(
    trained: tuple[TestClient, dict[str, Any]],
) -> None:
    client, runs = trained
    simple = client.get(f"/runs/{runs['simple']['id']}").json()
    session_factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with session_factory() as session:
        run = session.get(Run, simple["id"])
        assert run is not None
        final = runs_service.last_losses(session, run.id, at_most=simple["epochs"])
        numbers = results_service._run_numbers(run, final, 200)
        at_600 = runs_service.last_losses(session, run.id, at_most=600)
    # The final checkpoint's title shows the run's final loss: the log's last line.
    assert numbers is not None
    assert final == (simple["epochs"] - 1, simple["final_loss"], numbers.val_loss)
    assert numbers.loss == simple["final_loss"]
    assert int(numbers.validation.sum()) == 50  # validation_split 0.25 of 200 points
    history = client.get(f"/runs/{simple['id']}/history").json()
    assert at_600 == (600, history["loss"][600], history["val_loss"][600])
    log = client.get(f"/runs/{simple['id']}/log").text
    assert f"Epoch {simple['epochs'] - 1}, Loss: {simple['final_loss']!r}" in log
    # A count over the 200 points, without float32 noise.
    assert simple["accuracy"] == round(simple["accuracy"] * 200) / 200


def test_boundary_gif_frames_are_bounded_in_size(
    trained: tuple[TestClient, dict[str, Any]],
) -> None:
    client, runs = trained
    url = f"/runs/{runs['complex']['id']}/boundary.gif"
    for params in ({"width": 3000}, {"height": 1001}):
        response = client.get(url, params=params)
        assert response.status_code == 422
        assert "less than or equal to 1000" in response.text
