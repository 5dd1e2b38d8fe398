"""Every route whose body is JSON refuses a body not sent as JSON, saying how to send it, and
answers a NaN or an infinity in it with a 422 that is JSON itself."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

# A body each route would accept as JSON, so only the way it is sent is wrong.
BODIES = {
    "/runs": b'{"architecture": "simple", "epochs": 10}',
    "/runs/{run_id}/resume": b'{"epochs": 10}',
    "/sweeps": b'{"base": {"architecture": "simple"}, "grid": {"learning_rate": [0.1, 0.01]}}',
    "/predict": b'{"run_id": 1, "points": [[0.1, 0.2]]}',
    "/datasets/generate": b'{"kind": "xor", "name": "sent-as-form"}',
    "/datasets/generate/preview": b'{"kind": "xor"}',
}


def json_body_routes(client: TestClient) -> list[str]:
    """The routes whose schema says their body is JSON, read from the app itself, so a route
    added later is held to the same rule."""
    paths: dict[str, Any] = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return sorted(
        path
        for path, operations in paths.items()
        if "application/json"
        in operations.get("post", {}).get("requestBody", {}).get("content", {})
    )


def stored(client: TestClient) -> tuple[int, int, int]:
    return (
        client.get("/runs").json()["count"],
        client.get("/datasets").json()["count"],
        client.get("/sweeps").json()["count"],
    )


def test_the_table_below_covers_every_json_route(client: TestClient) -> None:
    assert json_body_routes(client) == sorted(BODIES)


@pytest.mark.parametrize("path", sorted(BODIES))
@pytest.mark.parametrize(
    ("content_type", "said"),
    [
        # What curl sends with -d and no -H.
        ("application/x-www-form-urlencoded", "Content-Type: application/x-www-form-urlencoded"),
        ("text/plain", "Content-Type: text/plain"),
        (None, "no Content-Type"),
    ],
)
def test_a_json_body_not_sent_as_json_is_415_saying_how_to_send_it(
    client: TestClient, path: str, content_type: str | None, said: str
) -> None:
    before = stored(client)
    headers = {"content-type": content_type} if content_type else {}
    url = path.replace("{run_id}", "1")
    response = client.post(url, content=BODIES[path], headers=headers)
    assert response.status_code == 415, response.text
    detail = response.json()["detail"]
    assert detail.startswith("the body must be JSON sent with `Content-Type: application/json`")
    assert "(curl: -H 'Content-Type: application/json')" in detail
    assert detail.endswith(f"this request sent {said}")
    assert stored(client) == before


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/x+json"]
)
def test_json_in_any_of_its_spellings_is_accepted(client: TestClient, content_type: str) -> None:
    response = client.post("/runs", content=BODIES["/runs"], headers={"content-type": content_type})
    assert response.status_code == 202, response.text


def test_routes_without_a_json_body_are_not_held_to_it(client: TestClient) -> None:
    run = client.post("/runs", json={"architecture": "simple", "epochs": 10}).json()
    # curl -X POST with -d '' and no body at all: a cancel takes no body.
    cancel = client.post(
        f"/runs/{run['id']}/cancel",
        content=b"",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert cancel.status_code == 200, cancel.text
    upload = client.post(
        "/datasets", files={"file": ("p.csv", b"0.1,0.2,0\n0.3,0.4,1\n")}, data={"name": "form"}
    )
    assert upload.status_code == 201, upload.text


def _no_constants(name: str) -> None:
    raise AssertionError(f"the answer holds {name}, which JSON does not have")


@pytest.mark.parametrize(
    ("path", "body", "echoed"),
    [
        ("/runs", b'{"learning_rate": NaN}', "nan"),
        ("/runs", b'{"architecture": "simple", "seed": 1e400}', "inf"),
        ("/runs/{run_id}/resume", b'{"epochs": -Infinity}', "-inf"),
        ("/datasets/generate", b'{"kind": "xor", "name": "n", "noise": Infinity}', "inf"),
        ("/datasets/generate/preview", b'{"kind": "xor", "n": NaN}', "nan"),
        ("/predict", b'{"run_id": 1, "points": [[NaN, 0.5]]}', "nan"),
    ],
)
def test_nan_and_infinity_are_refused_and_echoed_as_text_never_as_a_500(
    client: TestClient, path: str, body: bytes, echoed: str
) -> None:
    # app/api/errors.py: "JSON has no NaN or infinity: such inputs are echoed back as text".
    run_id = client.post("/runs", json={"architecture": "simple", "epochs": 10}).json()["id"]
    before = stored(client)
    response = client.post(
        path.format(run_id=run_id), content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    detail = json.loads(response.text, parse_constant=_no_constants)["detail"]
    assert echoed in [error["input"] for error in detail]
    assert stored(client) == before
