"""The shape of the code: import contracts, no import cycles, small modules and functions,
imports at the top of modules (see docs/explanation/architecture.md).

``lint-imports`` (the contracts in pyproject.toml) also runs in .ci/run before pytest; this
test runs it too, so that the README's test command checks it.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ann", "sweeps")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

#: Modules still over MAX_MODULE_LINES, with the size they may not grow beyond. Each is
#: being split (issue 15); an entry goes when its module is split, and none is added.
KNOWN_LONG_MODULES: dict[str, int] = {
}
#: Functions still over MAX_FUNCTION_LINES ("module:qualified.name": lines), likewise.
KNOWN_LONG_FUNCTIONS: dict[str, int] = {
}
#: Modules whose imports inside functions are not yet commented (module: how many), likewise.
KNOWN_LAZY_IMPORTS: dict[str, int] = {
}

#: A function-level import is allowed when a comment on its line, or on the comment lines
#: right above its group of imports, says why it is lazy (start-up time, an optional package).
LAZY_MARK = re.compile(r"#.*\blazy\b", re.IGNORECASE)


def _sources():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "conf" not in path.relative_to(ROOT).parts:
                yield path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")


def test_the_import_contracts_hold():
    # The contracts of pyproject.toml: ann imports nothing of sweeps, MLflow, Optuna, Hydra;
    # the layers of ann and of sweeps (a lower layer never imports a higher one); no cycles.
    result = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                             "sys.exit(lint_imports_command())", "--no-cache"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root) & modules)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child) & modules))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_imports_itself_round_a_cycle(package):
    # Module by module (import-linter's acyclic_siblings looks at packages): no A -> B -> A.
    # An import under `if TYPE_CHECKING:` names a type only and is left out.
    graph = grimp.build_graph(package, exclude_type_checking_imports=True)
    assert _cycles(graph, set(graph.modules)) == []


def test_the_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
    # The test above can fail: a two-module cycle in a throwaway package is found.
    pkg = tmp_path / "cyclic_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from cyclic_pkg import b\n")
    (pkg / "b.py").write_text("from cyclic_pkg import a\n")
    (pkg / "c.py").write_text("from cyclic_pkg import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclic_pkg")
    assert _cycles(graph, set(graph.modules)) == [["cyclic_pkg.a", "cyclic_pkg.b"]]


def test_no_module_is_over_400_lines():
    long = {name: text.count("\n") for name, text in _sources() if text.count("\n") > MAX_MODULE_LINES}
    grown = {name: n for name, n in long.items() if n > KNOWN_LONG_MODULES.get(name, MAX_MODULE_LINES)}
    assert grown == {}, f"modules over {MAX_MODULE_LINES} lines: split them by job"
    assert set(KNOWN_LONG_MODULES) <= set(long), "a known long module was split: remove it from the list"


def _functions(tree: ast.AST, prefix: str = ""):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = f"{prefix}{node.name}"
            if not isinstance(node, ast.ClassDef):
                yield name, node
            yield from _functions(node, name + ".")


def _function_lengths() -> dict[str, int]:
    lengths = {}
    for module, text in _sources():
        for name, node in _functions(ast.parse(text)):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lengths[f"{module}:{name}"] = node.end_lineno - start + 1
    return lengths


def test_no_function_is_over_60_lines():
    lengths = _function_lengths()
    long = {name: n for name, n in lengths.items() if n > MAX_FUNCTION_LINES}
    grown = {name: n for name, n in long.items() if n > KNOWN_LONG_FUNCTIONS.get(name, MAX_FUNCTION_LINES)}
    assert grown == {}, f"functions over {MAX_FUNCTION_LINES} lines: split them by job"
    assert set(KNOWN_LONG_FUNCTIONS) <= set(long), "a known long function was split: remove it from the list"


def _unmarked_lazy_imports(text: str) -> list[int]:
    """Line numbers of imports inside functions without a comment saying why they are lazy."""
    lines = text.splitlines()
    unmarked = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            if not isinstance(inner, (ast.Import, ast.ImportFrom)):
                continue
            if LAZY_MARK.search(lines[inner.lineno - 1]):
                continue
            above = inner.lineno - 2  # walk up over the rest of the import group to its comment
            while above >= 0 and (lines[above].strip().startswith(("import ", "from ")) or not lines[above].strip()):
                above -= 1
            comments = []
            while above >= 0 and lines[above].strip().startswith("#"):
                comments.append(lines[above])
                above -= 1
            if not any(LAZY_MARK.search(c) for c in comments):
                unmarked.append(inner.lineno)
    return sorted(set(unmarked))


def test_imports_sit_at_the_top_unless_a_comment_says_why_they_are_lazy():
    found = {module: _unmarked_lazy_imports(text) for module, text in _sources()}
    found = {module: lines for module, lines in found.items() if lines}
    grown = {module: lines for module, lines in found.items() if len(lines) > KNOWN_LAZY_IMPORTS.get(module, 0)}
    assert grown == {}, "imports inside functions: move them to the top, or say why they are lazy (# ... lazy: ...)"
    assert set(KNOWN_LAZY_IMPORTS) <= set(found), "a module's lazy imports are all commented: remove it from the list"


def test_the_lazy_import_check_reads_comments():
    text = ("def f():\n    import json\n\n\ndef g():\n    # Deliberately lazy: start-up time.\n    import json\n"
            "    from os import path\n\n\ndef h():\n    import json  # lazy: start-up time\n")
    assert _unmarked_lazy_imports(text) == [2]
