"""Plain scikit-learn for the search benchmarks: GridSearchCV or HalvingGridSearchCV
(the spec's search.method) on the same pipeline, split and grid as the sklearn job in
SPEC, with n_jobs=N_JOBS; prints a JSON summary (search seconds, best params, scores,
every candidate's mean). Run: python plain_search.py SPEC N_JOBS"""

import json
import sys
import time

import numpy as np
import pandas as pd
import yaml
from sklearn.base import clone
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import (GridSearchCV, HalvingGridSearchCV,
                                     cross_val_score, train_test_split)

from shipyard.ml.data import column_kinds
from shipyard.ml.pipeline import build_pipeline
from shipyard.ml.spec import SklearnWorkload

if __name__ == "__main__":
    spec_path, n_jobs = sys.argv[1], int(sys.argv[2])
    with open(spec_path) as fh:
        block = SklearnWorkload.model_validate(yaml.safe_load(fh)["spec"]["sklearn"])
    frame = pd.read_parquet(block.input.path)
    features = [c for c in frame.columns if c != block.target]
    X, y = frame[features], frame[block.target]
    split = block.split
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=split.test_size, random_state=split.random_state,
        shuffle=split.shuffle,
        # the job's rule for classification: stratified unless the spec says false
        stratify=None if split.stratify is False else y)
    numeric, categorical = column_kinds(X)
    model = block.models[0]
    pipeline = build_pipeline(model, block.preprocess, numeric, categorical)
    grid = {"model__" + key: values for key, values in model.grid.items()}
    s = block.search
    strip = lambda params: {k.removeprefix("model__"): v for k, v in params.items()}
    out = {}
    if s.method == "grid":
        search = GridSearchCV(pipeline, grid, cv=s.cv, scoring=s.scoring, n_jobs=n_jobs)
        started = time.perf_counter()
        search.fit(X_train, y_train)
        out["search_seconds"] = time.perf_counter() - started - search.refit_time_
        best = search.best_estimator_
        out["full_cv_mean"] = float(search.best_score_)
    else:
        search = HalvingGridSearchCV(pipeline, grid, factor=s.factor, cv=s.cv,
                                     scoring=s.scoring, random_state=s.random_state,
                                     n_jobs=n_jobs, refit=False)
        started = time.perf_counter()
        search.fit(X_train, y_train)
        out["search_seconds"] = time.perf_counter() - started
        out["iterations"] = [{"candidates": int(c), "rows": int(r)} for c, r in
                             zip(search.n_candidates_, search.n_resources_)]
        best = clone(pipeline).set_params(**search.best_params_)
        started = time.perf_counter()
        folds = cross_val_score(best, X_train, y_train, cv=s.cv, scoring=s.scoring,
                                n_jobs=n_jobs)
        out["full_cv_seconds"] = time.perf_counter() - started
        out["full_cv_mean"] = float(np.mean(folds))
        best.fit(X_train, y_train)
    out.update({
        "best_params": strip(search.best_params_),
        "search_best_score": float(search.best_score_),
        "test_score": float(best.score(X_test, y_test)),
        "results": [{"params": strip(p), "mean": float(m)} for p, m in
                    zip(search.cv_results_["params"],
                        search.cv_results_["mean_test_score"])],
    })
    print(json.dumps(out))
