"""Other web pages cannot drive the service: Host names it is not served as are refused, writes
from other origins are refused, and no page can be framed. Clients that are not browsers (curl,
httpx, scripts) and the service's own pages are not affected."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.api.origin_guard import accepted_hosts
from app.core.config import PROJECT_ROOT, Settings
from app.main import create_app

ROWS = b"0.1,0.2,0\n0.3,0.9,1\n0.7,0.1,0\n0.6,0.8,1\n"
# (method, path, what the request sends): a write of each kind the API takes.
WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/runs", {"json": {"epochs": 5}}),
    ("POST", "/runs/1/cancel", {}),  # no body at all
    ("POST", "/datasets", {"files": {"file": ("planted.csv", ROWS, "text/csv")}}),
    ("DELETE", "/runs/1", {}),
]
# Headers a browser sends with a request that a page of another origin made.
CROSS_SITE: list[dict[str, str]] = [
    {"Sec-Fetch-Site": "cross-site", "Origin": "http://attacker.example"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:3000"},  # another local port
    {"Origin": "http://attacker.example"},  # a browser without Sec-Fetch-Site
    {"Origin": "http://testserver:8080"},  # same name, another port
    {"Origin": "null"},  # a sandboxed frame, a file:// page, a redirect from another origin
]


def _with_one_run(client: TestClient) -> int:
    response = client.post("/runs", json={"epochs": 5})
    assert response.status_code == 202, response.text
    run_id: int = response.json()["id"]
    return run_id


def _state(client: TestClient) -> tuple[list[tuple[int, str]], list[str]]:
    """The runs (id, status) and the dataset names: what a refused write must leave alone."""
    runs = [(run["id"], run["status"]) for run in client.get("/runs").json()["data"]]
    datasets = [dataset["name"] for dataset in client.get("/datasets").json()["data"]]
    return runs, datasets


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io", "localhost#@evil.example", ""]
)
@pytest.mark.parametrize(("method", "path", "sent"), [("GET", "/runs", {}), *WRITES])
def test_a_host_the_service_is_not_served_as_is_400_naming_it(
    client: TestClient, host: str, method: str, path: str, sent: dict[str, Any]
) -> None:
    run_id = _with_one_run(client)
    before = _state(client)
    response = client.request(method, path, headers={"Host": host}, **sent)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert f"Host {host!r}" in detail
    assert "localhost, 127.0.0.1, [::1], testserver (any port)" in detail
    assert "PC_ALLOWED_HOSTS" in detail
    assert _state(client) == before
    assert client.get(f"/runs/{run_id}").json()["status"] == "queued"


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8000", "LocalHost:1", "127.0.0.1:59999", "[::1]:8000", "[::1]"]
)
def test_the_loopback_names_are_accepted_on_any_port(client: TestClient, host: str) -> None:
    assert client.get("/runs", headers={"Host": host}).status_code == 200
    response = client.post("/runs", json={"epochs": 5}, headers={"Host": host})
    assert response.status_code == 202, response.text


def test_pc_allowed_hosts_adds_names_and_addresses(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PC_ALLOWED_HOSTS", " pc.LAN, 192.168.1.20 ,[FE80::1],")
    configured = Settings()
    assert configured.allowed_hosts == ["pc.lan", "192.168.1.20", "fe80::1"]
    settings.allowed_hosts = configured.allowed_hosts
    with TestClient(create_app(settings), base_url="http://pc.lan:8000") as client:
        assert client.post("/runs", json={"epochs": 5}).status_code == 202
        for host in ("192.168.1.20:8000", "[fe80::1]:8000", "localhost:8000"):
            assert client.get("/runs", headers={"Host": host}).status_code == 200, host
        refused = client.get("/runs", headers={"Host": "other.lan:8000"})
        assert refused.status_code == 400
        assert "[::1], 192.168.1.20, [fe80::1], pc.lan (any port)" in refused.json()["detail"]


def test_pc_allowed_hosts_star_accepts_any_host(settings: Settings) -> None:
    settings.allowed_hosts = ["*"]
    with TestClient(create_app(settings), base_url="http://anything.example") as client:
        assert client.post("/runs", json={"epochs": 5}).status_code == 202


@pytest.mark.parametrize("entry", ["pc.lan:8000", "http://pc.lan", "[::1]:8000", "*.lan"])
def test_pc_allowed_hosts_entries_with_a_port_or_scheme_are_refused(entry: str) -> None:
    with pytest.raises(ValidationError, match="PC_ALLOWED_HOSTS takes host names"):
        Settings(allowed_hosts=entry)


def test_pc_host_naming_one_address_is_accepted_and_a_wildcard_adds_nothing(
    settings: Settings,
) -> None:
    settings.host = "192.168.1.20"
    with TestClient(create_app(settings)) as client:
        assert client.get("/runs", headers={"Host": "192.168.1.20:8000"}).status_code == 200
    settings.host = "0.0.0.0"
    with TestClient(create_app(settings)) as client:
        assert client.get("/runs", headers={"Host": "0.0.0.0:8000"}).status_code == 400
        assert client.get("/runs", headers={"Host": "192.168.1.20:8000"}).status_code == 400


def test_the_compose_files_hosts_are_accepted_in_the_container() -> None:
    # The container listens on 0.0.0.0 (PC_HOST names no host there): its healthcheck and
    # the browser on the published port must still name hosts the service accepts.
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    api = compose["services"]["api"]
    container = accepted_hosts(Settings(host=api["environment"]["PC_HOST"]))
    assert container is not None
    healthcheck = " ".join(api["healthcheck"]["test"])
    assert re.findall(r"http://([^:/]+)", healthcheck) == ["127.0.0.1"]
    assert "127.0.0.1" in container
    for service in compose["services"].values():
        for port in service.get("ports", []):
            assert port.split(":")[0] in container, port


@pytest.mark.parametrize("headers", CROSS_SITE)
@pytest.mark.parametrize(("method", "path", "sent"), WRITES)
def test_a_write_from_another_origin_is_403_and_changes_nothing(
    client: TestClient, headers: dict[str, str], method: str, path: str, sent: dict[str, Any]
) -> None:
    run_id = _with_one_run(client)
    before = _state(client)
    response = client.request(method, path, headers=headers, **sent)
    assert response.status_code == 403, response.text
    detail = response.json()["detail"]
    assert f"cross-site {method} refused" in detail
    sender = headers.get("Sec-Fetch-Site") or headers["Origin"]
    assert sender in detail
    assert "no Origin header (curl, httpx, scripts)" in detail
    assert _state(client) == before
    assert client.get(f"/runs/{run_id}").json()["status"] == "queued"


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, httpx, a script
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"},  # the dashboard
        {"Origin": "http://testserver"},  # a browser without Sec-Fetch-Site
        {"Origin": "http://testserver:80"},
    ],
)
def test_writes_without_origin_or_from_the_service_itself_pass(
    client: TestClient, headers: dict[str, str]
) -> None:
    upload = client.post(
        "/datasets",
        files={"file": ("mine.csv", ROWS, "text/csv")},
        data={"name": "mine"},
        headers=headers,
    )
    assert upload.status_code == 201, upload.text
    run = client.post("/runs", json={"dataset": "mine", "epochs": 5}, headers=headers)
    assert run.status_code == 202, run.text
    run_id = run.json()["id"]
    cancel = client.post(f"/runs/{run_id}/cancel", headers=headers)
    assert cancel.status_code == 200, cancel.text
    assert cancel.json()["status"] == "cancelled"
    assert client.delete(f"/runs/{run_id}", headers=headers).status_code == 204
    assert client.delete("/datasets/mine", headers=headers).status_code == 204


def test_reads_and_links_from_other_sites_still_open(client: TestClient) -> None:
    # A link to the dashboard from anywhere is a cross-site GET; the browser keeps another
    # origin from reading the answer, so reads are not refused.
    followed = {"Sec-Fetch-Site": "cross-site", "Origin": "http://elsewhere.example"}
    assert client.get("/", headers=followed).status_code == 200
    assert client.get("/runs", headers=followed).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/ui/new",
        "/ui/datasets",
        "/ui/compare",
        "/ui/sweeps",
        "/ui/runs/1",
        "/docs",
        "/docs/oauth2-redirect",
        "/runs",
        "/health",
        "/openapi.json",
        "/static/dashboard/api.js",
        "/no-such-page",
    ],
)
def test_no_response_can_be_framed(client: TestClient, path: str) -> None:
    _with_one_run(client)
    response = client.get(path)
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    refused = client.get(path, headers={"Host": "evil.example"})
    assert refused.headers["x-frame-options"] == "DENY"


def _directives(policy: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}


def test_the_dashboard_runs_only_the_services_own_scripts(client: TestClient) -> None:
    policy = _directives(client.get("/").headers["content-security-policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]
    # The templates keep to that policy: no inline script, no inline event handler.
    for template in (PROJECT_ROOT / "app" / "templates").glob("*.html"):
        source = template.read_text()
        for script in re.findall(r"<script[^>]*>", source):
            assert "src=" in script, f"{template.name}: inline {script}"
        assert not re.search(r"\son[a-z]+\s*=", source), f"{template.name}: event handler"


@pytest.mark.parametrize("path", ["/docs", "/docs/oauth2-redirect"])
def test_swagger_ui_may_run_its_own_inline_script_and_no_other(
    client: TestClient, path: str
) -> None:
    response = client.get(path)
    scripts = re.findall(r"<script>(.*?)</script>", response.text, flags=re.DOTALL)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    policy = _directives(response.headers["content-security-policy"])
    assert policy["script-src"] == ["'self'", f"'sha256-{digest}'"]
    assert policy["frame-ancestors"] == ["'none'"]
