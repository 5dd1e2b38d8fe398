"""What the Swagger UI shows a newcomer: summaries for people, examples that run as they are,
error examples with the real messages, and pages that need nothing from the internet."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from app.services.runs import describe_epochs

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def test_every_operation_has_a_summary_written_for_people(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path, method, operation in operations(schema):
        # FastAPI's operation id is the function's name, the path and the method; without a
        # summary of ours it titles that name: "Get Csv".
        suffix = re.sub(r"\W", "_", path) + f"_{method}"
        function = operation["operationId"].removesuffix(suffix)
        assert function != operation["operationId"], operation["operationId"]
        summary = operation["summary"]
        assert summary != function.replace("_", " ").title(), (path, method, summary)
        assert summary[0].isupper(), summary


def test_every_error_response_shows_a_real_message(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path, method, operation in operations(schema):
        for code, response in operation["responses"].items():
            if not code.startswith(("4", "5")):
                continue
            example = response["content"]["application/json"]["example"]
            assert example["detail"], (path, method, code)
    refused = client.post("/runs/999/cancel")
    cancel = schema["paths"]["/runs/{run_id}/cancel"]["post"]["responses"]
    assert re.sub(
        r"\d+", "N", cancel["404"]["content"]["application/json"]["example"]["detail"]
    ) == (re.sub(r"\d+", "N", refused.json()["detail"]))


def test_post_runs_first_example_is_the_tutorial_and_every_example_runs(
    client: TestClient,
) -> None:
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/runs"]["post"]["requestBody"]["content"]["application/json"]
    examples = body["examples"]
    tutorial = next(iter(examples.values()))["value"]
    assert tutorial["architecture"] == "complex"
    assert tutorial["dataset"] == "curve"
    assert tutorial["epochs"] == 20001
    assert tutorial["batch_size"] is None  # full batch, shown as such
    assert tutorial["seed"] is None
    for name, example in examples.items():
        response = client.post("/runs", json=example["value"])
        assert response.status_code == 202, (name, response.text)
        client.post(f"/runs/{response.json()['id']}/cancel")
    run_id = response.json()["id"]
    resume = schema["paths"]["/runs/{run_id}/resume"]["post"]["requestBody"]["content"]
    for example in resume["application/json"]["examples"].values():
        response = client.post(f"/runs/{run_id}/resume", json=example["value"])
        assert response.status_code == 202, response.text
        client.post(f"/runs/{run_id}/cancel")
    generate = schema["paths"]["/datasets/generate"]["post"]["requestBody"]["content"]
    for name, example in generate["application/json"]["examples"].items():
        response = client.post("/datasets/generate", json=example["value"])
        assert response.status_code == 201, (name, response.text)


def test_a_run_without_epochs_trains_the_tutorials_20001(client: TestClient) -> None:
    run = client.post("/runs", json={"dataset": "curve"}).json()
    assert run["epochs"] == run["requested_epochs"] == 20001


def test_docs_page_loads_nothing_from_outside(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
    assert urls
    for url in urls:
        assert not url.startswith(("http:", "https:", "//")), url
        if url.startswith("/") and "openapi" not in url:
            assert client.get(url).status_code == 200, url
    assert client.get("/redoc").status_code == 404


def test_missing_checkpoint_lists_every_epoch_shortly() -> None:
    assert describe_epochs([]) == "none yet"
    assert describe_epochs([0, 500, 1000]) == "0, 500, 1000"
    assert describe_epochs([*range(0, 20001, 1000), 20001]) == (
        "22 epochs: 0 to 20000 every 1000, 20001"
    )
    assert describe_epochs(list(range(0, 30001, 1000))) == "31 epochs: 0 to 30000 every 1000"
    resumed = [*range(0, 5001, 1000), 5432, *range(6000, 40001, 1000)]
    assert describe_epochs(resumed) == (
        "42 epochs: 0 to 5000 every 1000, 5432, 6000 to 40000 every 1000"
    )
