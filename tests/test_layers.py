"""The layers of lib/shipyard hold: the import-linter contracts of pyproject.toml pass, and
no module of shipyard imports itself through others (no import cycle, counting the
imports inside functions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import ROOT

#: The import cycles of lib/shipyard left to break, as sets of modules (none now: the
#: last ones, spec <-> pipelines.spec and jobs.api <-> pipelines, went in issue 18).
KNOWN_CYCLES: list[set[str]] = []


def import_cycles(package: str = "shipyard") -> list[set[str]]:
    """The package's import cycles: its strongly connected groups of modules (every
    import counted, those inside functions too; ``if TYPE_CHECKING`` ones not)."""
    import grimp
    from graphlib import CycleError, TopologicalSorter

    graph = grimp.build_graph(package, exclude_type_checking_imports=True)
    modules = {m for m in graph.modules if m == package or m.startswith(f"{package}.")}
    edges = {m: graph.find_modules_directly_imported_by(m) & modules for m in modules}
    cycles: list[set[str]] = []
    while True:
        try:
            TopologicalSorter(edges).prepare()
            return cycles
        except CycleError as err:
            path = err.args[1]
            # the whole group the found cycle belongs to: what reaches it and it reaches
            group = _reachable(edges, path[0]) & _reaching(edges, path[0])
            cycles.append(group)
            for module in group:  # take the group out, look for the next
                edges.pop(module, None)
            edges = {m: targets - group for m, targets in edges.items()}


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for target in edges.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _reaching(edges: dict[str, set[str]], start: str) -> set[str]:
    reverse: dict[str, set[str]] = {}
    for module, targets in edges.items():
        for target in targets:
            reverse.setdefault(target, set()).add(module)
    return _reachable(reverse, start)


def test_the_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "broken" in proc.stdout and "0 broken" in proc.stdout


def test_no_import_cycle():
    cycles = import_cycles()
    new = [c for c in cycles if c not in KNOWN_CYCLES]
    assert not new, f"new import cycles: {new}"
    gone = [c for c in KNOWN_CYCLES if c not in cycles]
    assert not gone, f"cycles that no longer exist (take them off KNOWN_CYCLES): {gone}"
