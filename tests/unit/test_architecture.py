"""The layering docs/ARCHITECTURE.md describes, checked on the code: each package of `gateway`
imports only the packages its row allows (every import counts, function-level and
TYPE_CHECKING ones included)."""

from __future__ import annotations

import ast
from pathlib import Path

GATEWAY = Path(__file__).parents[2] / "gateway"
WIRING = {"app", "state", "runner", "server", "cli", "__main__", "__init__", "gateway"}

# package → the packages it may import; keep in step with docs/ARCHITECTURE.md
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "errors": set(),
    "sse": set(),
    "core": {"config", "errors"},
    "pricing": {"config", "core"},
    "protocol": {"core", "errors"},
    "metrics": {"core", "errors"},
    "ledger": {"config", "core", "errors"},
    "providers": {"config", "core", "errors", "protocol", "sse"},
    "quality": {"config", "core", "errors", "ledger", "metrics", "pricing"},
    "routing": {"config", "core", "errors", "pricing", "providers", "quality"},
    "codecs": {"core", "errors", "protocol"},
    "serving": {"core", "errors", "metrics", "pricing", "providers", "quality", "routing", "sse"},
    "conversations": {"config", "core", "errors", "ledger"},
    "governance": {"config", "core", "errors", "ledger", "metrics", "routing", "serving"},
    "finance": {"config", "core", "errors", "ledger", "pricing", "providers", "routing"},
    "api": {
        "codecs",
        "config",
        "conversations",
        "core",
        "finance",
        "governance",
        "errors",
        "ledger",
        "protocol",
        "quality",
        "routing",
        "serving",
        "state",
    },
    "simulator": {"sse"},
}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "gateway"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "gateway":  # `from gateway import x`: x is the package
                names = [f"gateway.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {_package(n) for n in names if n == "gateway" or n.startswith("gateway.")}
    return found


def test_every_package_imports_only_what_its_layer_allows() -> None:
    violations = []
    for path in sorted(GATEWAY.rglob("*.py")):
        rel = path.relative_to(GATEWAY.parent).with_suffix("")
        package = _package(".".join(rel.parts))
        if package in WIRING or path.name == "cli.py":  # command lines are wiring too
            continue
        assert package in ALLOWED, f"{package} is not in the layer table (ARCHITECTURE.md)"
        for imported in _imports(path) - {package}:
            if imported not in ALLOWED[package]:
                violations.append(f"{rel}.py imports gateway.{imported}")
    assert not violations, "\n".join(violations)


def test_the_request_path_names_no_provider_kind() -> None:
    """Serving and the edge never branch on an API family: adapters and codecs do."""
    for folder in ("serving", "api"):
        for path in (GATEWAY / folder).rglob("*.py"):
            assert "kind ==" not in path.read_text(), path
