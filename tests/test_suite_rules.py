"""Rules the test suite keeps, so that it passes on a busy machine as on a quiet one.

- A test asserts behaviour (an event, a count, a state, an order), never how long
  something took: test modules do not read the clock or sleep. How fast something is
  belongs to ``tests/bench/``, reported as a figure. (tests/helpers.py's ``wait_until`` reads
  the clock for its deadline; fixtures' job functions may sleep: they play a slow job.)
- A deadline only stops a hung test: every deadline of the calls in :data:`WAITS`
  written as a number is at least :data:`SHORTEST_DEADLINE` seconds, unless a comment on
  the call says ``# not a deadline: WHY`` (a test of the timeout itself, a bounded
  clean-up that goes on either way).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
#: modules that hold tests and the fixtures they use
MODULES = sorted([*TESTS.glob("test_*.py"), TESTS / "conftest.py"])
#: the clock readings and pauses a test must not make (module, function)
CLOCK = {("time", "time"), ("time", "monotonic"), ("time", "perf_counter"),
         ("time", "time_ns"), ("time", "monotonic_ns"), ("time", "perf_counter_ns"),
         ("time", "sleep"), ("datetime", "now"), ("datetime", "utcnow")}
#: the calls whose ``timeout=`` is a deadline (subprocess's communicate and wait among them)
WAITS = {"wait_until", "wait", "wait_for", "communicate", "join", "result", "get"}
SHORTEST_DEADLINE = 60


def _dotted(node: ast.AST) -> tuple[str, ...]:
    """``time.monotonic`` -> ("time", "monotonic"); ``a.b.c`` -> ("a", "b", "c")."""
    if isinstance(node, ast.Attribute):
        return (*_dotted(node.value), node.attr)
    if isinstance(node, ast.Name):
        return (node.id,)
    return ()


def _clock_calls(tree: ast.AST) -> list[tuple[int, str]]:
    # `from time import monotonic` would hide a call from the check below: refused too
    found = [(node.lineno, f"from time import {', '.join(a.name for a in node.names)}")
             for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) and node.module == "time"]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _dotted(node.func)[-2:] in CLOCK:
            found.append((node.lineno, ".".join(_dotted(node.func)) + "()"))
    return found


def _short_deadlines(tree: ast.AST, source: str) -> list[tuple[int, str]]:
    lines = source.splitlines()
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _dotted(node.func)[-1:]
                and _dotted(node.func)[-1] in WAITS):
            continue
        if any("# not a deadline: " in line for line in lines[node.lineno - 1:node.end_lineno]):
            continue
        for keyword in node.keywords:
            if (keyword.arg == "timeout" and isinstance(keyword.value, ast.Constant)
                    and isinstance(keyword.value.value, (int, float))
                    and keyword.value.value < SHORTEST_DEADLINE):
                found.append((node.lineno, f"{_dotted(node.func)[-1]}(timeout="
                                           f"{keyword.value.value})"))
    return found


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_no_test_reads_the_clock_or_sleeps(path):
    found = _clock_calls(ast.parse(path.read_text(), str(path)))
    assert not found, (f"{path.name} reads the clock or sleeps (assert the event, count, "
                       f"state or order instead; measure time in tests/bench/): {found}")


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_deadlines_only_stop_a_hung_test(path):
    source = path.read_text()
    found = _short_deadlines(ast.parse(source, str(path)), source)
    assert not found, (f"{path.name} has deadlines under {SHORTEST_DEADLINE}s, which a "
                       f"busy machine can miss: {found}")


def test_the_checks_find_what_they_look_for():
    source = ("import time\nfrom time import monotonic\nstarted = time.monotonic()\n"
              "assert time.monotonic() - started < 5\ntime.sleep(0.5)\n"
              "wait_until(lambda: True, timeout=5)\njob.wait(timeout=30)\n"
              "wait_until(lambda: True, timeout=120)\n"
              "job.wait(timeout=0.2)  # not a deadline: the timeout is what is tested\n"
              "proc.communicate(timeout=30)\n")
    sample = ast.parse(source)
    assert sorted(line for line, _ in _clock_calls(sample)) == [2, 3, 4, 5]
    assert [line for line, _ in _short_deadlines(sample, source)] == [6, 7, 10]
