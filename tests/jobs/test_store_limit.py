"""PC_MAX_STORE_BYTES: one request cannot fill the disk with checkpoints."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.config import Settings
from app.main import create_app
from app.ml.architectures import COMPLEX, parameter_count
from app.ml.checkpoints import estimated_checkpoint_bytes
from app.models import Checkpoint, Run
from app.services.run_lifecycle import claim_next_run, make_room
from tests.polling import wait_ended

COMPLEX_CHECKPOINT = estimated_checkpoint_bytes(parameter_count(COMPLEX), 2)


def test_a_run_whose_checkpoints_alone_pass_the_limit_is_refused(client: TestClient) -> None:
    body = {
        "architecture": "mlp",
        "hidden_layers": [1024] * 8,
        "epochs": 1000,
        "checkpoint_every": 1,
    }
    response = client.post("/runs", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "PC_MAX_STORE_BYTES=10737418240" in detail
    assert "checkpoint_every of at least" in detail
    assert client.get("/runs").json()["count"] == 0


@pytest.fixture
def tight_store(settings: Settings) -> Iterator[TestClient]:
    settings.runner_enabled = True
    settings.workers = 1
    settings.max_store_bytes = 11 * COMPLEX_CHECKPOINT
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.live
def test_a_run_meeting_the_limit_thins_its_older_checkpoints(
    tight_store: TestClient, settings: Settings
) -> None:
    # Each run's 7 checkpoints fit alone; the two runs' 14 do not fit together.
    body = {"epochs": 3000, "checkpoint_every": 500, "seed": 1}
    first = tight_store.post("/runs", json=body).json()
    assert wait_ended(tight_store, first["id"], 180)["status"] == "succeeded"
    run = tight_store.post("/runs", json=body).json()
    ended = wait_ended(tight_store, run["id"], 180)
    assert ended["status"] == "succeeded", ended
    epochs = [c["epoch"] for c in tight_store.get(f"/runs/{run['id']}/checkpoints").json()]
    assert epochs[0] == 0
    assert epochs[-1] == 3000
    assert 2 < len(epochs) < 7  # thinned, keeping a spread between first and last
    assert len(tight_store.get(f"/runs/{first['id']}/checkpoints").json()) == 7
    with tight_store.app.state.session_factory() as session:  # type: ignore[attr-defined]
        total = session.scalar(select(func.sum(Checkpoint.size_bytes)))
        paths = set(session.scalars(select(Checkpoint.path)))
    assert total is not None
    assert total <= settings.max_store_bytes
    on_disk = {
        f"{path.parent.name}/{path.name}" for path in settings.models_store.glob("run-*/*.pt")
    }
    assert on_disk == paths  # every dropped checkpoint's file is gone too


def test_make_room_says_no_when_nothing_is_left_to_thin(
    client: TestClient, settings: Settings
) -> None:
    run_id = client.post("/runs", json={"epochs": 10}).json()["id"]
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        claim = claim_next_run(session, "host:1")
        assert claim is not None
        assert claim.run_id == run_id
        session.add(Checkpoint(run_id=run_id, epoch=0, path="a", sha256="0" * 64, size_bytes=900))
        session.commit()
        assert make_room(session, claim, 50, 1000) == (True, [])
        assert make_room(session, claim, 200, 1000) == (False, [])
        assert session.get(Run, run_id) is not None
