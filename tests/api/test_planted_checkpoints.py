"""Pictures, fields and predictions from checkpoints planted in the store, without training: the
limits and defaults the docs and route descriptions give, in a second or two."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import insert

from app.core.config import Settings
from app.ml.architectures import build_network, network_spec
from app.ml.checkpoints import checkpoint_relpath, write_checkpoint
from app.models import Checkpoint
from app.services import results as results_service


def plant_run(client: TestClient, settings: Settings, epochs: list[int]) -> int:
    """A queued `simple` run with a real checkpoint file (and its row) at each of `epochs`."""
    run_id: int = client.post(
        "/runs", json={"architecture": "simple", "epochs": max(epochs) or 1}
    ).json()["id"]
    spec = network_spec("simple")
    rows = []
    for epoch in epochs:
        state = {
            "epoch": epoch,
            "config": {"network": spec.as_dict()},
            "model": build_network(spec).state_dict(),
        }
        relpath = checkpoint_relpath(run_id, epoch)
        sha256, size = write_checkpoint(settings.models_store, relpath, state)
        row = {"run_id": run_id, "epoch": epoch, "path": relpath, "sha256": sha256}
        rows.append({**row, "size_bytes": size})
    with client.app.state.session_factory.begin() as session:  # type: ignore[attr-defined]
        session.execute(insert(Checkpoint), rows)
    return run_id


def test_the_gif_has_a_frame_per_checkpoint_up_to_40(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The boundary.gif route: "one frame per checkpoint (at most 40, sampled)". Forty frames
    # take a quarter of a minute to draw here, so the cap is checked as a number, and made 3 to
    # see it cap.
    assert results_service.MAX_GIF_FRAMES == 40
    run_id = plant_run(client, settings, [0, 10, 20, 30, 40])
    url = f"/runs/{run_id}/boundary.gif"
    for cap, frames in ((40, 5), (3, 3)):
        monkeypatch.setattr(results_service, "MAX_GIF_FRAMES", cap)
        response = client.get(url, params={"width": 200, "height": 200})
        assert response.status_code == 200, response.text
        with Image.open(io.BytesIO(response.content)) as gif:
            assert getattr(gif, "n_frames", 1) == frames


def test_the_field_is_100_by_100_and_a_queued_run_answers_from_its_latest_checkpoint(
    client: TestClient, settings: Settings
) -> None:
    # docs/dashboard.md: `GET /runs/{id}/field?epoch=N`, P(label 1) on a 100x100 grid; and
    # docs/walkthrough.md: while a run trains, pictures and predictions use its latest
    # checkpoint (this run is still queued: its checkpoints are all it has).
    run_id = plant_run(client, settings, [0, 10, 20])
    field = client.get(f"/runs/{run_id}/field").json()
    assert (field["epoch"], field["resolution"], len(field["probabilities"])) == (20, 100, 10_000)
    assert client.get(f"/runs/{run_id}/field", params={"epoch": 10}).json()["epoch"] == 10
    answer = client.post("/predict", json={"run_id": run_id, "points": [[0.5, 0.5]]}).json()
    assert answer["epoch"] == 20
