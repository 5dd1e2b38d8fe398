"""CSV uploads fuzzed with hypothesis: only 201, 413 or 422, and never a partial dataset."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.config import PROJECT_ROOT, Settings
from app.main import create_app
from app.ml.points_csv import parse_points_csv

MAX_BYTES = 20_000
NUMBER_SPELLINGS = [
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-inf",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "0x1p3",
    "1_000",
    "",
    " ",
    "\uff11",  # a fullwidth digit one
    "0.5e",
    "--1",
    "1e-400",
    "+0",
    "-0.0",
]


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    config = Settings(
        database_url=f"sqlite:///{folder / 'pc.sqlite3'}",
        models_store=folder / "models_store",
        builtin_data_dir=PROJECT_ROOT / "data",
        allowed_hosts=["testserver"],  # the Host that Starlette's TestClient sends
        runner_enabled=False,
        max_upload_bytes=MAX_BYTES,
        max_points=300,
    )
    with TestClient(create_app(config)) as client:
        yield client


field = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=0, max_value=1).map(lambda v: f"{v:.18e}"),
    st.sampled_from(
        ["0", "1", "0.0", "1.0", "0.000000000000000000e+00", "1.000000000000000000e+00"]
    ),
    st.sampled_from(NUMBER_SPELLINGS),
    st.text(max_size=30),
    st.text(alphabet="0123456789.e-+", min_size=1, max_size=400),
)
row = st.lists(field, min_size=0, max_size=5).map(",".join)
line_end = st.sampled_from(["\n", "\r\n", "\r"])
csv_text = st.builds(
    lambda prefix, rows, end: prefix + end.join(rows) + end,
    st.sampled_from(["", "\ufeff", "x,y,label\n", "X, Y, LABEL\r\n", "\ufeffx,y,label\n"]),
    st.lists(row, max_size=60),
    line_end,
)
encoded = st.one_of(
    csv_text.map(lambda t: t.encode("utf-8")),
    csv_text.map(lambda t: t.encode("utf-16")),
    csv_text.map(lambda t: t.encode("latin-1", errors="replace")),
    st.binary(max_size=3000),
    st.builds(lambda n: b"0.1,0.2," + b"1" * n + b"\n", st.integers(1, MAX_BYTES * 2)),
    st.builds(lambda n: b"0.1,0.9,0\n0.3,0.4,1\n" * n, st.integers(1, 2000)),
)
names = itertools.count()


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=encoded)
def test_fuzzed_uploads_are_201_413_or_422_and_never_partial(
    fuzz_client: TestClient, body: bytes
) -> None:
    before = fuzz_client.get("/datasets").json()["count"]
    name = f"fuzz-{next(names)}"
    response = fuzz_client.post(
        "/datasets", files={"file": ("f.csv", body, "text/csv")}, data={"name": name}
    )
    assert response.status_code in (201, 413, 422), response.text
    assert isinstance(response.json()["detail" if response.status_code != 201 else "id"], str | int)
    after = fuzz_client.get("/datasets").json()["count"]
    if response.status_code != 201:
        assert after == before
        assert fuzz_client.get(f"/datasets/{name}").status_code == 404
        return
    assert after == before + 1
    stored = fuzz_client.get(f"/datasets/{name}/csv").content
    assert np.array_equal(parse_points_csv(stored, 300), parse_points_csv(body, 300))
