"""Clustering jobs: every candidate of every model fitted on the cluster, scored by
silhouette.

There is no target, so no test split and no cross-validation: each candidate (a grid
point, or a draw from the distributions) is fitted on all rows by its own Dask task,
its labels scored by the silhouette coefficient (on a seeded sample of at most 5000
rows, as ``sklearn.metrics.silhouette_score(sample_size=..., random_state=0)``), and
the best candidate of the best model is saved. Candidates that find fewer than two
clusters have no silhouette and rank last. The report's figures use the labels the best
candidate was fitted with: nothing is fitted again for them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.ml.data import TrainingData
from shipyard.ml.estimators import search_space
from shipyard.ml.finish import finish
from shipyard.ml.metrics import silhouette
from shipyard.ml.pipeline import build_pipeline
from shipyard.ml.search import PREFIX, plain_params
from shipyard.ml.spec import SklearnWorkload

if TYPE_CHECKING:
    from shipyard.runtime.context import JobContext

__all__ = ["run_clustering", "candidates", "fit_candidate"]


def candidates(space: dict[str, Any], distributions: bool, method: str, n_iter: int,
               random_state: int | None) -> list[dict[str, Any]]:
    """The parameter sets to try, as scikit-learn's ``ParameterGrid``/``ParameterSampler``
    give them."""
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    built = search_space(space, distributions, prefix="")
    if method == "random" or distributions:
        return list(ParameterSampler(built, n_iter=n_iter, random_state=random_state))
    return list(ParameterGrid(built))


def fit_candidate(pipeline: Any, params: dict[str, Any], X: Any) -> dict[str, Any]:
    """Fit one candidate on ``X``; its labels' cluster count and silhouette (runs on a
    worker)."""
    from sklearn.base import clone

    started = time.time()
    model = clone(pipeline).set_params(**{PREFIX + k: v for k, v in params.items()})
    labels = model.fit_predict(X)
    transformed = model[:-1].transform(X)
    return {"params": params, "silhouette": silhouette(transformed, labels),
            "clusters": int(len(set(np.unique(labels)) - {-1})),
            "noise": int((labels == -1).sum()), "seconds": round(time.time() - started, 3),
            "model": model}


def run_clustering(block: SklearnWorkload, ctx: JobContext, data: TrainingData,
                   started: float) -> dict[str, Any]:
    """Fit and score every candidate; save the best. See the module docstring."""
    client = ctx.client
    X = client.scatter(data.X, broadcast=True)
    futures = {}
    for model in block.models:
        pipeline = build_pipeline(model, block.preprocess, data.numeric, data.categorical)
        for params in candidates(model.space, model.distributions is not None,
                                 block.search.method, block.search.n_iter,
                                 block.search.random_state):
            futures.setdefault(model.name, []).append(
                client.submit(fit_candidate, pipeline, params, X, pure=False))
    models: dict[str, dict[str, Any]] = {}
    fitted = {}
    for name, pending in futures.items():
        tried = client.gather(pending)
        ranked = sorted(range(len(tried)), key=lambda i: (
            tried[i]["silhouette"] is None, -(tried[i]["silhouette"] or 0), i))
        top = tried[ranked[0]]
        fitted[name] = top["model"]
        models[name] = {
            "estimator": next(m.estimator for m in block.models if m.name == name),
            "best_params": plain_params(top["params"]), "silhouette": top["silhouette"],
            "clusters": top["clusters"], "noise": top["noise"],
            "search": {"method": "each candidate a Dask task", "candidates": len(tried),
                       "results": [{k: (plain_params(v) if k == "params" else v)
                                    for k, v in t.items() if k != "model"} for t in tried]},
        }
        ctx.logger.info("%s: best %s, silhouette %s, %d clusters", name,
                        models[name]["best_params"], top["silhouette"], top["clusters"])
    scored = [n for n in models if models[n]["silhouette"] is not None]
    best = max(scored, key=lambda n: models[n]["silhouette"]) if scored else next(iter(models))
    result = {"task": "clustering", "mode": "in-memory", "rows": {"input": len(data.X)},
              "features": list(data.X.columns), "scoring": "silhouette", "models": models,
              "best_model": best, "comparisons": []}
    if ctx.figures.enabled:
        ctx.progress("figures", done=len(block.models), total=len(block.models) + 3)
        _figures(ctx, result, fitted[best], data)
    return finish(block, ctx, result, fitted[best], {"rows": len(data.X)}, started)


def _figures(ctx: JobContext, result: dict[str, Any], pipeline: Any,
             data: TrainingData) -> None:
    """Draw the report's figures: the best model's clusters, from the labels it was
    fitted with (nothing is refitted)."""
    from shipyard.report.sklearn_figures import clustering_figures

    started = time.time()
    clustering_figures(ctx.figures, result, pipeline, data.X)
    ctx.logger.info("figures: %d drawn in %.2f s", len(ctx.figures.entries),
                    time.time() - started)
