"""The package's shape, checked from its AST: the training loop knows neither PRMs nor the demo, only one
function reads --objective, and the demo task is imported only where it is a built-in default."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "rewardlab"
DEMO_DEFAULTS = {"training/data.py", "training/ensemble.py", "bon/best_of_n.py"}
"""Where the demo task is the built-in default (no --data; --policy/--prompts/--gold demo)."""


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_the_loop_knows_only_the_objective_protocol():
    for name in ("loop.py", "objectives.py"):
        imported = _imports(ROOT / "training" / name)
        assert not {m for m in imported if m.startswith(("rewardlab.prm", "rewardlab.demo"))}, name
    assert "objective ==" not in (ROOT / "training" / "loop.py").read_text()


def test_only_make_objective_reads_the_objective_flag():
    readers = []
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                for inner in ast.walk(node):
                    if (
                        isinstance(inner, ast.Compare)
                        and isinstance(inner.left, ast.Attribute)
                        and inner.left.attr == "objective"
                    ):
                        readers.append(f"{path.relative_to(ROOT)}:{node.name}")
    # config.py checks flag combinations when the config is built (issue 16: fail before any work);
    # that validates --objective, it does not dispatch on it
    dispatch = {r for r in readers if not r.startswith("config.py:")}
    assert dispatch == {"training/run.py:make_objective"}, readers


def test_demo_is_imported_only_by_demo_commands_and_the_defaults():
    users = {
        str(p.relative_to(ROOT))
        for p in ROOT.rglob("*.py")
        if any(m.startswith("rewardlab.demo") for m in _imports(p))
    }
    outside = {u for u in users if not u.startswith(("demo/", "commands/"))}
    assert outside <= DEMO_DEFAULTS, outside - DEMO_DEFAULTS
