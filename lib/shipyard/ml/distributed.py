"""Training on data larger than ``max_in_memory``: dask-ml on the partitions.

Nothing is gathered into one process except the target and prediction vectors of the
test rows (for the metrics). What changes against the in-memory path, and is stated in
the result's ``notes``:

- the split is dask-ml's ``train_test_split`` (each partition split at random, seeded),
  not scikit-learn's, so the held-out rows differ from a plain scikit-learn run;
- imputation and scaling are dask-ml's ``SimpleImputer``/scalers, fitted on the
  training partitions; features must be numeric (encode others with ``get_dummies`` in
  a dataframe job first);
- a model is a ``dask_ml.linear_model`` class, fitted on the whole Dask array, or any
  scikit-learn estimator with ``partial_fit`` (``SGDClassifier``, ``SGDRegressor``,
  ``MultinomialNB``, ...), fitted block by block with dask-ml's ``Incremental``;
- candidates are ranked on a validation holdout of the training rows (20%), not by
  cross-validation, so there are no fold scores and models are not t-tested;
- the report's figures are the ones this path can draw without reading the data again
  (no learning curve or class scatter): ROC and precision-recall curves, or predicted
  against actual values, are drawn from a seeded sample of the test rows' predictions.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn import metrics as sk_metrics

from shipyard.core.errors import InputDataError
from shipyard.data.readers import read_input
from shipyard.ml import metrics
from shipyard.ml.clustering import candidates
from shipyard.ml.estimators import resolve_estimator
from shipyard.ml.finish import finish
from shipyard.ml.search import default_scoring, plain_params
from shipyard.ml.spec import ModelSpec, SklearnWorkload
from shipyard.report.sklearn_data import HELD_OUT_ROWS, HeldOut, sample_index
from shipyard.report.sklearn_figures import distributed_figures

if TYPE_CHECKING:
    from shipyard.runtime.context import JobContext

__all__ = ["run_distributed", "trainable_on_partitions"]

NOTES = [
    "trained on the partitions with dask-ml: the input is larger than max_in_memory; the "
    "workers hold it (spilling to disk past their memory limit)",
    "split with dask_ml.model_selection.train_test_split (blockwise), not scikit-learn's",
    "candidates ranked on a 20% validation holdout of the training rows, not by "
    "cross-validation; models are not t-tested",
]


def trainable_on_partitions(cls: type) -> bool:
    """A dask-ml linear model, or an estimator that learns block by block."""
    return cls.__module__.startswith("dask_ml.") or hasattr(cls, "partial_fit")


def _preprocessor(block: SklearnWorkload) -> Any:
    from dask_ml import impute, preprocessing
    from sklearn.pipeline import Pipeline

    steps = []
    if block.preprocess.impute != "none":
        steps.append(("impute", impute.SimpleImputer(strategy=block.preprocess.impute)))
    scaler = {"standard_scaler": preprocessing.StandardScaler,
              "minmax_scaler": preprocessing.MinMaxScaler,
              "robust_scaler": preprocessing.RobustScaler}.get(block.preprocess.numeric)
    if scaler is not None:
        steps.append(("scale", scaler()))
    return Pipeline(steps) if steps else None


def _fit(model: ModelSpec, params: dict[str, Any], X: Any, y: Any, classes: list | None,
         scoring: str, random_state: int | None) -> Any:
    """A fitted estimator: dask-ml's directly, others through ``Incremental``."""
    from dask_ml.wrappers import Incremental

    cls = resolve_estimator(model.estimator)
    estimator = cls(**{**model.params, **params})
    if cls.__module__.startswith("dask_ml."):
        return estimator.fit(X, y)
    wrapper = Incremental(estimator, scoring=scoring, shuffle_blocks=True,
                          random_state=random_state)
    kwargs = {"classes": classes} if classes is not None else {}
    return wrapper.fit(X, y, **kwargs).estimator_


