"""The layout rules of issue 9 and STYLE.md, read from the source tree: module names that do not
shadow the standard library, one-way dependencies, every SQL statement in engine/storage, pages
that reach the study side through its facade, no import circle between the babysit CLI modules,
modules of a readable size, and the README's layout paragraph matching the packages."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENGINE, APP = REPO / "engine", REPO / "app"
MAX_LINES = 480  # STYLE.md: "a module past ~400 lines is asking to be split"


def sources(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top, inside a function or by a literal name through
    ``importlib.import_module`` (``from a import b`` counts ``a`` and ``a.b``: b may be a
    submodule)."""
    found = set()
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" \
        else module_name(path)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module" \
                and node.args and isinstance(node.args[0], ast.Constant):
            found.add(str(node.args[0].value))  # importlib.import_module("engine.x")
    return found


def test_no_engine_module_shadows_the_standard_library():
    """``engine/inspect.py`` shadowed ``inspect``; it is ``engine/introspect.py`` now."""
    clashes = [p.relative_to(REPO) for p in [*sources(ENGINE), *ENGINE.rglob("*")]
               if (p.stem if p.suffix == ".py" else p.name) in sys.stdlib_module_names]
    assert clashes == []
    assert not (ENGINE / "inspect.py").exists() and (ENGINE / "introspect.py").exists()


def test_the_engine_never_imports_streamlit_or_plotly():
    bad = {module_name(p): sorted(m for m in imports(p) if m.split(".")[0] in
                                  ("streamlit", "plotly"))
           for p in sources(ENGINE)}
    assert {k: v for k, v in bad.items() if v} == {}


SQL = re.compile(r"^\s*(SELECT\s|INSERT\s+(OR\s+\w+\s+)?INTO\s|UPDATE\s+\w+\s+SET\s|"
                 r"DELETE\s+FROM\s|CREATE\s+(TABLE|INDEX)\s|DROP\s|ALTER\s+TABLE\s|PRAGMA\s|BEGIN\b|COMMIT\b|"
                 r"ROLLBACK\b)")  # SQL here is written in capitals


def sql_in(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("execute", "executemany", "executescript"):
            out.append(f"line {node.lineno}: .{node.func.attr}(")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                SQL.match(node.value):
            out.append(f"line {node.lineno}: {node.value.strip()[:40]!r}")
    return out


def test_all_sql_lives_in_engine_storage():
    found = {str(p.relative_to(REPO)): sql_in(p) for p in sources(ENGINE, APP)
             if not p.is_relative_to(ENGINE / "storage")}
    assert {k: v for k, v in found.items() if v} == {}
    assert sql_in(ENGINE / "storage" / "trials.py")  # the check does see SQL where it is


def test_pages_reach_the_study_side_only_through_its_facade():
    """``from engine import study as studies`` and nothing else of engine.study (CONTRACTS.md,
    "Studies facade"); nor the study tables' storage module."""
    bad = {}
    for path in sources(APP):
        wrong = sorted(m for m in imports(path)
                       if m.startswith("engine.study.") or m == "engine.storage.studies")
        if wrong:
            bad[str(path.relative_to(REPO))] = wrong
    assert bad == {}


def test_no_import_circle_runs_through_the_babysit_cli_modules():
    graph = {module_name(p): {m for m in imports(p) if m.startswith("engine.")}
             for p in sources(ENGINE)}
    graph = {k: {m for m in v if m in graph and m != k} for k, v in graph.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            for nxt in graph[node] - seen:
                if nxt == goal:
                    return True
                seen.add(nxt)
                todo.append(nxt)
        return False

    cli = sorted(m for m in graph if m.startswith("engine.babysit.cli"))
    assert cli == ["engine.babysit.cli", "engine.babysit.cli_commands"]
    assert [m for m in cli if reaches(m, m)] == []


@pytest.mark.parametrize("root", [ENGINE, APP], ids=["engine", "app"])
def test_modules_stay_readable_in_size(root):
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in sources(root)}
    assert {k: n for k, n in sizes.items() if n > MAX_LINES} == {}, "split along a real seam"
    assert sum(n > 300 for n in sizes.values()) <= len(sizes) // 5  # "mostly under 300"


def test_the_readme_layout_paragraph_matches_the_tree():
    text = (REPO / "README.md").read_text()
    paragraph = text[text.index("**Layout.**"):].split("\n\n")[0]
    named = set(re.findall(r"`((?:engine|app|docs)/[\w./]*)`", paragraph))
    for name in named:
        assert (REPO / name.rstrip("/")).exists(), f"the README names {name}, which is not there"
    packages = {f"engine/{p.parent.name}" for p in ENGINE.glob("*/__init__.py")}
    assert packages - {n.rstrip("/") for n in named} == set(), "a package the README omits"
    modules = {f"engine/{p.name}" for p in ENGINE.glob("*.py")
               if p.stem not in ("__init__", "__main__", "lazy")}  # lazy: plumbing
    assert modules - named == set(), "a top-level engine module the README omits"


def test_the_study_runner_never_branches_on_the_schedulers_kind():
    """One scheduler contract: the runner reads decisions (continue / pause / prune / complete)
    and ``on_pause``, never which scheduler it has (a PBT round boundary is a pause)."""
    from engine.search import SCHEDULERS

    for name in ("runner.py", "tell.py", "population.py", "steer.py", "slots.py", "trials.py"):
        tree = ast.parse((ENGINE / "study" / name).read_text())
        kinds = [n.value for n in ast.walk(tree)
                 if isinstance(n, ast.Constant) and n.value in SCHEDULERS]
        reads = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                 and n.attr == "kind" and "scheduler" in ast.unparse(n.value)]
        assert (kinds, reads) == ([], []), name


def test_the_study_and_run_packages_hold_what_issue_9_gave_them():
    """The study side (facade, planning, runner, population, export, its CLI) and the process
    machinery both runners share (host, launch, execution, work unit, worker preload)."""
    study = ["facade", "planning", "runner", "tell", "population", "export", "cli"]
    run = ["host", "launch", "execution", "work", "worker_preload"]
    missing = [f"engine/{package}/{name}.py" for package, names in (("study", study),
                                                                    ("run", run))
               for name in names if not (ENGINE / package / f"{name}.py").exists()]
    assert missing == []
