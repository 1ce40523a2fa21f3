"""The direction of dependency, read from the source with ast (imports inside functions count too):
sync imports stores, stores never imports sync, and sync's modules import each other without a cycle."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path, module: str) -> set[str]:
    """Every module the source of `module` imports, at module level or inside a function."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = package[: len(package) - (node.level - 1)]
                stem = ".".join(parent + ([node.module] if node.module else []))
            else:
                stem = node.module
            found.add(stem)
            # `from . import engine` imports the module sync.engine.
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return found


def modules_of(package: str) -> dict[str, Path]:
    paths = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        paths[".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")] = path
    return paths


def import_graph(package: str) -> dict[str, list[str]]:
    modules = modules_of(package)
    return {
        name: sorted(m for m in imported_modules(path, name) if m in modules and m not in (name, package))
        for name, path in modules.items()
    }


def cycles_in(graph: dict[str, list[str]]) -> list[list[str]]:
    cycles, state = [], {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in graph[name]:
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[name] = "done"

    for name in graph:
        if name not in state:
            visit(name, [name])
    return cycles


def test_stores_never_imports_sync():
    offenders = {}
    for name, path in modules_of("stores").items():
        found = sorted(m for m in imported_modules(path, name) if m == "sync" or m.startswith("sync."))
        if found:
            offenders[name] = found
    assert offenders == {}


def test_sync_modules_import_each_other_without_a_cycle():
    assert cycles_in(import_graph("sync")) == []


def test_imports_inside_functions_and_relative_imports_are_seen(tmp_path):
    source = tmp_path / "runs.py"
    source.write_text("from . import engine\n\ndef f():\n    from .webhooks import g\n    import stores.models\n")
    assert imported_modules(source, "sync.runs") >= {"sync.engine", "sync.webhooks", "stores.models"}


def test_a_cycle_through_three_modules_is_found():
    assert cycles_in({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c", "a"]]
