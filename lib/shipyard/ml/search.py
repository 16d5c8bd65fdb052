"""Hyperparameter search on the Dask cluster, with scikit-learn's numbers.

- ``grid`` and ``random``: dask-ml's ``GridSearchCV``/``RandomizedSearchCV``, which
  build one task graph for all candidates and folds and fit a shared pipeline prefix
  (the preprocessing) once per fold rather than once per candidate.
- ``halving``: scikit-learn's ``HalvingGridSearchCV``/``HalvingRandomSearchCV``, its
  fits spread over the cluster by the joblib Dask backend. (dask-ml's own adaptive
  searches need an asynchronous client and fail on current ``distributed``.)

The CV splits are scikit-learn's defaults for ``cv=k`` (``StratifiedKFold(k)`` for
classifiers, ``KFold(k)`` otherwise, unshuffled), so every fold score equals a plain
scikit-learn run's. dask-ml averages fold scores weighted by the folds' sizes; the mean,
standard deviation and ranking here are scikit-learn's (unweighted) instead, so the best
candidate is the one scikit-learn's ``GridSearchCV`` would pick.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shipyard.ml.estimators import search_space
from shipyard.ml.metrics import plain_value
from shipyard.ml.spec import ModelSpec, SearchSpec

__all__ = ["SearchOutcome", "run_search", "default_scoring", "best_index", "plain_params",
           "cross_validate_best", "dask_joblib_backend", "PREFIX"]

PREFIX = "model__"


def default_scoring(task: str) -> str:
    """The scoring a search uses when the spec names none (scikit-learn's ``score``)."""
    return {"classification": "accuracy", "regression": "r2"}.get(task, "silhouette")


@dataclass
class SearchOutcome:
    """The candidates one model's search tried and how each scored per fold."""

    method: str
    params: list[dict[str, Any]]
    fold_scores: np.ndarray
    best: int
    seconds: float
    #: halving only: candidates and rows per fit in each iteration, and each row's round
    #: (a candidate appears once per round it survived)
    iterations: list[dict[str, int]] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)

    @property
    def candidates(self) -> int:
        """How many distinct parameter sets were tried."""
        return self.iterations[0]["candidates"] if self.iterations else len(self.params)

    @property
    def means(self) -> np.ndarray:
        return np.average(self.fold_scores, axis=1)

    @property
    def stds(self) -> np.ndarray:
        return np.sqrt(np.average((self.fold_scores - self.means[:, None]) ** 2, axis=1))

    @property
    def best_params(self) -> dict[str, Any]:
        return self.params[self.best]


def best_index(fold_scores: np.ndarray) -> int:
    """The candidate scikit-learn's searches pick: the highest mean fold score (the
    first of ties); failed candidates (NaN) rank last.

    Examples
    --------
    >>> best_index(np.array([[0.8, 0.9], [0.9, 0.9], [np.nan, 1.0], [0.9, 0.9]]))
    1
    """
    means = np.average(fold_scores, axis=1)
    if np.isnan(means).all():
        return 0
    return int(np.nanargmax(means))


def _strip(params: dict[str, Any]) -> dict[str, Any]:
    return {key.removeprefix(PREFIX): plain_value(value) for key, value in params.items()
            if key.startswith(PREFIX)}


def plain_params(params: dict[str, Any]) -> dict[str, Any]:
    """A parameter set with NumPy scalars as Python ones."""
    return {key: plain_value(value) for key, value in params.items()}


def _fold_matrix(results: dict[str, Any], rows: np.ndarray | slice, folds: int) -> np.ndarray:
    return np.column_stack([np.asarray(results[f"split{i}_test_score"], dtype="float64")[rows]
                            for i in range(folds)])


