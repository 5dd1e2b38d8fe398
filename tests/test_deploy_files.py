"""docker-compose.yml and the Dockerfile, checked as far as a machine without Docker can."""

from __future__ import annotations

import tomllib
from importlib import metadata

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


def pinned(lock_file: str) -> dict[str, str]:
    """name (canonical) -> version, of a lock file's own pins."""
    lines = (PROJECT_ROOT / lock_file).read_text().splitlines()
    pins = [line.split("==") for line in lines if line and not line.startswith(("#", "-r"))]
    return {canonicalize_name(name): version for name, version in pins}


def test_the_image_installs_no_test_tools() -> None:
    runtime = pinned("requirements.lock")
    for tool in ("pytest", "ruff", "mypy", "hypothesis", "schemathesis", "playwright", "httpx"):
        assert tool not in runtime, tool
        assert tool in pinned("requirements-dev.lock"), tool
    assert "requirements-dev" not in (PROJECT_ROOT / "Dockerfile").read_text()


def test_the_runtime_lock_pins_every_package_the_service_needs() -> None:
    # The closure of pyproject's dependencies, as installed here: each is in requirements.lock,
    # at the version installed, so the image gets what the tests ran against.
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    runtime = pinned("requirements.lock")
    todo = [Requirement(spec) for spec in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen or name == "setuptools":  # part of the venv, not pinned
            continue
        seen.add(name)
        installed = metadata.version(name).split("+")[0]  # torch's local "+cpu"
        assert runtime.get(name) == installed, name
        for spec in metadata.requires(name) or []:
            needed = Requirement(spec)
            extras = ["", *sorted(requirement.extras)]
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in extras):
                todo.append(needed)
    assert {"uvicorn", "torch"} <= seen


def test_the_scale_profile_shares_one_database_broker_and_store_and_migrates_first() -> None:
    services = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
    scaled = {name: s for name, s in services.items() if "scale" in s.get("profiles", [])}
    assert set(scaled) == {"postgres", "redis", "migrate", "api-1", "api-2", "worker"}
    assert services["migrate"]["command"] == ["python", "-m", "app", "migrate"]
    assert services["worker"]["command"][:4] == ["python", "-m", "app", "worker"]
    for name in ("migrate", "api-1", "api-2", "worker"):
        env = services[name]["environment"]
        assert env["PC_RUNNER"] == "celery", name
        assert env["PC_DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert env["PC_BROKER_URL"].startswith("redis://redis:"), name
        assert "models:/app/models_store" in services[name]["volumes"], name
    for name in ("api-1", "api-2", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert {services[name]["ports"][0] for name in ("api-1", "api-2")} == {
        "127.0.0.1:8001:8000",
        "127.0.0.1:8002:8000",
    }
