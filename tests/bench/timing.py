"""Shared by the benchmarks: repeated timings, medians, and a ratio table.

These machines are noisy: every benchmark interleaves its variants, repeats them, and
reports medians and ratios against the plain alternative measured in the same run.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

SHIPYARD = [sys.executable, "-m", "shipyard"]


def run_timed(command: Sequence[str], **kwargs) -> float:
    """Run a command to completion; return its wall time (it must succeed)."""
    start = time.perf_counter()
    proc = subprocess.run(list(command), capture_output=True, text=True, **kwargs)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return took


def run_json(command: Sequence[str], **kwargs) -> tuple[float, dict]:
    """Run a command that prints JSON on stdout; return its wall time and the JSON."""
    start = time.perf_counter()
    proc = subprocess.run(list(command), capture_output=True, text=True, **kwargs)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}:\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return took, json.loads(proc.stdout)


def params_key(params: dict) -> str:
    """A parameter set as a comparable key."""
    return json.dumps(params, sort_keys=True)


def same_score(a: float | None, b: float | None) -> bool:
    """Whether two CV scores are the same (to 1e-12); a missing score never is."""
    return a is not None and b is not None and abs(a - b) <= 1e-12


def candidate_differences(ours: list[dict], theirs: list[dict], who: tuple[str, str],
                          ordered: bool = False) -> list[str]:
    """How two searches' candidates (``{"params", "mean"}`` each) differ: candidates only
    one side has (or, with ``ordered``, another order), and every mean CV score that is
    not the same, compared pair by pair when ``ordered`` (a halving search lists a
    candidate once per round it ran in). ``who`` names the two sides in the messages.
    Empty: identical."""
    mine, other = who
    keys = [params_key(r["params"]) for r in ours]
    their_keys = [params_key(r["params"]) for r in theirs]
    if set(keys) != set(their_keys):
        return [f"candidates differ: only {mine} {sorted(set(keys) - set(their_keys))}, "
                f"only {other} {sorted(set(their_keys) - set(keys))}"]
    if ordered:
        if keys != their_keys:
            return ["the candidates are in another order"]
        pairs = list(zip(ours, theirs))
    else:
        by_key = {params_key(r["params"]): r for r in theirs}
        pairs = [(r, by_key[key]) for key, r in zip(keys, ours)]
    return [f"{params_key(a['params'])}: mean CV score {mine} {a['mean']!r}, "
            f"{other} {b['mean']!r}" for a, b in pairs if not same_score(a["mean"], b["mean"])]


def search_differences(ours: dict, theirs: dict, who: tuple[str, str],
                       ordered: bool = False) -> list[str]:
    """How two searches differ: best params, candidates and their mean CV scores (see
    :func:`candidate_differences`), and the CV mean of the pick. Each side is
    ``{"best_params", "results", "cv_mean"}``. Empty: identical."""
    mine, other = who
    problems = []
    if ours["best_params"] != theirs["best_params"]:
        problems.append(f"best params differ: {mine} {ours['best_params']}, "
                        f"{other} {theirs['best_params']}")
    problems += candidate_differences(ours["results"], theirs["results"], who, ordered)
    if not same_score(ours["cv_mean"], theirs["cv_mean"]):
        problems.append(f"CV mean of the pick: {mine} {ours['cv_mean']!r}, "
                        f"{other} {theirs['cv_mean']!r}")
    return problems


def interleave(variants: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run each variant once per round, ``repeats`` rounds; return every measurement."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, measure in variants.items():
            samples[name].append(measure())
    return samples


def print_table(title: str, rows: list[tuple[str, float, str]], baseline: str) -> None:
    """Print ``(name, median seconds, note)`` rows with each median's ratio to ``baseline``."""
    base = dict((name, value) for name, value, _ in rows)[baseline]
    width = max(len(name) for name, _, _ in rows)
    print(f"\n{title}")
    print(f"{'variant':<{width}}  {'median s':>9}  {'ratio':>7}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>9.3f}  {value / base:>6.2f}x  {note}")


def median(values: list[float]) -> float:
    return statistics.median(values)