def run_search(pipeline: Any, model: ModelSpec, search: SearchSpec, scoring: str,
               X: Any, y: Any) -> SearchOutcome:
    """Search ``model``'s space with ``pipeline`` on the training data, on the cluster
    of the current Dask client."""
    started = time.time()
    random = search.method == "random" or model.distributions is not None
    space = search_space(model.space, distributions=model.distributions is not None,
                         prefix=PREFIX)
    if search.method == "halving":
        return _halving(pipeline, space, random, search, scoring, X, y, started)
    import dask_ml.model_selection as dms

    if random:
        searcher = dms.RandomizedSearchCV(
            pipeline, space, n_iter=search.n_iter, random_state=search.random_state,
            cv=search.cv, scoring=scoring, refit=False, return_train_score=False,
            error_score=np.nan)
    else:
        searcher = dms.GridSearchCV(pipeline, space, cv=search.cv, scoring=scoring,
                                    refit=False, return_train_score=False,
                                    error_score=np.nan)
    searcher.fit(X, y)
    results = searcher.cv_results_
    scores = _fold_matrix(results, slice(None), search.cv)
    return SearchOutcome(
        method=f"dask_ml.model_selection.{type(searcher).__name__}",
        params=[_strip(p) for p in results["params"]], fold_scores=scores,
        best=best_index(scores), seconds=time.time() - started)


class _SequentialBatch:
    """A batch of joblib calls run on a Dask worker, with joblib calls nested inside
    them run sequentially (joblib's own batch makes them Dask tasks again)."""

    def __init__(self, count: int):
        self.count = count

    def __call__(self, tasks: list) -> list:
        from joblib import parallel_config

        with parallel_config(backend="sequential"):
            return [func(*args, **kwargs) for func, args, kwargs in tasks]

    def __repr__(self) -> str:
        return f"batch_of_{self.count}_calls"


def dask_joblib_backend() -> str:
    """Register (once) and name the joblib backend the halving search runs on: Dask for
    the search's own fits and scores, sequential for joblib calls nested inside them.
    Anything else that fits models for a job (its report's learning curve) runs on it
    too, so it uses the job's cluster as the search does.

    joblib's Dask backend sends nested ``Parallel`` calls to Dask as well, and every
    pipeline here starts with a ``ColumnTransformer``, which makes one per fit and per
    score: each became a scheduler round trip from inside a task (a 48-candidate halving
    search on digits took 21 s instead of 3 s).
    """
    import joblib
    from joblib._dask import DaskDistributedBackend

    # _to_func_args is joblib-private (pinned: joblib 1.6); it wraps each batch
    class FlatDaskBackend(DaskDistributedBackend):
        async def _to_func_args(self, func):
            _, tasks = await super()._to_func_args(func)
            return _SequentialBatch(len(tasks)), tasks

    joblib.register_parallel_backend(_FLAT_DASK, FlatDaskBackend)
    return _FLAT_DASK


_FLAT_DASK = "shipyard-dask"
_flat_dask_backend = dask_joblib_backend  # its name before the report used it too


def _halving(pipeline: Any, space: dict[str, Any], random: bool, search: SearchSpec,
             scoring: str, X: Any, y: Any, started: float) -> SearchOutcome:
    import joblib
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV, HalvingRandomSearchCV

    common = dict(factor=search.factor, cv=search.cv, scoring=scoring, refit=False,
                  random_state=search.random_state, n_jobs=-1, error_score=np.nan)
    if random:
        searcher = HalvingRandomSearchCV(pipeline, space, n_candidates="exhaust", **common)
    else:
        searcher = HalvingGridSearchCV(pipeline, space, **common)
    with joblib.parallel_backend(dask_joblib_backend()):
        searcher.fit(X, y)
    results = searcher.cv_results_
    iterations = [{"iteration": i, "candidates": int(c), "rows": int(r)}
                  for i, (c, r) in enumerate(zip(searcher.n_candidates_,
                                                 searcher.n_resources_))]
    scores = _fold_matrix(results, slice(None), search.cv)
    return SearchOutcome(
        method=f"sklearn.model_selection.{type(searcher).__name__} (joblib Dask backend)",
        params=[_strip(p) for p in results["params"]], fold_scores=scores,
        best=int(searcher.best_index_), seconds=time.time() - started,
        iterations=iterations, rounds=[int(r) for r in results["iter"]])


def cross_validate_best(pipeline: Any, params: dict[str, Any], search: SearchSpec,
                        scoring: str, X: Any, y: Any) -> np.ndarray:
    """Fold scores of ``params`` on the whole training set, with the search's folds: what
    models are compared on after a halving search (whose last round used fewer rows)."""
    import joblib
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score

    candidate = clone(pipeline).set_params(**{PREFIX + k: v for k, v in params.items()})
    with joblib.parallel_backend(dask_joblib_backend()):
        return cross_val_score(candidate, X, y, cv=search.cv, scoring=scoring, n_jobs=-1,
                               error_score=np.nan)