def _predictions(estimator: Any, X: Any, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions (and class probabilities) of the rows of dask array ``X``, computed."""
    import dask
    from dask_ml.wrappers import ParallelPostFit

    # dask-ml's own models take Dask arrays; others are mapped over the blocks
    native = type(estimator).__module__.startswith("dask_ml.")
    wrapped = estimator if native else ParallelPostFit(estimator)
    lazy = [wrapped.predict(X)]
    if task == "classification" and hasattr(estimator, "predict_proba"):
        try:
            lazy.append(wrapped.predict_proba(X))
        except AttributeError:  # e.g. SGDClassifier(loss="hinge")
            pass
    computed = dask.compute(*lazy)
    return np.asarray(computed[0]), (np.asarray(computed[1]) if len(computed) > 1 else None)


#: the scorers available here: computed from the predictions alone (scikit-learn's
#: scorer objects want the estimator and rows in memory)
SCORES = {
    "accuracy": sk_metrics.accuracy_score,
    "r2": sk_metrics.r2_score,
    "f1": sk_metrics.f1_score,
    "f1_macro": lambda y, p: sk_metrics.f1_score(y, p, average="macro"),
    "neg_mean_absolute_error": lambda y, p: -sk_metrics.mean_absolute_error(y, p),
    "neg_root_mean_squared_error":
        lambda y, p: -np.sqrt(sk_metrics.mean_squared_error(y, p)),
    "neg_mean_squared_error": lambda y, p: -sk_metrics.mean_squared_error(y, p),
}


def _score(y: np.ndarray, predicted: np.ndarray, scoring: str) -> float:
    return float(SCORES[scoring](y, predicted))


def run_distributed(block: SklearnWorkload, ctx: JobContext, task: str,
                    features: list[str], started: float) -> dict[str, Any]:
    """Train, validate, test and save every model on the partitions. See the module
    docstring for what differs from the in-memory path."""
    import dask
    from dask_ml.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    source = block.input.path
    if task == "clustering":
        raise InputDataError(f"{source} is larger than max_in_memory; clustering jobs train "
                             "in memory: raise max_in_memory or sample the data first")
    unfit = [m.name for m in block.models
             if not trainable_on_partitions(resolve_estimator(m.estimator))]
    if unfit:
        raise InputDataError(
            f"{source} is larger than max_in_memory ({block.max_in_memory // 2**20} MiB), and "
            f"models {', '.join(unfit)} cannot learn from it block by block: use a "
            "dask_ml.linear_model class or an estimator with partial_fit (e.g. "
            "sklearn.linear_model.SGDClassifier), or raise max_in_memory")
    scoring = block.search.scoring or default_scoring(task)
    if scoring not in SCORES:  # before any training, not after the first candidate
        raise InputDataError(f"search.scoring {scoring!r} is not available when training on "
                             f"partitions; use one of {', '.join(SCORES)}")
    # blocks well within what one process may hold: Incremental learns one at a time
    frame = read_input(block.input, columns=features + [block.target],
                       partition_size=min(100 * 2**20, block.max_in_memory // 4))
    kinds = frame[features].dtypes
    other = [c for c in features if not (np.issubdtype(kinds[c], np.number)
                                          or kinds[c] == bool)]
    if other:
        raise InputDataError(f"features {', '.join(other)} of {source} are not numeric; "
                             "training on partitions needs numbers (encode them with "
                             "get_dummies in a dataframe job first)")
    ctx.progress("read", done=0, total=len(block.models) + 3)
    missing, classes = dask.compute(frame[block.target].isna().sum(),
                                    frame[block.target].drop_duplicates())
    if missing:
        raise InputDataError(f"target {block.target!r} in {source} has {int(missing)} "
                             "missing value(s); drop those rows first")
    classes = sorted(classes.tolist()) if task == "classification" else None
    if classes is not None and len(classes) < 2:
        raise InputDataError(f"target {block.target!r} in {source} has a single class "
                             f"({classes[0]!r}); classification needs at least two")

    # held by the workers (spilling to disk past their memory): features and target then
    # keep one partitioning, which Dask's optimizer may otherwise choose per column set
    frame = frame.persist()
    X_train, X_test, y_train, y_test = train_test_split(
        frame[features].astype("float64"), frame[block.target],
        test_size=block.split.test_size, random_state=block.split.random_state, shuffle=True)
    prep = _preprocessor(block)
    if prep is not None:
        prep.fit(X_train)
    transform = (lambda X: prep.transform(X)) if prep is not None else (lambda X: X)

    def arrays(X, y):
        return transform(X).to_dask_array(lengths=True), y.to_dask_array(lengths=True)

    Xa_train, ya_train = dask.persist(*arrays(X_train, y_train))
    Xa_test, ya_test = arrays(X_test, y_test)
    y_true = np.asarray(ya_test.compute())
    # the figures' test rows: a bounded sample, whose predictions each model keeps
    shown = (sample_index(len(y_true), HELD_OUT_ROWS, block.split.random_state)
             if ctx.figures.enabled else None)
    kept: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}

    models: dict[str, dict[str, Any]] = {}
    fitted: dict[str, Any] = {}
    for index, model in enumerate(block.models):
        ctx.progress(f"train {model.name}", done=index + 1, total=len(block.models) + 3)
        tried = candidates(model.space, model.distributions is not None, block.search.method,
                           block.search.n_iter, block.search.random_state)
        results = []
        if len(tried) > 1:
            X_fit, X_val, y_fit, y_val = train_test_split(
                Xa_train, ya_train, test_size=0.2, random_state=block.search.random_state,
                shuffle=True)
            y_val_true = np.asarray(y_val.compute())
            for params in tried:
                estimator = _fit(model, params, X_fit, y_fit, classes, scoring,
                                 block.search.random_state)
                predicted, _ = _predictions(estimator, X_val, task)
                results.append({"params": plain_params(params),
                                "validation": _score(y_val_true, predicted, scoring)})
            best = max(range(len(results)), key=lambda i: (results[i]["validation"], -i))
        else:
            best = 0
        best_params = plain_params(tried[best]) if tried else {}
        estimator = _fit(model, best_params, Xa_train, ya_train, classes, scoring,
                         block.search.random_state)
        predicted, probabilities = _predictions(estimator, Xa_test, task)
        if shown is not None:
            kept[model.name] = (predicted[shown], None if probabilities is None
                                else probabilities[shown])
        if task == "classification":
            test = metrics.classification_metrics_of(y_true, predicted, probabilities, classes)
        else:
            test = metrics.regression_metrics_of(y_true, predicted)
        steps = [("preprocess", prep)] if prep is not None else []
        if resolve_estimator(model.estimator).__module__.startswith("dask_ml."):
            # dask-ml's linear models predict on arrays only, not the frames of batch_predict
            steps.append(("to_array", FunctionTransformer(np.asarray)))
        fitted[model.name] = Pipeline(steps + [("model", estimator)])
        models[model.name] = {
            "estimator": model.estimator, "best_params": best_params,
            "validation_score": results[best]["validation"] if results else None,
            "test_metrics": test,
            "search": {"method": "validation holdout", "candidates": len(tried) or 1,
                       "results": results},
        }
        ctx.logger.info("%s: best %s, test %s %.4f", model.name, best_params, scoring,
                        _score(y_true, predicted, scoring))
    # models are ranked on their validation scores; where one had no search (no
    # validation score), all are ranked on the test split's accuracy or R2 instead
    headline = "accuracy" if task == "classification" else "r2"
    validated = all(m["validation_score"] is not None for m in models.values())
    best_model = max(models, key=lambda n: models[n]["validation_score"] if validated
                     else models[n]["test_metrics"][headline])
    result: dict[str, Any] = {
        "task": task, "mode": "distributed", "notes": NOTES,
        "rows": {"train": int(len(ya_train)), "test": int(len(y_true))},
        "features": features, "target": block.target, "classes": classes,
        "scoring": scoring, "models": models, "best_model": best_model, "comparisons": [],
    }
    if ctx.figures.enabled:
        ctx.progress("figures", done=len(block.models), total=len(block.models) + 3)
        _figures(ctx, result, fitted[best_model], features, y_true, shown, kept[best_model])
    return finish(block, ctx, result, fitted[best_model], {"mode": "distributed"}, started)


def _figures(ctx: JobContext, result: dict[str, Any], pipeline: Any, features: list[str],
             y_true: np.ndarray, shown: np.ndarray,
             kept: tuple[np.ndarray, np.ndarray | None]) -> None:
    """Draw the figures this path has the numbers for (see the module docstring)."""
    started = time.time()
    predicted, scores = kept
    rows = HeldOut(y_true[shown], predicted, scores, total=len(y_true))
    distributed_figures(ctx.figures, result, pipeline, features, rows)
    ctx.logger.info("figures: %d drawn in %.2f s", len(ctx.figures.entries),
                    time.time() - started)
