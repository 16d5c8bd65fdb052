"""Run an ``sklearn`` job: read, split, search every model, evaluate, compare, save.

1. check the spec against the input (it may have changed since submission);
2. read the target and features on the cluster; if they fit (``max_in_memory``), into
   one pandas frame in input order — the results then equal plain scikit-learn's — else
   hand over to :mod:`shipyard.ml.distributed` (dask-ml on the partitions);
3. split with ``train_test_split``; for each model, search its space with cross-
   validation on the training rows (:mod:`shipyard.ml.search`), refit the best
   candidate on all training rows, and score it on the held-out rows;
4. compare every pair of models on their fold scores (:mod:`shipyard.ml.compare`);
5. draw the report's figures (:mod:`shipyard.report.sklearn_figures`; skipped, with
   their computations, under ``report: {figures: false}``);
6. save the best pipeline (``artifacts/model.joblib`` and ``model.json``) and, when
   asked, score ``batch_predict``'s dataset with it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.data.readers import estimated_bytes
from shipyard.data.schema import read_schema
from shipyard.ml import metrics
from shipyard.ml.artifacts import load_model
from shipyard.ml.checks import feature_columns, infer_task
from shipyard.ml.compare import compare_models
from shipyard.ml.data import TrainingData, load_frame, prepare, split
from shipyard.ml.finish import finish
from shipyard.ml.pipeline import build_pipeline
from shipyard.ml.predict import batch_predict
from shipyard.ml.search import (PREFIX, cross_validate_best, dask_joblib_backend,
                                default_scoring, run_search)
from shipyard.ml.spec import ModelSpec, SklearnWorkload

if TYPE_CHECKING:
    from shipyard.runtime.context import JobContext

__all__ = ["run"]


def run(block: SklearnWorkload, ctx: JobContext) -> dict[str, Any]:
    """Run an sklearn job on ``ctx.client``'s cluster."""
    started = time.time()
    ctx.client  # noqa: B018 - start the cluster: every computation below runs on it
    if block.model is not None:
        return _predict_only(block, ctx)
    schema = read_schema(block.input)
    task = block.task or infer_task(block.target, schema.columns.get(block.target))
    features = feature_columns(block, list(schema.columns))
    size = estimated_bytes(block.input)
    if size > block.max_in_memory:
        from shipyard.ml.distributed import run_distributed

        ctx.logger.info("input of %d MiB is over max_in_memory (%d MiB): training on the "
                        "partitions with dask-ml", size // 2**20, block.max_in_memory // 2**20)
        return run_distributed(block, ctx, task, features, started)

    ctx.progress("read", done=0, total=len(block.models) + 3)
    columns = features + ([block.target] if block.target else [])
    data = prepare(block, load_frame(block, columns), task)
    if task == "clustering":
        from shipyard.ml.clustering import run_clustering

        return run_clustering(block, ctx, data, started)
    X_train, X_test, y_train, y_test = split(block, data)
    scoring = block.search.scoring or default_scoring(task)
    ctx.logger.info("%s on %d training and %d test rows, %d features; scoring %s",
                    task, len(X_train), len(X_test), X_train.shape[1], scoring)

    models: dict[str, dict[str, Any]] = {}
    fitted: dict[str, Any] = {}
    fold_scores: dict[str, np.ndarray] = {}
    for index, model in enumerate(block.models):
        ctx.progress(f"search {model.name}", done=index + 1, total=len(block.models) + 3)
        entry, pipeline, folds = _train_one(block, model, data, scoring, X_train, X_test,
                                            y_train, y_test)
        models[model.name], fitted[model.name], fold_scores[model.name] = entry, pipeline, folds
        ctx.logger.info("%s: best %s, CV %s %.4f +- %.4f, test %s", model.name,
                        entry["best_params"], scoring, entry["cv_mean"], entry["cv_std"],
                        {k: round(v, 4) for k, v in entry["test_metrics"].items()
                         if isinstance(v, float)})

    best = max(models, key=lambda name: (models[name]["cv_mean"], -list(models).index(name)))
    folds_n = block.search.cv
    n_train_fold = len(X_train) * (folds_n - 1) // folds_n
    comparisons = compare_models(fold_scores, n_train=n_train_fold,
                                 n_test=len(X_train) - n_train_fold,
                                 alpha=block.compare.alpha, scoring=scoring)
    for pair in comparisons:
        ctx.logger.info("compare: %s", pair["verdict"])

    result: dict[str, Any] = {
        "task": task, "mode": "in-memory",
        "rows": {"input": len(data.X), "train": len(X_train), "test": len(X_test)},
        "features": features, "target": block.target, "classes": data.classes,
        "scoring": scoring, "search": {"method": block.search.method, "cv": block.search.cv},
        "models": models, "best_model": best, "comparisons": comparisons,
    }
    if ctx.figures.enabled:
        _figures(block, ctx, result, fitted[best], X_train, X_test, y_train, y_test)
    return finish(block, ctx, result, fitted[best], {"rows": len(X_train)}, started,
                  cv_mean=models[best]["cv_mean"])


def _train_one(block: SklearnWorkload, model: ModelSpec, data: TrainingData, scoring: str,
               X_train, X_test, y_train, y_test) -> tuple[dict[str, Any], Any, np.ndarray]:
    """Search one model, refit its best candidate on the training rows, test it."""
    from sklearn.base import clone

    pipeline = build_pipeline(model, block.preprocess, data.numeric, data.categorical)
    outcome = run_search(pipeline, model, block.search, scoring, X_train, y_train)
    best_params = outcome.best_params
    folds = outcome.fold_scores[outcome.best]
    if block.search.method == "halving":
        # the last halving round trained on fewer rows: compare on the full folds
        folds = cross_validate_best(pipeline, best_params, block.search, scoring,
                                    X_train, y_train)
    refit_started = time.time()
    final = clone(pipeline).set_params(**{PREFIX + k: v for k, v in best_params.items()})
    final.fit(X_train, y_train)
    refit_seconds = time.time() - refit_started
    if data.task == "classification":
        test = metrics.classification_metrics(final, X_test, y_test)
    else:
        test = metrics.regression_metrics(final, X_test, y_test)
    entry: dict[str, Any] = {
        "estimator": model.estimator,
        "best_params": best_params,
        "cv_scores": [float(s) for s in folds],
        "cv_mean": float(np.mean(folds)),
        "cv_std": float(np.std(folds)),
        "test_metrics": test,
        "search": {
            "method": outcome.method,
            "candidates": outcome.candidates,
            "seconds": round(outcome.seconds, 3),
            "refit_seconds": round(refit_seconds, 3),
            "results": [{"params": p, "mean": _num(m), "std": _num(s),
                         **({"round": outcome.rounds[i]} if outcome.rounds else {})}
                        for i, (p, m, s) in enumerate(zip(outcome.params, outcome.means,
                                                          outcome.stds))],
        },
    }
    if outcome.iterations:
        entry["search"]["iterations"] = outcome.iterations
    return entry, final, np.asarray(folds, dtype="float64")


def _figures(block: SklearnWorkload, ctx: JobContext, result: dict[str, Any], pipeline: Any,
             X_train, X_test, y_train, y_test) -> None:
    """Draw the report's figures of the best pipeline. The learning curve's fits (and
    any permutation importance) run on the cluster, through the joblib backend the
    search's halving uses."""
    from shipyard.report import sklearn_figures
    from shipyard.report.sklearn_data import CVSettings

    started = time.time()
    steps = len(block.models)
    ctx.progress("figures", done=steps, total=steps + 3)
    settings = CVSettings(
        cv=block.search.cv, scoring=result["scoring"],
        random_state=block.search.random_state, backend=dask_joblib_backend())
    draw = (sklearn_figures.classification_figures if result["task"] == "classification"
            else sklearn_figures.regression_figures)
    draw(ctx.figures, result, pipeline, X_train, y_train, X_test, y_test, settings)
    ctx.logger.info("figures: %d drawn in %.2f s", len(ctx.figures.entries),
                    time.time() - started)


def _num(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _predict_only(block: SklearnWorkload, ctx: JobContext) -> dict[str, Any]:
    started = time.time()
    model, meta = load_model(block.model)
    ctx.progress("batch predict", done=0, total=1)
    written = batch_predict(model, meta["features"], block.batch_predict,
                            f"{ctx.job_id}-{ctx.attempt}")
    ctx.add_output(block.batch_predict.output.path)
    # it keeps no files of its own: the model it used is another run's artifact
    return {"mode": "predict", "model": str(block.model), "model_metadata": meta,
            "batch_predict": written, "artifacts": {},
            "seconds": round(time.time() - started, 3)}
