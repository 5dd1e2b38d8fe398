"""The layers hold: each rule below is read from the source files' imports with `ast`, every
import counted (at the top, inside a function, relative), so a rule broken anywhere fails here.

- the domain (`app/core`), the services, the job runners and the ML core never import the web
  framework: workers import them without it, and scripts use `app/ml` alone;
- `app/ml` imports neither the API, the services, the job runners, the ORM models nor
  SQLAlchemy;
- the domain does not import the layers above it, and the services and runners not the API;
- a route module never imports another route module: what two share lives in a module that is
  not a route (`app/api/params.py`, a service);
- nothing in the service imports what drives it from outside (`app/testing`, the tests, the
  scripts, the benchmarks).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.core.config import PROJECT_ROOT


@dataclass(frozen=True)
class Rule:
    name: str
    under: tuple[str, ...]  # folders, relative to the project root
    forbidden: tuple[str, ...]  # module names: each forbids itself and what lies below it
    except_under: tuple[str, ...] = ()


WEB = ("fastapi", "starlette")
RULES = [
    Rule(
        "no web framework below the API",
        ("app/core", "app/services", "app/jobs", "app/ml"),
        WEB,
    ),
    Rule(
        "the ML core knows no API, service, runner, database or ORM",
        ("app/ml",),
        ("app.api", "app.services", "app.jobs", "app.models", "app.main", "sqlalchemy"),
    ),
    Rule(
        "the domain imports no layer above it",
        ("app/core",),
        ("app.api", "app.services", "app.jobs", "app.main"),
    ),
    Rule(
        "services and runners do not import the API",
        ("app/services", "app/jobs"),
        ("app.api", "app.main"),
    ),
    Rule(
        "no route module imports another",
        ("app/api/routes",),
        ("app.api.routes.",),  # the package's submodules; see imported_modules()
    ),
    Rule(
        "the service does not import what drives it from outside",
        ("app",),
        ("app.testing", "tests", "scripts", "bench"),
        except_under=("app/testing",),
    ),
]


def module_name(relative: Path) -> str:
    """The dotted name of a file, given relative to the project's root."""
    parts = relative.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module) for every import in `source`, relative ones made absolute. `from a.b
    import c` counts as `a.b.c` too, since c may be a module (`from app.api.routes import runs`).
    """
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def _forbids(forbidden: str, imported: str) -> bool:
    if forbidden.endswith("."):
        return imported.startswith(forbidden)
    return imported == forbidden or imported.startswith(forbidden + ".")


def violations(rule: Rule, root: Path = PROJECT_ROOT) -> list[str]:
    """`path:line imports module` for each import under `root` that breaks the rule."""
    found: list[str] = []
    for folder in rule.under:
        for path in sorted((root / folder).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if any(relative.startswith(f"{skip}/") for skip in rule.except_under):
                continue
            module = module_name(path.relative_to(root))
            for line, imported in imported_modules(
                path.read_text(), module, is_package=path.name == "__init__.py"
            ):
                if imported.startswith(module + "."):
                    continue  # a package's own modules
                if any(_forbids(forbidden, imported) for forbidden in rule.forbidden):
                    found.append(f"{relative}:{line} imports {imported}")
    return sorted(set(found))


@pytest.mark.parametrize("rule", RULES, ids=[rule.name for rule in RULES])
def test_the_layers_hold(rule: Rule) -> None:
    assert violations(rule) == []


def test_each_rule_looks_at_files_that_exist() -> None:
    for rule in RULES:
        for folder in rule.under:
            assert list((PROJECT_ROOT / folder).rglob("*.py")), f"{rule.name}: no files in {folder}"


@pytest.mark.parametrize(
    ("source", "module", "caught"),
    [
        ("import fastapi", "app.ml.engine", "fastapi"),
        ("from starlette.types import Scope", "app.jobs.worker", "starlette.types"),
        ("def f():\n    from fastapi import Request", "app.core.errors", "fastapi"),
        ("from app.api.routes.runs import RunId", "app.api.routes.pages", "app.api.routes.runs"),
        ("from app.api.routes import runs", "app.api.routes.pages", "app.api.routes.runs"),
        ("from .runs import RunId", "app.api.routes.pages", "app.api.routes.runs"),
        ("from . import runs", "app.api.routes.pages", "app.api.routes.runs"),
        ("from ..deps import SessionDep", "app.api.routes.pages", "app.api.deps"),
        ("import sqlalchemy.orm", "app.ml.inference", "sqlalchemy.orm"),
    ],
)
def test_every_kind_of_import_is_seen(source: str, module: str, caught: str) -> None:
    assert caught in [name for _, name in imported_modules(source, module)]


# For each rule, a file that breaks it, in a tree laid out as the project's.
BREAKS = {
    "no web framework below the API": ("app/services/runs.py", "from fastapi import Depends\n"),
    "the ML core knows no API, service, runner, database or ORM": (
        "app/ml/engine.py",
        "def f() -> None:\n    from sqlalchemy.orm import Session\n",
    ),
    "the domain imports no layer above it": ("app/core/errors.py", "import app.api.errors\n"),
    "services and runners do not import the API": (
        "app/jobs/worker.py",
        "from app.api.deps import SessionDep\n",
    ),
    "no route module imports another": ("app/api/routes/pages.py", "from .runs import RunId\n"),
    "the service does not import what drives it from outside": (
        "app/main.py",
        "from app.testing.live_server import LiveServer\n",
    ),
}


@pytest.mark.parametrize("rule", RULES, ids=[rule.name for rule in RULES])
def test_a_broken_rule_is_reported(rule: Rule, tmp_path: Path) -> None:
    relative, source = BREAKS[rule.name]
    (tmp_path / relative).parent.mkdir(parents=True)
    (tmp_path / relative).write_text(source)
    reported = violations(rule, tmp_path)
    assert reported, f"{rule.name}: {relative} was not reported"
    assert all(line.startswith(f"{relative}:") for line in reported)


def test_what_the_rules_allow_is_not_reported(tmp_path: Path) -> None:
    allowed = {
        "app/api/routes/pages.py": "from app.api.params import RunId\nfrom app.api import deps\n",
        "app/api/routes/__init__.py": "from app.api.routes import runs\n",  # its own module
        "app/testing/live_server.py": "from app.testing import other\n",
        "app/ml/engine.py": "from app.ml.checkpoints import kept_buffers\nimport torch\n",
    }
    for relative, source in allowed.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(source)
    for rule in RULES:
        assert violations(rule, tmp_path) == [], rule.name
