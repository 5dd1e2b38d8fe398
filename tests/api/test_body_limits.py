"""Each route reads no more body than it can need, and a refusal never echoes the body back."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from app.api.body_limit import PREDICT_BYTES, SMALL_JSON_BYTES
from app.schemas.results import MAX_PREDICT_POINTS


def test_small_json_routes_refuse_a_large_body_with_413(client: TestClient) -> None:
    padding = "x" * SMALL_JSON_BYTES
    for path in ("/runs", "/datasets/generate", "/runs/1/resume"):
        response = client.post(path, json={"dataset": padding})
        assert response.status_code == 413, (path, response.text)
        assert f"{SMALL_JSON_BYTES} bytes accepted here" in response.json()["detail"]


def test_predict_over_its_cap_is_413_naming_the_point_limit(client: TestClient) -> None:
    body = json.dumps({"run_id": 1, "points": [[0.5, 0.5]] * (PREDICT_BYTES // 10)})
    assert len(body) > PREDICT_BYTES
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert f"{MAX_PREDICT_POINTS} points at most" in response.json()["detail"]


def test_a_422_shows_an_excerpt_of_the_input_not_the_input(client: TestClient) -> None:
    points = [[0.123456789, 0.987654321]] * (MAX_PREDICT_POINTS + 1)
    response = client.post("/predict", json={"run_id": 1, "points": points})
    assert response.status_code == 422
    assert len(response.content) < 2000, len(response.content)
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "points"]
    assert error["input"].startswith(f"a list of {MAX_PREDICT_POINTS + 1} items, starting")


def test_a_422_lists_at_most_twenty_errors(client: TestClient) -> None:
    points = [["a", "b"]] * 500
    response = client.post("/predict", json={"run_id": 1, "points": points})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert len(detail) == 21
    assert detail[-1]["msg"] == "and 980 more errors like these"
    assert detail[0]["loc"] == ["body", "points", 0, 0]


def test_the_documented_caps_are_the_ones_applied(client: TestClient) -> None:
    # SECURITY.md and docs/configuration.md: /predict takes at most 6,404,096 bytes (100,000
    # points), every other JSON route 64 KiB.
    assert (SMALL_JSON_BYTES, PREDICT_BYTES, MAX_PREDICT_POINTS) == (65_536, 6_404_096, 100_000)
    headers = {"content-type": "application/json"}
    for size, status in ((65_536, 422), (65_537, 413)):
        body = json.dumps({"dataset": ""})
        body = body.replace('""', '"' + "x" * (size - len(body)) + '"')
        assert len(body) == size
        assert client.post("/runs", content=body, headers=headers).status_code == status


def test_100000_points_of_the_longest_spelling_fit_in_predicts_cap(client: TestClient) -> None:
    widest = -1.2345678901234567e-300  # a float's longest repr
    points = [[widest, widest]] * MAX_PREDICT_POINTS
    body = json.dumps({"run_id": 1, "points": points, "epoch": None})
    assert len(body) <= PREDICT_BYTES
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    # Read whole and validated: what is left to say is that there is no run 1.
    assert response.status_code == 404, response.text[:300]
    assert response.json()["detail"] == "no run with id 1"


def _example_413(client: TestClient, method: str, path: str) -> str:
    schema = client.get("/openapi.json").json()
    response = schema["paths"][path][method]["responses"]["413"]
    detail: str = response["content"]["application/json"]["example"]["detail"]
    return detail


def test_each_413_example_in_the_schema_is_the_message_sent(client: TestClient) -> None:
    """The examples are built from the limits themselves, so they say what a client reads."""
    too_long = {"content-type": "application/json", "content-length": str(PREDICT_BYTES + 1)}
    sent = client.post("/predict", content=b"{}", headers=too_long).json()["detail"]
    assert _example_413(client, "post", "/predict") == sent
    sent = client.post("/runs", json={"dataset": "x" * SMALL_JSON_BYTES}).json()["detail"]
    assert _example_413(client, "post", "/runs") == sent
    # Uploads: the example names the default limit (the test's settings keep it).
    upload = {"content-type": "multipart/form-data; boundary=x", "content-length": "9" * 10}
    sent = client.post("/datasets", content=b"", headers=upload).json()["detail"]
    assert _example_413(client, "post", "/datasets") == sent
