"""The numbers behind an ``sklearn`` job's report figures, apart from their drawing.

Small pure functions, each computing what one figure plots (:func:`comparison_data`,
:func:`search_series`, :func:`learning_curve_data`, :func:`curve_data`,
:func:`importance_data`, :func:`projection_2d`, ...), so they can be tested against
what the job reports without drawing anything; and the plain inputs the figures take
(:class:`CVSettings`, :class:`HeldOut`). :mod:`shipyard.report.sklearn_figures` draws
them.

Like the figures, they take only rows already in this process (pandas/NumPy), never a
Dask collection. The computations that fit or score models many times (the learning
curve, permutation importance) run through the joblib backend that
:class:`CVSettings` names, which is the job's cluster.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CVSettings", "HeldOut", "display_score", "comparison_data", "search_series",
    "learning_curve_data", "LearningCurve", "class_scores", "curve_data",
    "importance_data", "Importance", "projection_2d", "sample_index", "HELD_OUT_ROWS",
    "is_number", "feature_names_of", "dense_array", "take_rows",
]

#: at most this many points in a scatter (seeded sample): more only hide each other
SCATTER_ROWS = 5000
#: test rows whose predictions a job trained on partitions keeps for its figures (its
#: test rows may not fit in memory; curves of 20000 rows are as smooth as of more)
HELD_OUT_ROWS = 20_000
#: rows permutation importance scores on (it predicts them n_features x n_repeats times)
IMPORTANCE_ROWS = 2000
IMPORTANCE_REPEATS = 5
#: features shown in an importance chart
TOP_FEATURES = 20
#: training-set shares of the learning curve: four points show the trend, and cost
#: about 2.5 cross-validations of the best model
LEARNING_CURVE_SIZES = (0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class CVSettings:
    """How the job's search cross-validated, so the learning curve and permutation
    importance score the same way.

    Parameters
    ----------
    cv : int
        Folds (scikit-learn's default splitter for ``cv=k``, as the search used).
    scoring : str
        The search's scorer name.
    random_state : int, optional
        The search's seed.
    backend : str, optional
        A registered joblib backend to run the fits on (the job's Dask cluster); None
        runs them here, one after another.
    """

    cv: int
    scoring: str
    random_state: int | None = 0
    backend: str | None = None


@dataclass(frozen=True)
class HeldOut:
    """Test rows already in memory: all of them, or a seeded sample.

    Parameters
    ----------
    y : array
        True targets.
    predicted : array
        The best model's predictions of the same rows.
    scores : array, optional
        Its class probabilities (or decision function) of the same rows.
    total : int
        How many test rows there are in all (``len(y)`` when these are all of them).
    """

    y: np.ndarray
    predicted: np.ndarray
    scores: np.ndarray | None = None
    total: int = 0

    @property
    def sampled(self) -> bool:
        return self.total > len(self.y)

    def describe(self) -> str:
        """``"143 test rows"`` or ``"a seeded sample of 20000 of 1200000 test rows"``."""
        if self.sampled:
            return f"a seeded sample of {len(self.y)} of {self.total} test rows"
        return f"{len(self.y)} test rows"


def display_score(scoring: str) -> tuple[float, str]:
    """The sign that makes a scorer read naturally, and its label.

    scikit-learn negates error scorers so that higher is better; figures show the error
    itself (lower is better), as people quote it.

    Examples
    --------
    >>> display_score("neg_root_mean_squared_error")
    (-1.0, 'root_mean_squared_error (lower is better)')
    >>> display_score("accuracy")
    (1.0, 'accuracy')
    """
    if scoring.startswith("neg_"):
        return -1.0, f"{scoring.removeprefix('neg_')} (lower is better)"
    return 1.0, scoring


def sample_index(n: int, limit: int, seed: int | None = 0) -> np.ndarray:
    """Sorted positions of a seeded sample of at most ``limit`` of ``n`` rows (all of
    them when ``n <= limit``), so figures of the same job always show the same points.

    Examples
    --------
    >>> sample_index(5, 10).tolist()
    [0, 1, 2, 3, 4]
    >>> len(sample_index(10_000, 100)), sample_index(10_000, 100).tolist() == sorted(
    ...     sample_index(10_000, 100).tolist())
    (100, True)
    """
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def comparison_data(result: dict[str, Any]) -> dict[str, Any]:
    """The bars of ``model_comparison``: one per model, in the result's order.

    Models trained in memory are compared on their CV mean (error bars: the standard
    deviation over the folds), clustering models on their silhouette, models trained on
    partitions on their validation score (or, where one had none, the test score).

    Returns
    -------
    dict
        ``names``, ``heights``, ``errors`` (None where there are none), ``label`` (the
        score), ``detail`` (which one), ``best`` (the result's best model).

    Examples
    --------
    >>> result = {"task": "classification", "scoring": "accuracy", "best_model": "b",
    ...           "models": {"a": {"cv_mean": 0.9, "cv_std": 0.02, "cv_scores": [0, 0]},
    ...                      "b": {"cv_mean": 0.95, "cv_std": 0.01, "cv_scores": [0, 0]}}}
    >>> data = comparison_data(result)
    >>> data["heights"], data["errors"], data["label"], data["detail"]
    ([0.9, 0.95], [0.02, 0.01], 'accuracy', 'mean and std over 2 CV folds')
    """
    models = result["models"]
    names = list(models)
    sign, label = display_score(result.get("scoring") or "score")
    errors: list[float] | None = None
    detail = ""
    if all(m.get("cv_mean") is not None for m in models.values()):
        heights = [sign * models[n]["cv_mean"] for n in names]
        errors = [models[n].get("cv_std") or 0.0 for n in names]
        folds = len(next(iter(models.values())).get("cv_scores") or [])
        detail = f"mean and std over {folds} CV folds"
    elif result.get("task") == "clustering":
        # a model whose every candidate found under two clusters has no silhouette
        heights = [models[n]["silhouette"] if models[n].get("silhouette") is not None
                   else math.nan for n in names]
        label, detail = "silhouette", "of each model's best candidate"
    elif all(m.get("validation_score") is not None for m in models.values()):
        heights = [sign * models[n]["validation_score"] for n in names]
        detail = "on the validation holdout"
    else:
        headline = "accuracy" if result.get("task") == "classification" else "r2"
        heights = [models[n]["test_metrics"][headline] for n in names]
        label, detail = headline, "on the test rows"
    return {"names": names, "heights": heights, "errors": errors, "label": label,
            "detail": detail, "best": result.get("best_model")}


def is_number(value: Any) -> bool:
    """A real number (NumPy's included), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def search_series(results: Sequence[dict[str, Any]], score_key: str = "mean",
                  sign: float = 1.0) -> dict[str, dict[str, Any]]:
    """Per searched parameter, each candidate's value of it and score: one subplot of
    ``search_results``.

    Parameters
    ----------
    results : list of dict
        A model's ``search.results`` entries (``params`` and the score, halving searches
        also ``round``); candidates without a score (failed fits) are left out.
    score_key : str
        The entries' score: ``mean`` (CV), ``validation`` or ``silhouette``.
    sign : float
        Multiplies the scores (see :func:`display_score`).

    Returns
    -------
    dict of parameter -> dict
        ``values`` (the parameter's value per candidate), ``x`` (where it is drawn: the
        value, or the category's position), ``scores``, ``stds`` (or None),
        ``rounds`` (or None), ``categorical``, ``categories`` (labels in first-seen
        order), ``log`` (positive numbers spanning two decades or more).

    Examples
    --------
    >>> rows = [{"params": {"C": c, "kernel": k}, "mean": m, "std": 0.01}
    ...         for c, k, m in [(0.1, "rbf", 0.9), (1000, "rbf", 0.8), (0.1, "linear", 0.7)]]
    >>> series = search_series(rows)
    >>> series["C"]["log"], series["kernel"]["categorical"], series["kernel"]["x"]
    (True, True, [0, 0, 1])
    >>> series["kernel"]["categories"], series["C"]["scores"]
    (['rbf', 'linear'], [0.9, 0.8, 0.7])
    """
    rows = [r for r in results if r.get(score_key) is not None
            and np.isfinite(r[score_key])]
    names: list[str] = []
    for row in rows:
        names += [k for k in row["params"] if k not in names]
    series = {}
    for name in names:
        values = [row["params"].get(name) for row in rows]
        categorical = not all(is_number(v) for v in values)
        categories: list[str] = []
        if categorical:
            for value in values:
                if str(value) not in categories:
                    categories.append(str(value))
            x = [categories.index(str(v)) for v in values]
        else:
            x = [float(v) for v in values]
        positive = not categorical and min(x) > 0
        series[name] = {
            "values": values, "x": x, "categorical": categorical, "categories": categories,
            "log": bool(positive and max(x) / min(x) >= 100),
            "scores": [sign * float(row[score_key]) for row in rows],
            "stds": ([float(row.get("std") or 0.0) for row in rows]
                     if any("std" in row for row in rows) else None),
            "rounds": ([int(row["round"]) for row in rows]
                       if all("round" in row for row in rows) else None),
        }
    return series


@dataclass(frozen=True)
class LearningCurve:
    """Train and validation scores per training-set size (rows: sizes, columns: folds)."""

    sizes: np.ndarray
    train: np.ndarray
    validation: np.ndarray


@contextlib.contextmanager
def _joblib(backend: str | None):
    """Run the block's joblib calls on ``backend`` (a registered name), or as they are."""
    if backend is None:
        yield None
        return
    import joblib

    with joblib.parallel_backend(backend):
        yield -1


def learning_curve_data(model: Any, X: Any, y: Any, settings: CVSettings,
                        sizes: Sequence[float] = LEARNING_CURVE_SIZES) -> LearningCurve:
    """scikit-learn's ``learning_curve`` of ``model`` with the search's folds and scorer.

    The folds are the ones ``cv=k`` gives (unshuffled), and each size takes the first
    rows of a fold's training rows, so the largest size is a whole fold and its
    validation scores are the model's CV fold scores.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> order = np.random.default_rng(0).permutation(len(y))  # iris is sorted by class
    >>> X, y = X[order], y[order]
    >>> curve = learning_curve_data(LogisticRegression(max_iter=500), X, y,
    ...                             CVSettings(cv=5, scoring="accuracy"))
    >>> curve.sizes.tolist(), curve.validation.shape
    ([30, 60, 90, 120], (4, 5))
    """
    from sklearn.model_selection import learning_curve

    with _joblib(settings.backend) as n_jobs:
        # shuffle=False: the subsets are prefixes of the search's own training folds;
        # a fit that fails (a subset missing a class) is a gap, not a failed figure
        sizes_abs, train, validation = learning_curve(
            model, X, y, train_sizes=np.asarray(sizes), cv=settings.cv,
            scoring=settings.scoring, n_jobs=n_jobs, shuffle=False,
            random_state=settings.random_state, error_score=np.nan)
    return LearningCurve(np.asarray(sizes_abs), np.asarray(train, dtype="float64"),
                         np.asarray(validation, dtype="float64"))


def class_scores(model: Any, X: Any, classes: Sequence[Any]) -> np.ndarray | None:
    """Scores that rank test rows per class: ``predict_proba``, else
    ``decision_function`` (one column per class, or one for a binary model); None when
    the model has neither (or an unusable shape, e.g. one-vs-one SVC)."""
    scores = None
    if hasattr(model, "predict_proba"):
        try:
            scores = np.asarray(model.predict_proba(X))
        except (AttributeError, NotImplementedError):  # e.g. SVC(probability=False)
            scores = None
    if scores is None and hasattr(model, "decision_function"):
        try:
            scores = np.asarray(model.decision_function(X))
        except (AttributeError, NotImplementedError):
            return None
    if scores is None:
        return None
    if scores.ndim == 1 and len(classes) == 2:
        return scores
    if scores.ndim == 2 and scores.shape[1] == len(classes):
        return scores
    return None


def curve_data(kind: str, y: Any, scores: np.ndarray, classes: Sequence[Any]
               ) -> list[dict[str, Any]]:
    """ROC (``kind="roc"``) or precision-recall (``"pr"``) curves: one for a binary
    task (of the positive class, the larger label, as the job's metrics take it), one
    per class (one-vs-rest) otherwise.

    Returns
    -------
    list of dict
        ``label``, ``x``, ``y`` (false/true positive rate, or recall/precision) and
        ``area`` (ROC AUC, or average precision).

    Examples
    --------
    >>> y = np.array([0, 0, 1, 1]); p = np.array([0.1, 0.4, 0.35, 0.8])
    >>> [(c["label"], c["area"]) for c in curve_data("roc", y, p, [0, 1])]
    [('1', 0.75)]
    """
    from sklearn import metrics

    y = np.asarray(y)
    if len(classes) == 2:
        positive = scores[:, 1] if scores.ndim == 2 else scores
        columns = [(classes[1], positive)]
    else:
        columns = [(label, scores[:, i]) for i, label in enumerate(classes)]
    curves = []
    for label, column in columns:
        truth = y == label
        if truth.all() or not truth.any():  # a class absent from the test rows
            continue
        if kind == "roc":
            fpr, tpr, _ = metrics.roc_curve(truth, column)
            curves.append({"label": str(label), "x": fpr, "y": tpr,
                           "area": float(metrics.auc(fpr, tpr))})
        else:
            precision, recall, _ = metrics.precision_recall_curve(truth, column)
            curves.append({"label": str(label), "x": recall, "y": precision,
                           "area": float(metrics.average_precision_score(truth, column))})
    return curves


@dataclass(frozen=True)
class Importance:
    """Feature importances, largest magnitude first (at most :data:`TOP_FEATURES`)."""

    names: list[str]
    values: np.ndarray
    errors: np.ndarray | None
    kind: str
    total: int


def feature_names_of(model: Any) -> list[str] | None:
    """The names of the features a pipeline's final estimator sees (after its
    preprocessing steps), or None where a step cannot name them."""
    if not (hasattr(model, "steps") and len(model.steps) > 1):
        return None
    try:
        return [str(n) for n in model[:-1].get_feature_names_out()]
    except Exception:  # noqa: BLE001 - a step without feature names: positions will do
        return None


def _names(names: Sequence[str] | None, count: int) -> list[str]:
    return list(names) if names is not None and len(names) == count else \
        [f"x{i}" for i in range(count)]


def _top(names: list[str], values: np.ndarray, errors: np.ndarray | None, kind: str
         ) -> Importance:
    order = np.argsort(-np.abs(values), kind="stable")[:TOP_FEATURES]
    return Importance([names[i] for i in order], values[order],
                      None if errors is None else errors[order], kind, len(values))


def importance_data(estimator: Any, names: Sequence[str] | None = None, X: Any = None,
                    y: Any = None, settings: CVSettings | None = None) -> Importance | None:
    """What the final estimator makes of each (preprocessed) feature.

    A linear model's coefficients (binary or regression: signed; several classes: the
    mean absolute coefficient over them), else a tree ensemble's
    ``feature_importances_``, else — given preprocessed rows ``X, y`` and ``settings``
    — ``permutation_importance`` on at most :data:`IMPORTANCE_ROWS` of them (seeded,
    :data:`IMPORTANCE_REPEATS` repeats, the search's scorer); None when none applies.

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression
    >>> model = LinearRegression().fit([[0, 1], [1, 0], [2, 2]], [1, 2, 6])
    >>> found = importance_data(model, ["a", "b"])
    >>> found.kind, found.names, np.round(found.values, 3).tolist()
    ('coefficient', ['a', 'b'], [2.0, 1.0])
    """
    coef = _attribute(estimator, "coef_")
    if coef is not None:
        coef = dense_array(coef)
        names = _names(names, coef.shape[-1])
        if coef.ndim == 1 or coef.shape[0] == 1:
            return _top(names, coef.reshape(-1), None, "coefficient")
        return _top(names, np.abs(coef).mean(axis=0), None,
                    "mean |coefficient| over the classes")
    found = _attribute(estimator, "feature_importances_")
    if found is not None:
        found = np.asarray(found, dtype="float64")
        return _top(_names(names, len(found)), found, None, "impurity-based importance")
    if X is None or y is None or settings is None:
        return None
    return _permutation(estimator, names, X, y, settings)


def _attribute(estimator: Any, name: str) -> Any:
    """A fitted attribute, or None. ``SVC(kernel="rbf").coef_`` is a property that
    raises, where ``hasattr`` would have said yes."""
    try:
        return getattr(estimator, name, None)
    except Exception:  # noqa: BLE001 - any failure means the attribute is not there
        return None


def _permutation(estimator: Any, names: Sequence[str] | None, X: Any, y: Any,
                 settings: CVSettings) -> Importance:
    from sklearn.inspection import permutation_importance

    rows = sample_index(len(y), IMPORTANCE_ROWS, settings.random_state)
    X_rows = take_rows(X, rows)
    y_rows = np.asarray(y)[rows]
    with _joblib(settings.backend) as n_jobs:
        found = permutation_importance(estimator, X_rows, y_rows, scoring=settings.scoring,
                                       n_repeats=IMPORTANCE_REPEATS, n_jobs=n_jobs,
                                       random_state=settings.random_state)
    return _top(_names(names, len(found.importances_mean)), found.importances_mean,
                found.importances_std, f"permutation importance (drop in "
                f"{settings.scoring}, {len(rows)} test rows)")


def dense_array(X: Any) -> np.ndarray:
    """``X`` (dense or sparse) as a float64 NumPy array."""
    return np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype="float64")


def take_rows(X: Any, index: np.ndarray) -> Any:
    """The rows ``index`` of a NumPy array or a pandas frame (by position)."""
    return X[index] if isinstance(X, np.ndarray) else X.iloc[index]


def projection_2d(model: Any, X_fit: Any, X_show: Any, seed: int | None = 0
                  ) -> tuple[np.ndarray, list[str]] | None:
    """Rows ``X_show`` in two dimensions, through ``model``'s preprocessing steps.

    Two preprocessed features are drawn as they are; more are projected on their
    first two principal components, fitted on ``X_fit`` (at most
    :data:`SCATTER_ROWS` of its rows, seeded). None with fewer than two features.

    Returns
    -------
    (coordinates, axis labels)

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn.linear_model import LinearRegression
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(50, 4))
    >>> model = make_pipeline(StandardScaler(), LinearRegression()).fit(X, X[:, 0])
    >>> coords, labels = projection_2d(model, X, X[:10])
    >>> coords.shape, labels[0].startswith("PC1")
    ((10, 2), True)
    """
    from sklearn.decomposition import PCA

    prep = model[:-1] if hasattr(model, "steps") and len(model.steps) > 1 else None
    fit_rows = sample_index(len(X_fit), SCATTER_ROWS, seed)
    X_fit = take_rows(X_fit, fit_rows)
    fitted = dense_array(prep.transform(X_fit) if prep is not None else X_fit)
    shown = dense_array(prep.transform(X_show) if prep is not None else X_show)
    if fitted.shape[1] < 2:
        return None
    if fitted.shape[1] == 2:
        return shown, _names(feature_names_of(model), 2)
    pca = PCA(n_components=2, random_state=0).fit(fitted)
    labels = [f"PC{i + 1} ({share:.0%} of the variance)"
              for i, share in enumerate(pca.explained_variance_ratio_)]
    return pca.transform(shown), labels
