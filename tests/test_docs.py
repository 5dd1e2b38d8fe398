"""The Markdown pages say what the code does: the pinned versions SECURITY.md names are the lock
file's."""

from __future__ import annotations

import re

from packaging.version import Version

from app.core.config import PROJECT_ROOT

CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)


def _rows(text: str, first_cell: str) -> list[list[str]]:
    """The cells of a Markdown table's rows whose first cell starts with first_cell."""
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].startswith(first_cell):
            rows.append(cells)
    return rows


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
