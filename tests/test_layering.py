"""The package layering and the size limits, read from the source (ast) of every product module.

Rules: `embeddings` imports none of matcher/api/training; `matcher` imports only itself and `embeddings`,
except `matcher/cli/` (the composition root), which may import everything; `training` imports matcher and
embeddings, never api; `api` imports matcher and embeddings, never training; only `api/` imports FastAPI or
Starlette. Modules stay within 500 lines and functions within 100."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("embeddings", "matcher", "training", "api")
PROJECT = set(PACKAGES)
WEB = {"fastapi", "starlette"}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 100

# which project packages each layer may import (its own included)
ALLOWED = {
    "embeddings": {"embeddings"},
    "matcher": {"matcher", "embeddings"},
    "training": {"training", "matcher", "embeddings"},
    "api": {"api", "matcher", "embeddings"},
}


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _imports(tree: ast.AST) -> set[str]:
    """Top-level names of every module imported anywhere in the file (function-level imports included)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def _layer(rel: str) -> str | None:
    """The layer whose rules a file follows; None for the composition root (matcher/cli)."""
    return None if rel.startswith("matcher/cli/") else rel.split("/")[0]


def _import_violations() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in _modules():
        rel = _rel(path)
        imported = _imports(ast.parse(path.read_text(encoding="utf-8")))
        layer = _layer(rel)
        bad = set()
        if layer is not None:
            bad |= (imported & PROJECT) - ALLOWED[layer]
        if layer != "api":
            bad |= imported & WEB
        if bad:
            out[rel] = bad
    return out


def _long_modules() -> dict[str, int]:
    out = {}
    for path in _modules():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_MODULE_LINES:
            out[_rel(path)] = n
    return out


def _long_functions() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out.setdefault(_rel(path), []).append(f"{node.name} ({n} lines)")
    return out


def test_the_walk_sees_every_package_and_function_level_imports():
    assert {_rel(p).split("/")[0] for p in _modules()} == PROJECT
    tree = ast.parse(
        "def f():\n    from training.registry import TrainingRegistry\n    import fastapi.routing\n"
    )
    assert _imports(tree) == {"training", "fastapi"}


def test_layers_import_only_what_they_may():
    broken = _import_violations()
    assert broken == {}, f"imports across the layering: {broken}"


def test_modules_stay_within_the_line_limit():
    long = _long_modules()
    assert long == {}, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_functions_stay_within_the_line_limit():
    long = _long_functions()
    assert long == {}, f"functions over {MAX_FUNCTION_LINES} lines: {long}"
