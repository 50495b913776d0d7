"""The layout's rules, checked on the source: no import cycle inside intake/, and checks/ and
notifier/ never import intake/ (imports run one way: checks <- notifier <- intake)."""
from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imported(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules `module` imports (at the top or inside functions, not for type checking only):
    `from a.b import c` names a.b.c when that is a module, else a.b."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(inner) for node in ast.walk(tree) if _type_checking_only(node)
               for inner in ast.walk(node)}
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                names.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return names


def _graph(package: str) -> dict[str, set[str]]:
    modules = _modules(package)
    return {module: _imported(module, path, set(modules)) for module, path in modules.items()}


def test_no_import_cycle_inside_intake():
    graph = _graph("intake")
    inside = {module: {name for name in names if name in graph and name != module}
              for module, names in graph.items()}
    try:
        order = list(TopologicalSorter(inside).static_order())
    except CycleError as cycle:
        raise AssertionError(f"import cycle: {' -> '.join(cycle.args[1])}") from None
    assert set(order) == set(graph)


def test_checks_and_notifier_import_nothing_from_intake():
    for package in ("checks", "notifier"):
        for module, names in _graph(package).items():
            wrong = sorted(name for name in names if name == "intake" or name.startswith("intake."))
            assert not wrong, f"{module} imports {wrong}"


def test_checks_imports_nothing_from_notifier():
    for module, names in _graph("checks").items():
        wrong = sorted(name for name in names if name.split(".")[0] == "notifier")
        assert not wrong, f"{module} imports {wrong}"


def test_no_module_in_intake_is_over_the_size_limit():
    """Small modules: one over ~400 lines mixes stages (a newcomer should find each by folder)."""
    long = {module: lines for module, path in _modules("intake").items()
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 420}
    assert not long, long


def test_every_kind_of_mail_has_a_handler():
    """A new MailKind must get its own handler: none falls through to being a submission."""
    from checks.classify import MailKind
    from intake.process.pipeline import HANDLERS
    assert set(HANDLERS) == set(MailKind)


def test_every_desk_action_has_a_handler():
    from intake.web.actions import ACTIONS, DESK_ACTIONS
    assert set(DESK_ACTIONS) == set(ACTIONS)


def test_no_test_module_imports_another():
    # What tests share lives in tests/support or conftest.py: a test module importing another's
    # fixtures or helpers ties the two together and hides what each needs.
    modules = _modules("tests")
    for module, path in modules.items():
        imported = {name for name in _imported(module, path, set(modules))
                    if name.startswith("tests.") and name.rpartition(".")[2].startswith("test_")}
        assert imported == set(), f"{module} imports {sorted(imported)}"
