"""docker-compose.yml and the Dockerfile, checked as far as a machine without Docker can."""

from __future__ import annotations

import yaml

from app.core.config import PROJECT_ROOT


def test_compose_runs_the_service_with_data_and_checkpoints_as_volumes() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    api = compose["services"]["api"]
    assert api["build"] == "."
    assert api["command"] == ["python", "-m", "app"]
    assert "127.0.0.1:8000:8000" in api["ports"]
    assert "./data:/app/data" in api["volumes"]
    assert "./models_store:/app/models_store" in api["volumes"]
    assert api["environment"]["PC_DATABASE_URL"].startswith("sqlite:////app/data/")


def test_dockerfile_installs_the_lock_and_copies_what_the_app_needs() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "-r requirements.lock" in dockerfile
    for path in ("app", "alembic", "alembic.ini", "data/*.csv"):
        assert f"COPY {path} " in dockerfile
    assert 'CMD ["python", "-m", "app"]' in dockerfile
    lock = (PROJECT_ROOT / "requirements.lock").read_text().splitlines()
    assert "torch==2.13.0" in lock
