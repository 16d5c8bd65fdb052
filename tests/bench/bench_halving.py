"""Successive halving against an exhaustive grid search of the same space.

The data is scikit-learn's digits (1,797 rows, 64 pixel features, 10 classes; written
once as Parquet by ``shipyard.ml.datasets.write_datasets``), or with ``--data
synthetic`` a ``make_classification`` set of ``--rows`` rows x 40 features, 4 classes.
The pipeline is shipyard's default preprocessing (median imputation, standard scaling)
then an RBF ``SVC``; the space is ``C`` (6 values) x ``gamma`` (8 values) = 48
candidates, ``cv=5``, accuracy, on the training rows of the job's split
(``test_size: 0.2, random_state: 42, stratify: true``).

Variants, interleaved (each round runs each once, the order rotated per round), each
in its own subprocess; wall time is the whole process:

- shipyard grid: ``python -m shipyard run`` on an ``sklearn`` job with
  ``search.method: grid`` (dask-ml ``GridSearchCV`` on a 2-worker LocalCluster);
- shipyard halving: the same job with ``search.method: halving`` (scikit-learn's
  ``HalvingGridSearchCV``, ``factor: 3``, on the joblib Dask backend), which then
  cross-validates its pick on all training rows (the job's ``cv_mean``);
- GridSearchCV(n_jobs=2): a plain script, the same pipeline (``build_pipeline``), split
  and grid, ``refit=True``, then the test score;
- HalvingGridSearchCV(n_jobs=2): a plain script doing what the job does: the halving
  search (``factor=3``, ``random_state=0``, ``refit=False``), ``cross_val_score`` of its
  pick on all training rows (``n_jobs=2``), refit of the pick, test score.

Every variant's job also refits its best candidate and scores the test rows; the
shipyard variants also save the model. "search s" is the search alone (the job's
``search.seconds``; the plain scripts' ``fit()`` less ``refit_time_``).

Quality: the grid's best mean CV accuracy (all training rows, 5 folds) is the score to
reach. Halving's own best score is measured on the last round's rows only, so its pick
is judged by its full-data CV mean - the same folds the grid scored it on, hence its
rank among the grid's 48 candidates. "Time to reach the grid's best score" is a
variant's wall time if its pick scores the grid's best (ties count), otherwise it did
not reach it and the gap is printed.

Consistency (exit 1 if broken): shipyard and plain scikit-learn agree on every
candidate's mean CV score (to 1e-12) and the best parameters, for grid and for halving.

Run::

    .venv/bin/python tests/bench/bench_halving.py [--repeats 3] [--data digits|synthetic]
        [--rows 2500] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from timing import (SHIPYARD, median, params_key, run_json,  # noqa: E402
                    search_differences)

PLAIN_SEARCH = Path(__file__).parent / "plain_search.py"

GRID = {"C": [0.1, 1, 10, 100, 1000, 10000],
        "gamma": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1]}



def write_data(work: Path, data: str, rows: int) -> tuple[Path, str]:
    """The training file and its target column."""
    if data == "digits":
        from shipyard.ml.datasets import write_datasets

        write_datasets(directory=str(work / "data"), names=["digits"])
        return work / "data" / "digits.parquet", "digit"
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=rows, n_features=40, n_informative=20,
                               n_redundant=10, n_classes=4, class_sep=1.0, flip_y=0.03,
                               random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i:02d}" for i in range(X.shape[1])])
    frame["label"] = y
    path = work / "synthetic.parquet"
    frame.to_parquet(path, index=False)
    return path, "label"


def job_spec(path: Path, target: str, method: str) -> dict:
    return {
        "apiVersion": "shipyard/v1", "kind": "Job",
        "metadata": {"name": f"bench-{method}"},
        "spec": {
            "resources": {"workers": 2, "threads_per_worker": 1},
            "sklearn": {
                "input": {"path": str(path)},
                "target": target,
                "task": "classification",
                "split": {"test_size": 0.2, "random_state": 42, "stratify": True},
                "models": [{"name": "svc", "estimator": "sklearn.svm.SVC", "grid": GRID}],
                "search": {"method": method, "cv": 5, "scoring": "accuracy", "factor": 3,
                           "random_state": 0},
            },
        },
    }


def agree(label: str, job: dict, plain: dict) -> list[str]:
    """Differences between a shipyard run and the plain one (empty: identical)."""
    def side(run: dict) -> dict:
        return {"best_params": run["best_params"], "results": run["results"],
                "cv_mean": run["full_cv_mean"]}  # the pick's CV mean on the full data

    return [f"{label}: {problem}" for problem in search_differences(
        side(job), side(plain), ("shipyard", "plain"), ordered=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", choices=["digits", "synthetic"], default="digits")
    parser.add_argument("--rows", type=int, default=2500, help="synthetic rows")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-halving-"))
    data, target = write_data(work, args.data, args.rows)
    specs = {}
    for method in ("grid", "halving"):
        specs[method] = work / f"{method}.yaml"
        specs[method].write_text(yaml.safe_dump(job_spec(data, target, method),
                                                sort_keys=False))
    env = dict(os.environ, SHIPYARD_HOME=str(work / "home"))
    n_candidates = len(GRID["C"]) * len(GRID["gamma"])
    print(f"data: {args.data} ({data.name}); scale + SVC(rbf), {n_candidates} candidates "
          f"(C x gamma), cv=5, accuracy; halving factor 3; work dir {work}", flush=True)

    def shipyard(method: str):
        def measure() -> tuple[float, dict]:
            wall, status = run_json([*SHIPYARD, "run", str(specs[method]), "--json"],
                                    cwd=work, env=env)
            if status.get("state") != "SUCCEEDED":
                raise RuntimeError(f"{method} job ended {status.get('state')}: "
                                   f"{status.get('reason')}")
            model = status["result"]["models"]["svc"]
            return wall, {
                "search_seconds": model["search"]["seconds"],
                "best_params": model["best_params"],
                "full_cv_mean": model["cv_mean"],
                # halving's own best: the pick's score in its last round (on fewer rows)
                "search_best_score": [r["mean"] for r in model["search"]["results"]
                                      if r["params"] == model["best_params"]][-1],
                "test_score": model["test_metrics"]["accuracy"],
                "results": model["search"]["results"],
                "iterations": model["search"].get("iterations"),
                "candidates_reported": model["search"]["candidates"],
            }
        return measure

    def plain(method: str):
        def measure() -> tuple[float, dict]:
            return run_json([sys.executable, str(PLAIN_SEARCH),
                             str(specs[method]), "2"], cwd=work)
        return measure

    variants = {
        "GridSearchCV(n_jobs=2)": plain("grid"),
        "HalvingGridSearchCV(n_jobs=2)": plain("halving"),
        "shipyard grid": shipyard("grid"),
        "shipyard halving": shipyard("halving"),
    }
    names = list(variants)
    walls: dict[str, list[float]] = {name: [] for name in names}
    searches: dict[str, list[float]] = {name: [] for name in names}
    last: dict[str, dict] = {}
    failures: list[str] = []
    for round_ in range(args.repeats):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            wall, out = variants[name]()
            walls[name].append(wall)
            searches[name].append(out["search_seconds"])
            last[name] = out
            print(f"  round {round_ + 1}: {name:<30} wall {wall:7.2f} s  search "
                  f"{out['search_seconds']:7.2f} s", flush=True)
        failures += [f"round {round_ + 1}: {p}" for p in
                     agree("grid", last["shipyard grid"], last["GridSearchCV(n_jobs=2)"])
                     + agree("halving", last["shipyard halving"],
                             last["HalvingGridSearchCV(n_jobs=2)"])]

    print("load average (1, 5, 15 min) at the end: %.2f %.2f %.2f (other work on the "
          "machine skews the timings)" % os.getloadavg())
    # the score to reach: the exhaustive grid's best full-data CV mean
    grid_means = {params_key(r["params"]): r["mean"] for r in last["GridSearchCV(n_jobs=2)"]["results"]}
    target_score = max(grid_means.values())

    def quality(out: dict) -> tuple[float, int]:
        pick = out["full_cv_mean"]
        return pick, 1 + sum(m > pick + 1e-12 for m in grid_means.values())

    base = "GridSearchCV(n_jobs=2)"
    base_wall, base_search = median(walls[base]), median(searches[base])
    width = max(len(n) for n in names)
    print(f"\nwall and search time, {args.repeats} interleaved runs each, medians; "
          f"ratios against {base}")
    print(f"{'variant':<{width}}  {'wall s':>7}  {'ratio':>6}  {'search s':>8}  {'ratio':>6}"
          f"  {'vs own grid':>11}")
    for name in names:
        wall, search = median(walls[name]), median(searches[name])
        own_grid = "shipyard grid" if name.startswith("shipyard") else base
        own = median(walls[own_grid])
        print(f"{name:<{width}}  {wall:>7.2f}  {wall / base_wall:>5.2f}x  {search:>8.2f}  "
              f"{search / base_search:>5.2f}x  {wall / own:>10.2f}x")

    print(f"\nquality (score to reach: the grid's best mean CV accuracy {target_score:.6f})")
    print(f"{'variant':<{width}}  {'best params':<28}  {'search best':>11}  "
          f"{'full-data CV':>12}  {'gap':>9}  {'rank':>7}  {'test acc':>8}  "
          f"time to reach grid's best")
    for name in names:
        out = last[name]
        pick, rank = quality(out)
        search_best = out.get("search_best_score", pick)
        params = ", ".join(f"{k}={v:g}" for k, v in sorted(out["best_params"].items()))
        gap = pick - target_score
        reached = gap >= -1e-12
        when = (f"{median(walls[name]):.2f} s wall ({median(walls[name]) / base_wall:.2f}x "
                f"the plain grid)" if reached else "not reached")
        print(f"{name:<{width}}  {params:<28}  {search_best:>11.6f}  {pick:>12.6f}  "
              f"{gap:>+9.6f}  {rank:>3}/{len(grid_means):<3}  {out['test_score']:>8.6f}  "
              f"{when}")

    for name in ("HalvingGridSearchCV(n_jobs=2)", "shipyard halving"):
        its = last[name].get("iterations") or []
        rounds = "; ".join(f"{it['candidates']} candidates on {it['rows']} rows" for it in its)
        print(f"{name} iterations: {rounds}")
    print(f"shipyard halving reports search.candidates = "
          f"{last['shipyard halving']['candidates_reported']} (grid: "
          f"{last['shipyard grid']['candidates_reported']})")
    print("shipyard and plain scikit-learn agree (every candidate's mean to 1e-12, best "
          "params, pick's full-data CV): " + ("yes" if not failures else "NO"))
    for problem in failures:
        print(f"  {problem}")

    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
