"""The datasets API against the app in-process: contract, validation, storage."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.config import PROJECT_ROOT, Settings
from app.main import create_app
from tests.images import decode_png, has_label_colours, rgb_colours


@pytest.fixture
def database_url(both_databases: str) -> str:
    return both_databases  # these run on SQLite and on PostgreSQL


GOOD_ROWS = "1.0e-01,2.0e-01,0.0e+00\n3.0e-01,4.0e-01,1.0e+00\n5.0e-01,6.0e-01,1.0e+00\n"


def upload(
    client: TestClient, content: bytes | str, filename: str = "points.csv", name: str | None = None
) -> tuple[int, dict[str, Any]]:
    data = {"name": name} if name is not None else {}
    body = content.encode() if isinstance(content, str) else content
    response = client.post("/datasets", files={"file": (filename, body, "text/csv")}, data=data)
    return response.status_code, response.json()


def dataset_count(client: TestClient) -> int:
    count: int = client.get("/datasets").json()["count"]
    return count


def test_builtin_datasets_are_registered_at_startup(client: TestClient) -> None:
    body = client.get("/datasets").json()
    names = {d["name"]: d for d in body["data"]}
    assert set(names) == {"linear", "curve", "random"}
    for dataset in names.values():
        assert dataset["source"] == "builtin"
        assert dataset["n_points"] == 200
        assert sum(dataset["class_counts"].values()) == 200
    expected = hashlib.sha256((PROJECT_ROOT / "data" / "curve.csv").read_bytes()).hexdigest()
    assert names["curve"]["sha256"] == expected


def test_upload_tutorial_format_round_trips_exactly(client: TestClient) -> None:
    original = (PROJECT_ROOT / "data" / "curve.csv").read_bytes()
    status, body = upload(client, original, filename="my curve.csv")
    assert status == 201
    assert body["name"] == "my-curve"
    assert body["source"] == "upload"
    assert body["n_points"] == 200
    assert body["sha256"] == hashlib.sha256(original).hexdigest()
    assert set(body) >= {"id", "class_counts", "bounds", "created_at"}
    assert client.get(f"/datasets/{body['id']}/csv").content == original
    assert client.get("/datasets/my-curve").json()["id"] == body["id"]


def test_upload_accepts_header_crlf_bom_and_blank_lines(client: TestClient) -> None:
    content = "\ufeffx,y,label\r\n0.1,0.2,0\r\n\r\n0.3,0.4,1\r\n"
    status, body = upload(client, content, name="with-header")
    assert status == 201, body
    assert body["n_points"] == 2
    assert body["class_counts"] == {"0": 1, "1": 1}
    points = client.get("/datasets/with-header/points").json()["points"]
    assert points == [[0.1, 0.2, 0.0], [0.3, 0.4, 1.0]]


def test_bounds_and_class_counts_describe_the_points(client: TestClient) -> None:
    status, body = upload(client, GOOD_ROWS, name="three")
    assert status == 201
    assert body["bounds"] == {"x_min": 0.1, "x_max": 0.5, "y_min": 0.2, "y_max": 0.6}
    assert body["class_counts"] == {"0": 1, "1": 2}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("0.1,0.2,0\n0.3,0.4\n", "row 2: expected 3 columns (x,y,label), found 2"),
        ("0.1,0.2,0\n0.3,0.4,1,9\n", "row 2: expected 3 columns (x,y,label), found 4"),
        ("0.1,0.2,0\n0.3,nan,1\n", "row 2, column y: 'nan' is not a finite number"),
        ("0.1,0.2,0\ninf,0.4,1\n", "row 2, column x: 'inf' is not a finite number"),
        ("0.1,0.2,0\n0.3,-Infinity,1\n", "row 2, column y: '-Infinity' is not a finite number"),
        ("0.1,0.2,0\n0.3,abc,1\n", "row 2, column y: 'abc' is not a number"),
        ("0.1,0.2,0\n0.3,0.4,2\n", "row 2, column label: '2' is not 0 or 1"),
        ("0.1,0.2,0\n0.3,0.4,0.5\n", "row 2, column label: '0.5' is not 0 or 1"),
        (
            "x,y,label\n0.1,0.2,1\n0.3,0.4,nan\n",
            "row 3, column label: 'nan' is not a finite number",
        ),
        ("", "the file has no data rows"),
        ("\n\n  \n", "the file has no data rows"),
        ("x,y,label\n", "the file has no data rows"),
        ("0.1,0.2,1\n0.3,0.4,1\n", "all 2 points have label 1; a dataset needs both labels"),
        (
            "0,1;0,2;0\n0,3;0,4;1\n",
            "row 1, column y: '1;0' is not a number; the row looks like values separated by "
            "semicolons (;) with decimal commas (0,5): the tutorial's format is comma-separated "
            "with a dot as decimal point, e.g. 0.5,0.3,1",
        ),
        (
            "0.1\t0.2\t0\n",
            "row 1: expected 3 columns (x,y,label), found 1; the row looks like values separated "
            "by tabs: the tutorial's format is comma-separated",
        ),
    ],
)
def test_upload_rejects_bad_rows_with_row_number(
    client: TestClient, content: str, expected: str
) -> None:
    before = dataset_count(client)
    status, body = upload(client, content)
    assert status == 422
    assert expected in body["detail"]
    assert dataset_count(client) == before


def test_upload_rejects_bytes_that_are_not_utf8(client: TestClient) -> None:
    status, body = upload(client, b"0.1,0.2,0\n\xff\xfe0.3,0.4,1\n")
    assert status == 422
    assert "not UTF-8 text" in body["detail"]
    status, body = upload(client, b"0.1,0.2,0\n\x000.3,0.4,1\n")
    assert status == 422
    assert "NUL" in body["detail"]


def test_upload_rejects_more_than_max_points(settings: Settings) -> None:
    settings.max_points = 5
    rows = "".join(f"0.{i},0.5,{i % 2}\n" for i in range(1, 8))
    with TestClient(create_app(settings)) as client:
        status, body = upload(client, rows)
        assert status == 422
        assert "row 6: too many points; at most 5 rows are accepted" in body["detail"]
        # "At most PC_MAX_POINTS rows" (README.md): that many are taken.
        status, body = upload(client, "".join(rows.splitlines(keepends=True)[:5]))
        assert status == 201, body
        assert body["n_points"] == 5


def test_upload_over_size_limit_is_413_and_stores_nothing(settings: Settings) -> None:
    settings.max_upload_bytes = 2048
    with TestClient(create_app(settings)) as client:
        before = dataset_count(client)
        status, body = upload(client, GOOD_ROWS * 100)
        assert status == 413
        assert "2048 bytes" in body["detail"]
        assert dataset_count(client) == before
        status, _ = upload(client, GOOD_ROWS, name="small")
        assert status == 201


def test_a_given_name_already_taken_is_409_saying_how_to_name_it(client: TestClient) -> None:
    assert upload(client, GOOD_ROWS, name="taken")[0] == 201
    before = dataset_count(client)
    status, body = upload(client, GOOD_ROWS, name="taken")
    assert status == 409
    assert body["detail"] == (
        "a dataset named 'taken' exists; give another name in the form field `name`, "
        "e.g. `name=taken-2`"
    )
    assert upload(client, GOOD_ROWS, name="curve-2")[0] == 201
    status, body = upload(client, GOOD_ROWS, name="curve")
    assert status == 409
    assert body["detail"].endswith("e.g. `name=curve-3`")  # the example is a free name
    response = client.post("/datasets/generate", json={"kind": "xor", "name": "taken"})
    assert response.status_code == 409
    assert response.json()["detail"] == (
        'a dataset named \'taken\' exists; give another name in the body, e.g. `"name": "taken-2"`'
    )
    assert dataset_count(client) == before + 1


def test_the_tutorials_own_file_uploaded_without_a_name_gets_a_free_name(
    client: TestClient,
) -> None:
    # The built-in `curve` holds the name the file's would give.
    original = (PROJECT_ROOT / "data" / "curve.csv").read_bytes()
    names = [upload(client, original, filename="curve.csv")[1]["name"] for _ in range(3)]
    assert names == ["curve-2", "curve-3", "curve-4"]
    assert client.get("/datasets/curve-3").json()["sha256"] == hashlib.sha256(original).hexdigest()
    assert client.get("/datasets/curve").json()["source"] == "builtin"


def test_a_free_name_made_from_a_long_file_name_stays_within_64_characters(
    client: TestClient,
) -> None:
    long = "a" * 64
    assert upload(client, GOOD_ROWS, filename=f"{long}.csv")[1]["name"] == long
    status, body = upload(client, GOOD_ROWS, filename=f"{long}.csv")
    assert status == 201, body
    assert body["name"] == "a" * 62 + "-2"
    # A file name with `_` or `%` finds its own free name: they are not LIKE wildcards here.
    assert upload(client, GOOD_ROWS, filename="a_b.csv")[1]["name"] == "a_b"
    assert upload(client, GOOD_ROWS, filename="a_b.csv")[1]["name"] == "a_b-2"
    assert upload(client, GOOD_ROWS, filename="axb-2.csv")[1]["name"] == "axb-2"
    assert upload(client, GOOD_ROWS, filename="axb.csv")[1]["name"] == "axb"
    assert upload(client, GOOD_ROWS, filename="axb.csv")[1]["name"] == "axb-3"


@pytest.mark.parametrize(
    "name", ["../etc", "a/b", "..", "a\\b", "bad\x01name", "1234", "x" * 65, "/abs", "a b"]
)
def test_upload_rejects_names_that_are_not_slugs(client: TestClient, name: str) -> None:
    before = dataset_count(client)
    response = client.post(
        "/datasets", files={"file": ("p.csv", GOOD_ROWS.encode())}, data={"name": name}
    )
    assert response.status_code == 422
    assert "name" in str(response.json()["detail"])
    assert dataset_count(client) == before


NAME_REFUSED = (
    "name {!r} is not allowed: use 1 to 64 ASCII letters, digits, '-' or '_', starting with a "
    "letter (no spaces), e.g. 'my-curve'"
)


@pytest.mark.parametrize("name", ["my curve", "曲線", "1234", "x" * 65, "-x"])
def test_a_refused_name_says_which_characters_are_allowed_with_an_example(
    client: TestClient, name: str
) -> None:
    before = dataset_count(client)
    uploaded = client.post(
        "/datasets", files={"file": ("p.csv", GOOD_ROWS.encode())}, data={"name": name}
    )
    generated = client.post("/datasets/generate", json={"kind": "xor", "name": name})
    swept = client.post("/sweeps", json={"grid": {"seed": [1, 2]}, "name": name})
    for response in (uploaded, generated, swept):
        assert response.status_code == 422, response.text
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "name"]
        assert error["msg"] == NAME_REFUSED.format(name)
    assert dataset_count(client) == before
    assert client.get("/sweeps").json()["count"] == 0


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\data\\My Points.CSV", "my-points"),
        ("2024.csv", "d-2024"),
        ("....csv", "dataset"),
    ],
)
def test_default_name_is_the_file_stem_made_safe(
    client: TestClient, filename: str, expected: str
) -> None:
    status, body = upload(client, GOOD_ROWS, filename=filename)
    assert status == 201, body
    assert body["name"] == expected


def test_upload_without_file_field_is_422(client: TestClient) -> None:
    response = client.post("/datasets", data={"name": "nofile"})
    assert response.status_code == 422
    assert "file" in str(response.json()["detail"])


def test_get_by_id_and_name_and_unknown(client: TestClient) -> None:
    curve = client.get("/datasets/curve").json()
    assert client.get(f"/datasets/{curve['id']}").json()["name"] == "curve"
    for ref in ("nope", "999999", "99999999999999999999"):
        response = client.get(f"/datasets/{ref}")
        assert response.status_code == 404
        assert ref in response.json()["detail"]


def test_list_is_newest_first_with_limit_and_offset(client: TestClient) -> None:
    upload(client, GOOD_ROWS, name="first")
    upload(client, GOOD_ROWS, name="second")
    body = client.get("/datasets", params={"limit": 2}).json()
    assert [d["name"] for d in body["data"]] == ["second", "first"]
    assert body["count"] == 5
    body = client.get("/datasets", params={"limit": 2, "offset": 1}).json()
    assert [d["name"] for d in body["data"]] == ["first", "random"]
    assert client.get("/datasets", params={"limit": 0}).status_code == 422


def test_points_json_and_csv_agree(client: TestClient) -> None:
    points = np.array(client.get("/datasets/linear/points").json()["points"])
    csv = client.get("/datasets/linear/csv")
    assert csv.headers["content-type"].startswith("text/csv")
    from_csv = np.loadtxt(csv.text.splitlines(), delimiter=",")
    assert points.shape == (200, 3)
    assert np.array_equal(points, from_csv)


def test_delete_uploaded_dataset_then_404(client: TestClient) -> None:
    _, first = upload(client, GOOD_ROWS, name="gone")
    assert client.delete("/datasets/gone").status_code == 204
    assert client.get("/datasets/gone").status_code == 404
    assert client.delete("/datasets/gone").status_code == 404
    # The name is free again, and the id is not reused.
    status, body = upload(client, GOOD_ROWS, name="gone")
    assert status == 201
    assert body["id"] > first["id"]


def test_builtin_datasets_cannot_be_deleted(client: TestClient) -> None:
    response = client.delete("/datasets/curve")
    assert response.status_code == 403
    assert "built-in" in response.json()["detail"]
    assert client.get("/datasets/curve").status_code == 200


def test_generate_same_seed_gives_same_points(client: TestClient) -> None:
    for kind in ("linear", "curve", "random", "circle", "xor", "gauss", "spiral", "moons"):
        a = client.post("/datasets/generate", json={"kind": kind, "seed": 7, "name": f"{kind}-a"})
        b = client.post("/datasets/generate", json={"kind": kind, "seed": 7, "name": f"{kind}-b"})
        c = client.post("/datasets/generate", json={"kind": kind, "seed": 8, "name": f"{kind}-c"})
        assert a.status_code == b.status_code == c.status_code == 201, a.text
        assert a.json()["source"] == "generated"
        assert a.json()["params"]["kind"] == kind
        assert a.json()["sha256"] == b.json()["sha256"] != c.json()["sha256"]
        points = client.get(f"/datasets/{kind}-a/points").json()["points"]
        assert len(points) == 200
        assert all(0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 for x, y, _ in points)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "hexagon", "name": "h"}, "kind"),
        ({"kind": "xor", "n": 1, "name": "h"}, "n"),
        ({"kind": "xor", "n": 10**7, "name": "h"}, "n"),
        ({"kind": "xor", "noise": -1, "name": "h"}, "noise"),
        ({"kind": "xor", "seed": -5, "name": "h"}, "seed"),
        ({"kind": "xor", "name": "../h"}, "name"),
        ({"kind": "xor"}, "name"),
        ({"kind": "xor", "name": "h", "colour": "red"}, "colour"),
    ],
)
def test_generate_rejects_bad_parameters_naming_the_field(
    client: TestClient,
    body: dict[str, Any],
    field: str,
) -> None:
    response = client.post("/datasets/generate", json=body)
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])


def test_generate_more_than_max_points_is_422(settings: Settings) -> None:
    settings.max_points = 50
    with TestClient(create_app(settings)) as client:
        response = client.post("/datasets/generate", json={"kind": "xor", "n": 51, "name": "big"})
    assert response.status_code == 422
    assert "n: 51" in response.json()["detail"]


def test_points_can_be_sampled_for_a_thumbnail(client: TestClient) -> None:
    full = client.get("/datasets/curve/points").json()["points"]
    sampled = client.get("/datasets/curve/points", params={"max_points": 50}).json()["points"]
    assert sampled == full[::4]
    assert client.get("/datasets/curve/points", params={"max_points": 500}).json()["points"] == full
    response = client.get("/datasets/curve/points", params={"max_points": 0})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "max_points"]


def test_preview_shows_what_generate_stores_and_stores_nothing(client: TestClient) -> None:
    recipe = {"kind": "moons", "n": 300, "noise": None, "seed": 4}
    preview = client.post("/datasets/generate/preview", json=recipe)
    assert preview.status_code == 200, preview.text
    assert preview.json()["params"] == {"kind": "moons", "n": 300, "noise": 0.03, "seed": 4}
    assert client.get("/datasets").json()["count"] == 3  # the built-ins only
    created = client.post("/datasets/generate", json={**recipe, "name": "moons-4"})
    assert created.status_code == 201
    assert client.get("/datasets/moons-4/points").json()["points"] == preview.json()["points"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "hexagon"}, "kind"),
        ({"kind": "xor", "n": 1}, "n"),
        ({"kind": "xor", "noise": 2}, "noise"),
        ({"kind": "xor", "name": "extra"}, "name"),
    ],
)
def test_preview_refuses_what_generate_refuses(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/datasets/generate/preview", json=body)
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])


def test_preview_keeps_the_points_limit(settings: Settings) -> None:
    settings.max_points = 50
    with TestClient(create_app(settings)) as client:
        response = client.post("/datasets/generate/preview", json={"kind": "xor", "n": 51})
    assert response.status_code == 422
    assert "n: 51" in response.json()["detail"]


def test_plot_png_decodes(client: TestClient) -> None:
    response = client.get("/datasets/curve/plot.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = decode_png(response.content)
    assert image.size == (600, 640)  # the legend below the plot
    assert len(rgb_colours(image)) > 2
    assert has_label_colours(image)
    assert client.get("/datasets/nope/plot.png").status_code == 404


def test_health_reports_database_and_cuda(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["database_revision"] is not None
    assert isinstance(body["cuda"]["available"], bool)
    assert body["cuda"]["device_count"] == len(body["cuda"]["devices"])


def test_empty_name_field_takes_the_file_name(client: TestClient) -> None:
    # Browsers and Swagger UI send an empty field for "no name"; treat it as not given.
    status, body = upload(client, GOOD_ROWS, filename="blank.csv", name="")
    assert status == 201
    assert body["name"] == "blank"


def test_refs_that_look_numeric_but_are_not_ascii_digits_are_404(client: TestClient) -> None:
    # str.isdigit() is true for a superscript three (found by schemathesis); int() is not.
    for ref in ("%C2%B3", "%D9%A1", "%EF%BC%91"):
        response = client.get(f"/datasets/{ref}")
        assert response.status_code == 404
        assert "no dataset with id or name" in response.json()["detail"]
