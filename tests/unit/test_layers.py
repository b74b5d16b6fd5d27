"""The layering of docs/architecture.md, checked over every import in agent/ (function-level
imports included): which layer may import which, no import cycles, a short top level."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

AGENT = Path(__file__).resolve().parents[2] / "agent"

# What each layer may import from the agent besides itself.
ALLOWED: dict[str, set[str]] = {
    "live": set(),
    "media": set(),
    "tools": set(),
    "emulator": set(),  # its own codec: an oracle independent of the client's
    "config": {"tools", "media", "logs"},  # read against their registries; builds nothing
    "build": {"config", "live", "media", "tools", "emulator", "logs"},  # redacts new tokens
    "logs": set(),
    "systemd": {"logs"},  # STATUS= is public: it goes through the logs' redaction
    "allocator": set(),
    "daemon": {"build", "config", "live", "logs", "systemd", "tools", "emulator", "metrics",
               "usage"},
    "metrics": {"live", "usage"},  # reads the counters the live layer and the ledger keep
    "usage": {"config", "live"},  # the service's usage reports; the config a budget degrades
    "demo": {"config", "daemon", "emulator"},
    "token_server": {"logs"},  # the owner's machine: holds the key, mints tokens
    "cli": {"allocator", "config", "daemon", "demo", "emulator", "logs", "media", "metrics",
            "tools", "token_server", "usage"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(AGENT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p) for p in AGENT.rglob("*.py")}


def imports(path: Path) -> Iterator[str]:
    """Every agent module ``path`` imports, anywhere in the file."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("agent"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("agent"):
            for alias in node.names:  # ``from agent.live import protocol`` is the submodule
                submodule = f"{node.module}.{alias.name}"
                yield submodule if submodule in MODULES else node.module


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def graph() -> dict[str, set[str]]:
    return {module_name(p): set(imports(p)) for p in AGENT.rglob("*.py")}


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = []
    for module, targets in graph().items():
        own = layer(module)
        if not own:
            continue
        for target in targets:
            other = layer(target)
            if other and other != own and other not in ALLOWED[own]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_there_is_no_import_cycle_between_modules() -> None:
    edges = graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join([*path, module]))
        if module in done:
            return
        for target in edges.get(module, ()):
            if target in edges and target != module:
                visit(target, [*path, module])
        done.add(module)

    for module in edges:
        visit(module, [])


def test_the_top_level_stays_short() -> None:
    modules = [p.name for p in AGENT.glob("*.py")]
    assert len(modules) <= 8, modules
    assert set(ALLOWED) >= {p.stem for p in AGENT.glob("*.py") if p.stem != "__init__"}
