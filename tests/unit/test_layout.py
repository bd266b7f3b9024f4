"""The map of the code holds: every package says what it is for, modules stay readable, and
imports go one way: no cycles; shared/ imports none of the others; api/, workers/ and cli/ stand
on shared/ and not on each other; inside shared/ and api/, nothing imports a layer above it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "api", "workers", "cli")
MAX_LINES = 300


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_time_imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Lyre modules ``path`` imports when it is imported: its top-level imports, not those in
    functions or under ``if TYPE_CHECKING``."""
    out: set[str] = set()
    body = list(ast.parse(path.read_text()).body)
    while body:
        node = body.pop(0)
        if isinstance(node, ast.If) and not _is_type_checking(node):
            body += node.body + node.orelse
        elif isinstance(node, ast.Try):
            body += node.body
        elif isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in out if name in known}


def all_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)  # and its names, which may be modules (from api import deps)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_every_package_says_what_it_is_for():
    for name, path in modules().items():
        if path.name == "__init__.py" and name.startswith("shared"):
            doc = ast.get_docstring(ast.parse(path.read_text()))
            assert doc and len(doc.split()) >= 20, f"{name} has no paragraph saying what it holds"


def test_every_folder_of_code_is_a_package():
    """A folder of modules without ``__init__.py`` is left out of the wheel (setuptools' find
    takes packages only), though it imports from a checkout: the Docker image would lack it."""
    folders = {path.parent for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    missing = sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists())
    assert missing == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_stay_under_300_lines(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


# Each package and the others it may not import, even inside a function
APART = {
    "shared": ("api", "workers", "cli"),
    "api": ("workers", "cli"),
    "workers": ("api", "cli"),
    "cli": ("api", "workers"),
}


@pytest.mark.parametrize("package", sorted(APART))
def test_each_package_stands_on_shared_alone(package):
    for name, path in modules().items():
        if name.split(".")[0] == package:
            wrong = {i for i in all_imports(path) if i.split(".")[0] in APART[package]}
            assert not wrong, f"{name} imports {wrong}"


# shared/'s folders, each importing only folders before it (the order of shared/__init__.py)
LAYERS = ("text", "infra", "audio", "speech", "snac", "checks", "webhooks", "farm")
# api/'s layers, bottom up: what errors and bodies are; the services; what the routes share
# (the request's tenant, its upload, the error handlers, the page's sessions and forms); the
# routes and pages; the app that wires them
API_LAYERS = (
    ("api.errors", "api.schemas", "api.openai_shapes", "api.progress_shapes", "api.problems"),
    ("api.services",),
    ("api.deps", "api.uploads", "api.handlers", "api.web.sessions", "api.web.forms"),
    ("api.routes", "api.web"),
    ("api.app",),
)


def api_layer(name: str) -> int:
    """The layer of the api module ``name``: its longest prefix listed in API_LAYERS."""
    found = [
        (len(prefix), rank)
        for rank, prefixes in enumerate(API_LAYERS)
        for prefix in prefixes
        if name == prefix or name.startswith(prefix + ".")
    ]
    assert found, f"{name} is in no layer of API_LAYERS"
    return max(found)[1]


def test_api_modules_import_no_layer_above_their_own():
    known = modules()
    for name, path in known.items():
        if name.startswith("api.") and not name.endswith("__init__"):
            for imported in all_imports(path):
                if imported.startswith("api.") and imported in known:
                    assert api_layer(imported) <= api_layer(name), f"{name} imports {imported}"


def test_shared_folders_import_only_the_folders_before_them():
    known = modules()
    assert {n.split(".")[1] for n in known if n.count(".") >= 1 and n.startswith("shared.")} == set(
        LAYERS
    )
    for name, path in known.items():
        if not name.startswith("shared."):
            continue
        folder = name.split(".")[1]
        for imported in import_time_imports(path, known):
            if imported.startswith("shared.") and imported.count(".") >= 1:
                other = imported.split(".")[1]
                assert LAYERS.index(other) <= LAYERS.index(folder), f"{name} imports {imported}"


def test_no_import_cycles():
    known = modules()
    graph = {name: import_time_imports(path, known) - {name} for name, path in known.items()}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", " -> ".join([*trail, name])
        state[name] = "open"
        for imported in sorted(graph[name]):
            visit(imported, [*trail, name])
        state[name] = "done"

    for name in sorted(graph):
        visit(name, [])


# Test modules about models: they build or run tiny checkpoints, so they import torch.
NEEDS_TORCH = {"test_bench_gpu", "test_decoder", "test_engines", "test_int16_gemm"}
NEEDS_TORCH |= {"test_openai_backend"}  # it checks the client against the transformers backend
NEEDS_TORCH |= {"test_live"}  # live streams decoded with a tiny SNAC


def test_collecting_a_test_module_about_no_model_imports_no_torch():
    """torch takes seconds to import: the tests of text, audio, the farm and the API run
    without it (tests/conftest.py builds the checkpoints only where a test asks for one)."""
    names = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in (ROOT / "tests").glob("*/test_*.py")
        if path.stem not in NEEDS_TORCH and path.parent.name != "vllm"
    )
    code = "import sys, tests.conftest\n" + "".join(f"import {name}\n" for name in names)
    code += "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout
    assert len(names) > 15
