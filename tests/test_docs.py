"""The Markdown pages say what the code does: the settings table is `Settings`, the pinned
versions are the lock file's, every relative link leads to a file, and the README keeps the two
commands CI runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version
from pydantic import TypeAdapter

from app.api.body_limit import PREDICT_BYTES, SMALL_JSON_BYTES
from app.core.config import PROJECT_ROOT, Settings
from app.schemas.results import MAX_PREDICT_POINTS

README = PROJECT_ROOT / "README.md"
DOCS = PROJECT_ROOT / "docs"
PAGES = sorted(
    [README, PROJECT_ROOT / "SECURITY.md", PROJECT_ROOT / "bench" / "README.md", *DOCS.glob("*.md")]
)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
# A documented default that stands for no value.
UNSET = "unset"


def _rows(text: str, first_cell: str) -> list[list[str]]:
    """The cells of a Markdown table's rows whose first cell starts with first_cell."""
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].startswith(first_cell):
            rows.append(cells)
    return rows


def documented_settings() -> dict[str, str]:
    """docs/configuration.md's table: `PC_NAME` -> its default cell."""
    text = (DOCS / "configuration.md").read_text()
    return {cells[0].strip("`"): cells[1] for cells in _rows(text, "`PC_")}


def test_the_configuration_page_lists_exactly_the_settings() -> None:
    fields = {f"PC_{name.upper()}" for name in Settings.model_fields}
    documented = documented_settings()
    assert sorted(documented) == sorted(fields)
    assert len(_rows((DOCS / "configuration.md").read_text(), "`PC_")) == len(documented)


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_each_documented_default_is_the_settings_default(name: str) -> None:
    field = Settings.model_fields[name]
    cell = documented_settings()[f"PC_{name.upper()}"]
    if cell == UNSET:
        assert field.default in (None, "", []), f"PC_{name.upper()} has a default: {field.default}"
        return
    literal = re.match(r"`([^`]*)`", cell)
    assert literal is not None, f"PC_{name.upper()}: the default {cell!r} is not `a value`"
    # Paths beside the code are written from <repo>, the repository's root.
    value = literal.group(1).replace("<repo>", str(PROJECT_ROOT))
    assert field.annotation is not None
    documented: Any = TypeAdapter(field.annotation).validate_python(value)
    assert documented == field.default, f"PC_{name.upper()}: {cell} is not {field.default!r}"


def test_the_configuration_page_states_the_body_limits_as_the_code_has_them() -> None:
    (row,) = _rows((DOCS / "configuration.md").read_text(), "`PC_MAX_UPLOAD_BYTES`")
    assert f"at most {PREDICT_BYTES:,} bytes ({MAX_PREDICT_POINTS:,} points)" in row[2]
    assert f"every other route {SMALL_JSON_BYTES // 1024} KiB" in row[2]


def _pinned() -> dict[str, Version]:
    lines = (PROJECT_ROOT / "requirements.lock").read_text().splitlines()
    pairs = (line.split("==") for line in lines if "==" in line and not line.startswith("#"))
    return {name.strip().lower(): Version(version.split()[0]) for name, version in pairs}


def test_the_security_page_names_the_pinned_versions_past_each_advisory() -> None:
    text = (PROJECT_ROOT / "SECURITY.md").read_text()
    section = text[text.index("## Dependencies and advisories") :]
    pinned = _pinned()
    rows = [cells for cells in _rows(section, "") if re.fullmatch(r"[\d.]+", cells[1])]
    assert len(rows) >= 6
    for package, version, advisory, fixed in rows:
        assert Version(version) == pinned[package], (package, version)
        assert Version(fixed) <= pinned[package], (package, advisory)
    prose = re.findall(r"([a-z][a-z0-9-]*) (\d+\.\d+\.\d+)", CODE.sub("", section))
    assert prose
    for package, version in prose:
        assert Version(version) == pinned[package], (package, version)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(PROJECT_ROOT)))
def test_every_relative_link_leads_to_a_file(page: Path) -> None:
    targets = LINK.findall(CODE.sub("", page.read_text()))
    for target in targets:
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        assert "#" not in target, f"{target}: link to the page, not an anchor in it"
        resolved = (page.parent / target).resolve()
        assert resolved.is_relative_to(PROJECT_ROOT), f"{target} leaves the repository"
        assert resolved.exists(), f"{page.name} links to {target}, which does not exist"


def test_the_readme_links_every_page_of_docs() -> None:
    linked = {
        (PROJECT_ROOT / target).resolve()
        for target in LINK.findall(README.read_text())
        if not re.match(r"[a-z]+:", target)
    }
    for page in DOCS.glob("*.md"):
        assert page.resolve() in linked, f"README.md does not link {page.name}"
    assert (PROJECT_ROOT / "SECURITY.md").resolve() in linked
    assert (PROJECT_ROOT / "bench" / "README.md").resolve() in linked


def test_the_readme_says_the_two_commands_ci_and_the_makefile_run() -> None:
    readme = README.read_text()
    quick_start = readme[readme.index("## Quick start") :]
    block = re.search(r"```sh\n(.*?)```", quick_start, re.S)
    assert block is not None
    commands = [shlex.split(line, comments=True) for line in block.group(1).splitlines()]
    assert commands == [["make", "serve"], ["make", "test"]]
    ci = [line for line in (PROJECT_ROOT / ".ci" / "run").read_text().splitlines() if line]
    assert ci[-1] == "make test"
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert re.search(r"^serve: ", makefile, re.M)
    assert re.search(r"^test: ", makefile, re.M)
    assert "http://127.0.0.1:8000/ for the dashboard" in readme
    assert "http://127.0.0.1:8000/docs for the Swagger UI" in readme


def test_the_readme_is_a_five_minute_read() -> None:
    assert len(README.read_text().splitlines()) <= 200


def test_the_benchmark_page_says_how_to_run_the_suite() -> None:
    page = (PROJECT_ROOT / "bench" / "README.md").read_text()
    assert "make bench" in page
    assert ".venv/bin/python -m bench --only" in page
