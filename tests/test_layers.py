"""The layout's one rule: imports only go down (README, "Where things live").

mapping <- topics <- worker.config <- worker (records, routing, metrics, web, topology)
<- worker.produce <- worker.runtime, worker.edge <- worker.cli; worker.local is tooling that
production code never imports. The edge and the worker's runtime are two programs side by side:
neither imports the other; what both need of producing is in worker.produce.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mapping", "topics", "worker")


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """Every trackbridge module `path` imports (at any depth, lazily or not)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


MODULES = {_module(path): _imports(path) for package in PACKAGES for path in (ROOT / package).rglob("*.py")}

# What the modules shared by the worker and the edge may not import: the layers above them.
_ABOVE_SHARED = ("worker.produce", "worker.runtime", "worker.edge", "worker.cli", "worker.local")

# (modules whose name starts with this, the imports they may not have)
RULES = [
    ("mapping", ("topics", "worker")),
    ("topics", ("worker",)),
    (
        "worker.config",
        (
            "topics",
            "worker.records",
            "worker.routing",
            "worker.metrics",
            "worker.web",
            "worker.topology",
            *_ABOVE_SHARED,
        ),
    ),
    ("worker.records", _ABOVE_SHARED),
    ("worker.routing", _ABOVE_SHARED),
    ("worker.metrics", _ABOVE_SHARED),
    ("worker.collector", ("worker.config", *_ABOVE_SHARED)),
    ("worker.signals", _ABOVE_SHARED),
    ("worker.logs", _ABOVE_SHARED),
    ("worker.web", _ABOVE_SHARED),
    ("worker.topology", _ABOVE_SHARED),
    ("worker.redrive", ("worker.routing", *_ABOVE_SHARED)),
    ("worker.clients", ("worker.records", "worker.routing", *_ABOVE_SHARED)),
    ("worker.sealing", ("worker.config", "worker.records", "worker.routing", *_ABOVE_SHARED)),
    ("worker.produce", ("worker.config", "worker.routing", "worker.metrics", *_ABOVE_SHARED[1:])),
    ("worker.runtime", ("worker.cli", "worker.local", "worker.edge")),
    ("worker.edge", ("topics", "worker.cli", "worker.local", "worker.runtime")),
    ("worker.local", ("worker.cli", "worker.runtime", "worker.edge")),
]


@pytest.mark.parametrize(("prefix", "forbidden"), RULES, ids=[rule[0] for rule in RULES])
def test_imports_only_go_down(prefix: str, forbidden: tuple[str, ...]) -> None:
    modules = {
        name: imports for name, imports in MODULES.items() if name == prefix or name.startswith(prefix + ".")
    }
    assert modules, f"no module matches {prefix}"
    wrong = {
        f"{name} imports {target}"
        for name, imports in modules.items()
        for target in imports
        if any(target == bad or target.startswith(bad + ".") for bad in forbidden)
    }
    assert not wrong


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_the_rules_cover_every_module() -> None:
    """A new module needs a rule; the command line, at the top, may import anything."""
    covered = [prefix for prefix, _ in RULES] + ["worker.cli"]
    for name in MODULES:
        assert name == "worker" or any(_under(name, prefix) for prefix in covered), name


def test_a_forbidden_import_is_seen(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from worker.runtime.app import WorkerApp\n    import topics.catalog\n")
    assert _imports(probe) >= {"worker.runtime.app", "topics.catalog"}
