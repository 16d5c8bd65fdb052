"""A pipeline grid search whose preprocessing is expensive: shipyard vs scikit-learn.

The data is a synthetic ``make_classification`` set (default 5,000 rows x 1,000
features, 5 classes) written once as Parquet. The pipeline is shipyard's own
(``shipyard.ml.pipeline.build_pipeline``): median imputation and standard scaling of
every column, PCA to 30 components, then ``LogisticRegression`` - the preprocessing
(imputer, scaler and PCA over 1,000 columns) costs far more than the model. The grid
is ``C`` (12 values) x ``class_weight`` (2) = 24 candidates, ``cv=5``, accuracy.

Variants, interleaved (each round runs each once, the order rotated per round),
each in its own subprocess:

- shipyard run: the real CLI, ``python -m shipyard run SPEC --json``, on an ``sklearn``
  job (``resources: {workers: 2, threads_per_worker: 1}``), with its own
  ``SHIPYARD_HOME``. Wall time covers submitting, the supervisor and runner, the
  LocalCluster start, reading the input through the cluster, the dask-ml search (which
  fits the shared preprocessing once per fold, not once per candidate), the refit of
  the best candidate, its test metrics and saving the model. The search seconds are
  the job's own ``result.models.<name>.search.seconds``;
- GridSearchCV(n_jobs=2): a plain script that reads the same Parquet file with pandas,
  splits it with ``train_test_split`` exactly as the job does (the spec's
  ``test_size``, ``random_state`` and ``stratify``), builds the same pipeline with
  ``build_pipeline`` and ``column_kinds``, runs ``sklearn.model_selection.GridSearchCV``
  (``n_jobs=2``, loky, default ``refit=True``) on the training rows and scores the
  test rows. Wall time is the whole process; search seconds are ``fit()`` less its
  ``refit_time_``.

Results: after every run, the best parameters and every candidate's mean CV score are
compared between the two (means to 1e-12). Any difference is printed and the benchmark
exits 1.

Target: shipyard at least 1.3x faster than GridSearchCV(n_jobs=2), end to end. The job
also pays ~2 s of startup (supervisor, LocalCluster), so the search-only ratio is
printed too.

Run::

    .venv/bin/python tests/bench/bench_search.py [--repeats 3] [--rows 5000]
        [--features 1000] [--pca 30] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from timing import (SHIPYARD, median, params_key, print_table, run_json,  # noqa: E402
                    search_differences)

PLAIN_SEARCH = Path(__file__).parent / "plain_search.py"

TARGET = "label"
C_VALUES = [float(c) for c in np.logspace(-4, 3, 15)]



def make_data(path: Path, rows: int, features: int) -> None:
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=rows, n_features=features, n_informative=30,
                               n_redundant=200, n_classes=5, class_sep=1.5,
                               flip_y=0.05, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i:04d}" for i in range(features)])
    frame[TARGET] = y
    frame.to_parquet(path, index=False)


def job_spec(data: Path, pca: int) -> dict:
    return {
        "apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": "bench-search"},
        "spec": {
            "resources": {"workers": 2, "threads_per_worker": 1},
            "sklearn": {
                "input": {"path": str(data)},
                "target": TARGET,
                "task": "classification",
                "split": {"test_size": 0.2, "random_state": 42, "stratify": True},
                "preprocess": {"pca": pca},
                "models": [{
                    "name": "logreg",
                    "estimator": "sklearn.linear_model.LogisticRegression",
                    "params": {"max_iter": 1000},
                    "grid": {"C": C_VALUES, "class_weight": [None, "balanced"]},
                }],
                "search": {"method": "grid", "cv": 5, "scoring": "accuracy"},
            },
        },
    }


def compare(job: dict, plain: dict) -> list[str]:
    """Differences between the job's search and the plain one (empty: identical)."""
    return search_differences(
        {"best_params": job["best_params"], "results": job["search"]["results"],
         "cv_mean": job["cv_mean"]},
        {"best_params": plain["best_params"], "results": plain["results"],
         "cv_mean": plain["full_cv_mean"]},
        ("shipyard", "GridSearchCV"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--features", type=int, default=600)
    parser.add_argument("--pca", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-search-"))
    data = work / "train.parquet"
    make_data(data, args.rows, args.features)
    spec_path = work / "search.yaml"
    spec_path.write_text(yaml.safe_dump(job_spec(data, args.pca), sort_keys=False))
    env = dict(os.environ, SHIPYARD_HOME=str(work / "home"))
    candidates = len(C_VALUES) * 2
    print(f"data: {args.rows} rows x {args.features} features, 5 classes; preprocess "
          f"impute+scale+PCA({args.pca}), LogisticRegression, {candidates} candidates, "
          f"cv=5; work dir {work}", flush=True)

    def shipyard() -> tuple[float, float, dict]:
        wall, status = run_json([*SHIPYARD, "run", str(spec_path), "--json"], cwd=work,
                                env=env)
        if status.get("state") != "SUCCEEDED":
            raise RuntimeError(f"job ended {status.get('state')}: {status.get('reason')}")
        model = status["result"]["models"]["logreg"]
        return wall, model["search"]["seconds"], model

    def plain() -> tuple[float, float, dict]:
        wall, out = run_json([sys.executable, str(PLAIN_SEARCH), str(spec_path),
                              "2"], cwd=work)
        return wall, out["search_seconds"], out

    variants = {"shipyard run": shipyard, "GridSearchCV(n_jobs=2)": plain}
    walls: dict[str, list[float]] = {name: [] for name in variants}
    searches: dict[str, list[float]] = {name: [] for name in variants}
    failures: list[str] = []
    last: dict[str, dict] = {}
    names = list(variants)
    for round_ in range(args.repeats):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            wall, search_s, out = variants[name]()
            walls[name].append(wall)
            searches[name].append(search_s)
            last[name] = out
            print(f"  round {round_ + 1}: {name:<24} wall {wall:7.2f} s  search "
                  f"{search_s:7.2f} s", flush=True)
        problems = compare(last["shipyard run"], last["GridSearchCV(n_jobs=2)"])
        failures += [f"round {round_ + 1}: {p}" for p in problems]

    print("load average (1, 5, 15 min) at the end: %.2f %.2f %.2f (other work on the "
          "machine skews the timings)" % os.getloadavg())
    job, ref = last["shipyard run"], last["GridSearchCV(n_jobs=2)"]
    ours = {params_key(r["params"]): r["mean"] for r in job["search"]["results"]}
    worst = max(abs(ours[params_key(r["params"])] - r["mean"]) if ours.get(params_key(r["params"]))
                is not None else float("inf") for r in ref["results"])
    print(f"\nbest params: shipyard {job['best_params']}, GridSearchCV {ref['best_params']}")
    print(f"best CV mean: shipyard {job['cv_mean']:.6f}, GridSearchCV {ref['full_cv_mean']:.6f}; "
          f"{len(ref['results'])} candidates, largest |mean difference| {worst:.3g}")
    print(f"test accuracy of the refit best: shipyard "
          f"{job['test_metrics']['accuracy']:.6f}, GridSearchCV {ref['test_score']:.6f}")
    print("results identical: " + ("yes" if not failures else "NO"))
    for problem in failures:
        print(f"  {problem}")

    base_wall = median(walls["GridSearchCV(n_jobs=2)"])
    job_wall = median(walls["shipyard run"])
    base_search = median(searches["GridSearchCV(n_jobs=2)"])
    job_search = median(searches["shipyard run"])
    verdict = "meets" if base_wall / job_wall >= 1.3 else "MISSES"
    print_table(
        f"end to end (wall s), {args.repeats} interleaved runs each, medians",
        [("GridSearchCV(n_jobs=2)", base_wall, "baseline: whole script"),
         ("shipyard run", job_wall,
          f"speed-up {base_wall / job_wall:.2f}x: {verdict} the >= 1.3x target")],
        baseline="GridSearchCV(n_jobs=2)")
    print_table(
        f"search only (s), {args.repeats} runs each, medians",
        [("GridSearchCV(n_jobs=2)", base_search, "fit() less refit_time_"),
         ("shipyard run", job_search,
          f"result search.seconds; speed-up {base_search / job_search:.2f}x")],
        baseline="GridSearchCV(n_jobs=2)")
    print(f"\nshipyard wall beyond its search: {job_wall - job_search:.2f} s; plain script "
          f"beyond its search: {base_wall - base_search:.2f} s")

    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
