"""The figures of an ``sklearn`` job's report, drawn from what the job already has.

Each task draws a fixed set of figures, named so a page (and a test) can find them:

==============  ===================================================================
task            figures
==============  ===================================================================
classification  ``class_separation``, ``learning_curve``, ``model_comparison``,
                ``confusion_matrix``, ``roc_curve``, ``precision_recall``,
                ``feature_importance``, ``search_results``
regression      ``learning_curve``, ``model_comparison``, ``predicted_vs_actual``,
                ``residuals``, ``feature_importance``, ``search_results``
clustering      ``clusters``, ``cluster_sizes``, ``model_comparison``,
                ``search_results``
distributed     ``model_comparison``, ``confusion_matrix``, ``roc_curve``,
                ``precision_recall`` or ``predicted_vs_actual``, ``residuals`` (on a
                bounded sample of the test rows), ``feature_importance`` (coefficients
                or ``feature_importances_`` only), ``search_results``
==============  ===================================================================

The inputs are plain: the job's result dict (as ``result.json`` holds it), a fitted
scikit-learn pipeline (``preprocess`` steps, then the model last) and pandas/NumPy
rows already in this process. Nothing here takes a Dask collection, so a figure can
never pull a dataset that is larger than memory into the job's process; the one
computation that trains models (the learning curve) runs on the cluster through the
joblib backend the caller names.

The numbers a figure plots come from :mod:`shipyard.report.sklearn_data`; this module
only draws them. Every figure is drawn inside its own ``figures.figure(...)`` block: one
that fails is skipped with a warning, and the others are still drawn.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shipyard.report.figures import FigureSet
from shipyard.report.sklearn_data import (IMPORTANCE_ROWS, SCATTER_ROWS, CVSettings,
                                          HeldOut, Importance, class_scores,
                                          comparison_data, curve_data, display_score,
                                          importance_data, learning_curve_data,
                                          dense_array, feature_names_of, is_number,
                                          projection_2d, sample_index, search_series,
                                          take_rows)

__all__ = ["classification_figures", "regression_figures", "clustering_figures",
           "distributed_figures"]

log = logging.getLogger("shipyard.report")

#: above this many classes per-class curves get no legend (it would cover the plot)
LEGEND_CLASSES = 12


# -- drawing ----------------------------------------------------------------------------

def _colors(count: int) -> list[Any]:
    """Distinct colours: matplotlib's cycle for up to 10, tab20 (then a wheel) beyond."""
    from matplotlib import colormaps

    if count <= 10:
        return [f"C{i}" for i in range(count)]
    cmap = colormaps["tab20" if count <= 20 else "hsv"]
    return [cmap(i / (count if count > 20 else 20)) for i in range(count)]


def _safely(what: str, compute: Callable[[], Any]) -> Any:
    """``compute()``, or None with a warning: what several figures share is computed
    once, outside their blocks, and its failure must not fail the job either."""
    try:
        return compute()
    except Exception as err:  # noqa: BLE001 - a report is never worth failing the job
        log.warning("figures needing %s skipped: %s: %s", what, type(err).__name__, err)
        return None


def _draw_model_comparison(figures: FigureSet, result: dict[str, Any]) -> None:
    """``model_comparison``: a bar per model (:func:`comparison_data`), the best one
    highlighted."""
    data = comparison_data(result)
    names = data["names"]
    caption = (f"Each model's {data['label']} ({data['detail']}); the best model "
               f"({data['best']}) is highlighted.")
    with figures.figure("model_comparison", "Model comparison", caption=caption,
                        size=(max(4.0, 1.1 * len(names) + 2.0), 3.8)) as (fig, ax):
        colors = ["C1" if n == data["best"] else "C0" for n in names]
        bars = ax.bar(range(len(names)), data["heights"], yerr=data["errors"],
                      color=colors, capsize=4 if data["errors"] else 0, alpha=0.9)
        ax.set_xticks(range(len(names)), names)
        ax.bar_label(bars, fmt="%.4g", padding=2, fontsize="small")
        ax.set_ylabel(_wrap(data["label"]))
        ax.set_title(data["detail"], fontsize="small")
        ax.margins(y=0.15)
        if len(names) > 4:
            ax.tick_params(axis="x", labelrotation=30)


def _draw_search_results(figures: FigureSet, result: dict[str, Any]) -> None:
    """``search_results``: per model (rows) and searched parameter (columns), every
    candidate's score against the parameter's value; the chosen candidate starred.
    Nothing is drawn when no model searched more than one candidate."""
    key, what = _search_score(result)
    sign, label = display_score(result.get("scoring") or "score") \
        if key != "silhouette" else (1.0, "silhouette")
    panels = {}
    for name, model in result["models"].items():
        rows = model.get("search", {}).get("results") or []
        series = search_series(rows, key, sign)
        if len({str(r.get("params")) for r in rows}) > 1 and series:
            panels[name] = series
    if not panels:
        return
    ncols = max(len(s) for s in panels.values())
    caption = (f"{what} of every candidate each model's search tried, against each "
               "searched parameter; the chosen candidate is starred.")
    with figures.figure("search_results", "Search results", caption=caption,
                        size=(3.4 * ncols + 0.8, 2.8 * len(panels) + 0.6),
                        nrows=len(panels), ncols=ncols) as (fig, axes):
        grid = np.asarray(axes, dtype=object).reshape(len(panels), ncols)
        for row, (name, series) in enumerate(panels.items()):
            best = result["models"][name].get("best_params") or {}
            for col in range(ncols):
                ax = grid[row, col]
                if col >= len(series):
                    ax.set_visible(False)
                    continue
                param = list(series)[col]
                _draw_series(ax, series[param], series, best, sign)
                ax.set_title(f"{name}: {param}", fontsize="small")
                ax.set_ylabel(_wrap(label) if col == 0 else "", fontsize="small")


def _search_score(result: dict[str, Any]) -> tuple[str, str]:
    if result.get("task") == "clustering":
        return "silhouette", "Silhouette"
    if result.get("mode") == "distributed":
        return "validation", "Validation-holdout score"
    return "mean", "Mean CV score (error bars: std over the folds)"


def _draw_series(ax: Any, data: dict[str, Any], series: dict[str, Any],
                 best: dict[str, Any], sign: float) -> None:
    x, scores = np.asarray(data["x"], dtype="float64"), np.asarray(data["scores"])
    if data["rounds"] is not None:
        # halving: later rounds scored on more rows, so rounds are not comparable
        for r in sorted(set(data["rounds"])):
            mask = np.asarray(data["rounds"]) == r
            ax.plot(x[mask], scores[mask], "o", alpha=0.7, label=f"round {r}")
        ax.legend(fontsize="x-small")
    else:
        if data["stds"] is not None:
            ax.errorbar(x, scores, yerr=data["stds"], fmt="o", alpha=0.6, capsize=2)
        else:
            ax.plot(x, scores, "o", alpha=0.7)
        # the best score at each value (the others tuned): the parameter's own effect;
        # an error shown as itself is best where lowest
        values = np.unique(x)
        best_of = np.max if sign > 0 else np.min
        ax.plot(values, [best_of(scores[x == v]) for v in values], "-", color="C0",
                alpha=0.5)
    chosen = [i for i in range(len(x)) if all(
        _same(series[p]["values"][i], best.get(p)) for p in series)]
    if chosen:
        ax.plot(x[chosen[-1]], scores[chosen[-1]], "*", color="C3", markersize=14,
                label="chosen")
    if data["categorical"]:
        ax.set_xticks(range(len(data["categories"])), data["categories"],
                      fontsize="small")
    elif data["log"]:
        ax.set_xscale("log")
    elif len(np.unique(x)) <= 8:  # a grid's few values as ticks, not 2.2, 2.4, ...
        ax.set_xticks(np.unique(x), [f"{v:g}" for v in np.unique(x)], fontsize="small")


def _wrap(label: str) -> str:
    """An axis label on two lines where it has a remark in brackets."""
    return label.replace(" (", "\n(", 1)


def _same(a: Any, b: Any) -> bool:
    if is_number(a) and is_number(b):
        return math.isclose(float(a), float(b), rel_tol=1e-12)
    return a == b


def _draw_learning_curve(figures: FigureSet, model: Any, X: Any, y: Any,
                        settings: CVSettings, name: str) -> None:
    """``learning_curve``: the best model's train and validation scores against the
    training-set size (:func:`learning_curve_data`), mean with a ±std band."""
    sign, label = display_score(settings.scoring)
    caption = (f"Train and validation {label} of {name} against the number of training "
               f"rows ({settings.cv}-fold CV as in the search; bands: ±1 std).")
    with figures.figure("learning_curve", f"Learning curve ({name})", caption=caption
                        ) as (fig, ax):
        curve = learning_curve_data(model, X, y, settings)
        for scores, what, color in ((curve.train, "train", "C0"),
                                    (curve.validation, "validation", "C1")):
            mean = sign * np.nanmean(scores, axis=1)
            std = np.nanstd(scores, axis=1)
            ax.plot(curve.sizes, mean, "o-", color=color, label=what)
            ax.fill_between(curve.sizes, mean - std, mean + std, color=color, alpha=0.2)
        ax.set_xlabel("training rows")
        ax.set_ylabel(_wrap(label))
        ax.legend()


def _draw_confusion_matrix(figures: FigureSet, test_metrics: dict[str, Any], name: str,
                          rows: str) -> None:
    """``confusion_matrix``: counts of the best model's test rows, true class per row,
    predicted class per column (the job's ``test_metrics``)."""
    matrix = np.asarray(test_metrics["confusion_matrix"])
    labels = [str(v) for v in test_metrics["labels"]]
    side = min(9.0, 2.5 + 0.45 * len(labels))
    caption = f"Counts of {rows} by true (rows) and predicted (columns) class, for {name}."
    with figures.figure("confusion_matrix", f"Confusion matrix ({name})", caption=caption,
                        size=(side + 1.0, side)) as (fig, ax):
        image = ax.imshow(matrix, cmap="Blues")
        fig.colorbar(image, ax=ax, shrink=0.8)
        ticks = range(len(labels))
        ax.set_xticks(ticks, labels, rotation=45 if len(labels) > 4 else 0, ha="right"
                      if len(labels) > 4 else "center")
        ax.set_yticks(ticks, labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if len(labels) <= 30:  # beyond that, numbers would overlap
            threshold = matrix.max() / 2
            for (i, j), count in np.ndenumerate(matrix):
                ax.text(j, i, str(count), ha="center", va="center", fontsize="small",
                        color="white" if count > threshold else "black")


def _draw_curves(figures: FigureSet, y: Any, scores: np.ndarray, classes: Sequence[Any],
                name: str, rows: str) -> None:
    """``roc_curve`` and ``precision_recall``: the best model's curves on the test
    rows (:func:`curve_data`), AUC and average precision in the legends."""
    binary = len(classes) == 2
    # .item(): a NumPy scalar's repr reads np.int64(1) in the caption
    positive = classes[1].item() if hasattr(classes[1], "item") else classes[1]
    which = (f"of the positive class {positive!r}" if binary
             else "one-vs-rest for each class")
    for kind, figure, title, axes_labels, area in (
            ("roc", "roc_curve", "ROC curve", ("false positive rate",
                                               "true positive rate"), "AUC"),
            ("pr", "precision_recall", "Precision-recall curve", ("recall", "precision"),
             "AP")):
        caption = f"{title} of {name} on {rows}, {which}; {area} in the legend."
        with figures.figure(figure, f"{title} ({name})", caption=caption,
                            size=(5.6, 4.6)) as (fig, ax):
            curves = curve_data(kind, y, scores, classes)
            colors = _colors(len(curves))
            for curve, color in zip(curves, colors):
                # a precision-recall curve is a step function (as scikit-learn draws it)
                ax.plot(curve["x"], curve["y"], color=color, lw=1.5,
                        drawstyle="steps-post" if kind == "pr" else "default",
                        label=f"{curve['label']} ({area} {curve['area']:.3f})")
            if kind == "roc":
                ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="chance")
            ax.set_xlabel(axes_labels[0])
            ax.set_ylabel(axes_labels[1])
            ax.set_xlim(-0.01, 1.01)
            ax.set_ylim(-0.01, 1.01)
            if len(curves) <= LEGEND_CLASSES:
                ax.legend(fontsize="small", loc="lower right" if kind == "roc"
                          else "lower left")


def _draw_importance(figures: FigureSet, importance: Importance | None, name: str) -> None:
    """``feature_importance``: the top features by magnitude (:func:`importance_data`)."""
    if importance is None:
        return
    shown = len(importance.names)
    top = f"the top {shown} of {importance.total}" if shown < importance.total else \
        f"all {shown}"
    caption = (f"{importance.kind[0].upper() + importance.kind[1:]} of {top} "
               f"preprocessed features in {name}, largest magnitude first.")
    with figures.figure("feature_importance", f"Feature importance ({name})",
                        caption=caption, size=(6.4, max(3.0, 1.2 + 0.28 * shown))) as (fig, ax):
        positions = np.arange(shown)[::-1]  # largest at the top
        colors = ["C0" if v >= 0 else "C3" for v in importance.values]
        ax.barh(positions, importance.values, xerr=importance.errors, color=colors,
                capsize=2 if importance.errors is not None else 0)
        ax.set_yticks(positions, importance.names, fontsize="small")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlabel(importance.kind)


def _draw_class_separation(figures: FigureSet, model: Any, X_train: Any, X_test: Any,
                          y_test: Any, classes: Sequence[Any], seed: int | None) -> None:
    """``class_separation``: test rows on the first two principal components of the
    best pipeline's preprocessed features, coloured by true class; misclassified rows
    crossed."""
    rows = sample_index(len(X_test), SCATTER_ROWS, seed)
    shown = f"{len(rows)} of the test rows" if len(rows) < len(X_test) else "The test rows"
    caption = (f"{shown} on the first two principal components of the best pipeline's "
               "preprocessed features (fitted on the training rows), coloured by true "
               "class; crosses mark rows the model gets wrong.")
    with figures.figure("class_separation", "Class separation", caption=caption,
                        size=(6.4, 5.0)) as (fig, ax):
        X_rows, y_rows = take_rows(X_test, rows), np.asarray(y_test)[rows]
        projected = projection_2d(model, X_train, X_rows, seed)
        if projected is None:
            raise ValueError("fewer than two preprocessed features")
        coords, axis_labels = projected
        for label, color in zip(classes, _colors(len(classes))):
            mask = y_rows == label
            ax.scatter(coords[mask, 0], coords[mask, 1], s=12, color=color, alpha=0.7,
                       label=str(label), edgecolors="none")
        wrong = np.asarray(model.predict(X_rows)) != y_rows
        if wrong.any():
            ax.scatter(coords[wrong, 0], coords[wrong, 1], s=30, marker="x", color="black",
                       linewidths=0.8, label=f"misclassified ({int(wrong.sum())})")
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel(axis_labels[1])
        if len(classes) <= LEGEND_CLASSES:
            ax.legend(fontsize="small", markerscale=1.5)


def _draw_regression(figures: FigureSet, rows: HeldOut, name: str) -> None:
    """``predicted_vs_actual`` and ``residuals`` of the best regressor's test rows."""
    from sklearn import metrics

    y, predicted = np.asarray(rows.y, dtype="float64"), np.asarray(rows.predicted,
                                                                    dtype="float64")
    where = rows.describe()
    caption = (f"{name}'s predictions against the true values of {where}; the dashed line "
               "is a perfect prediction.")
    with figures.figure("predicted_vs_actual", f"Predicted vs actual ({name})",
                        caption=caption, size=(5.4, 5.0)) as (fig, ax):
        points = sample_index(len(y), SCATTER_ROWS)
        ax.scatter(y[points], predicted[points], s=12, alpha=0.6, edgecolors="none")
        low, high = np.nanmin([y.min(), predicted.min()]), np.nanmax([y.max(),
                                                                      predicted.max()])
        ax.plot([low, high], [low, high], "--", color="grey", lw=1)
        rmse = float(np.sqrt(metrics.mean_squared_error(y, predicted)))
        ax.text(0.03, 0.97, f"R² = {metrics.r2_score(y, predicted):.3f}\nRMSE = {rmse:.4g}",
                transform=ax.transAxes, va="top", fontsize="small",
                bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8})
        ax.set_xlabel("actual")
        ax.set_ylabel("predicted")
    caption = (f"Residuals (actual - predicted) of {name} on {where}: against the "
               "prediction (left) and their distribution (right).")
    with figures.figure("residuals", f"Residuals ({name})", caption=caption,
                        size=(8.8, 3.8), ncols=2) as (fig, axes):
        left, right = np.asarray(axes).ravel()  # a 1x2 grid comes unsqueezed
        residuals = y - predicted
        points = sample_index(len(y), SCATTER_ROWS)
        left.scatter(predicted[points], residuals[points], s=12, alpha=0.6,
                     edgecolors="none")
        left.axhline(0, color="grey", ls="--", lw=1)
        left.set_xlabel("predicted")
        left.set_ylabel("residual")
        right.hist(residuals, bins=min(40, max(10, len(residuals) // 10)), color="C0",
                   alpha=0.8)
        right.axvline(0, color="grey", ls="--", lw=1)
        right.set_xlabel("residual")
        right.set_ylabel("rows")


# -- per task ---------------------------------------------------------------------------

def _classes_of(model: Any, result: dict[str, Any]) -> list[Any]:
    classes = getattr(model, "classes_", None)
    return list(classes) if classes is not None else list(result.get("classes") or [])


def classification_figures(figures: FigureSet, result: dict[str, Any], model: Any,
                           X_train: Any, y_train: Any, X_test: Any, y_test: Any,
                           settings: CVSettings) -> None:
    """Every classification figure of an in-memory job (see the module docstring).

    Parameters
    ----------
    figures : FigureSet
        Where to draw (nothing is computed when it is disabled).
    result : dict
        The job's result so far: ``models`` (with ``cv_mean``, ``test_metrics``,
        ``search.results``), ``best_model``, ``scoring``, ``task``.
    model : Pipeline
        The best pipeline, refitted on the training rows.
    X_train, y_train, X_test, y_test
        The job's split.
    settings : CVSettings
        The search's folds, scorer, seed and joblib backend.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> X, y = load_iris(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X[::2], y[::2])
    >>> result = {"task": "classification", "scoring": "accuracy", "best_model": "lr",
    ...           "models": {"lr": {"cv_mean": 0.95, "cv_std": 0.02, "cv_scores": [0.95],
    ...                             "test_metrics": {"labels": [0, 1, 2],
    ...                                              "confusion_matrix": [[25, 0, 0],
    ...                                              [0, 23, 2], [0, 1, 24]]}}}}
    >>> figures = FigureSet(tempfile.mkdtemp(), enabled=False)
    >>> classification_figures(figures, result, model, X[::2], y[::2], X[1::2], y[1::2],
    ...                        CVSettings(cv=3, scoring="accuracy"))
    >>> figures.entries
    []
    """
    if not figures.enabled:
        return
    best = result["best_model"]
    classes = _classes_of(model, result)
    _draw_class_separation(figures, model, X_train, X_test, y_test, classes,
                          settings.random_state)
    _draw_learning_curve(figures, model, X_train, y_train, settings, best)
    _draw_model_comparison(figures, result)
    rows = f"the {len(y_test)} test rows"
    _draw_confusion_matrix(figures, result["models"][best]["test_metrics"], best, rows)
    scores = _safely("class scores", lambda: class_scores(model, X_test, classes))
    if scores is not None:
        _draw_curves(figures, y_test, scores, classes, best, rows)
    _draw_importance(figures, _importance(model, X_test, y_test, settings), best)
    _draw_search_results(figures, result)


def regression_figures(figures: FigureSet, result: dict[str, Any], model: Any,
                       X_train: Any, y_train: Any, X_test: Any, y_test: Any,
                       settings: CVSettings) -> None:
    """Every regression figure of an in-memory job; parameters as
    :func:`classification_figures`.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.linear_model import Ridge
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = Ridge().fit(X[::2], y[::2])
    >>> figures = FigureSet(tempfile.mkdtemp(), enabled=False)
    >>> regression_figures(figures, {"best_model": "ridge"}, model, X[::2], y[::2],
    ...                    X[1::2], y[1::2], CVSettings(cv=3, scoring="r2"))
    >>> figures.entries
    []
    """
    if not figures.enabled:
        return
    best = result["best_model"]
    _draw_learning_curve(figures, model, X_train, y_train, settings, best)
    _draw_model_comparison(figures, result)
    predicted = _safely("test predictions", lambda: np.asarray(model.predict(X_test)))
    if predicted is not None:
        _draw_regression(figures, HeldOut(np.asarray(y_test), predicted, total=len(y_test)),
                        best)
    _draw_importance(figures, _importance(model, X_test, y_test, settings), best)
    _draw_search_results(figures, result)


def _importance(model: Any, X_test: Any, y_test: Any, settings: CVSettings
                ) -> Importance | None:
    """Importance of the preprocessed features: permutation importance (the fallback)
    permutes the final estimator's inputs, so every kind is labelled alike."""
    def compute() -> Importance | None:
        estimator = model[-1] if hasattr(model, "steps") else model
        names = feature_names_of(model)
        found = importance_data(estimator, names)
        if found is not None:
            return found
        # preprocess only the rows permutation importance scores, not all test rows
        rows = sample_index(len(y_test), IMPORTANCE_ROWS, settings.random_state)
        X_rows, y_rows = take_rows(X_test, rows), np.asarray(y_test)[rows]
        if hasattr(model, "steps") and len(model.steps) > 1:
            X_rows = dense_array(model[:-1].transform(X_rows))
        return importance_data(estimator, names, X_rows, y_rows, settings)

    return _safely("feature importance", compute)


def clustering_figures(figures: FigureSet, result: dict[str, Any], model: Any, X: Any
                       ) -> None:
    """The clustering figures: ``clusters`` (a 2-D PCA scatter of the rows coloured by
    the best model's labels), ``cluster_sizes``, ``model_comparison`` (silhouettes)
    and ``search_results``.

    Parameters
    ----------
    figures : FigureSet
    result : dict
        The clustering job's result (``models`` with ``silhouette`` and
        ``search.results``, ``best_model``).
    model : Pipeline
        The best pipeline, fitted on ``X`` (its last step's ``labels_`` label ``X``'s
        rows).
    X : DataFrame or array
        The rows it was fitted on.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> X = np.random.default_rng(0).normal(size=(60, 3))
    >>> model = make_pipeline(StandardScaler(), KMeans(2, n_init=2, random_state=0)).fit(X)
    >>> result = {"task": "clustering", "best_model": "km",
    ...           "models": {"km": {"silhouette": 0.3, "search": {"results": []}}}}
    >>> figures = FigureSet(tempfile.mkdtemp())
    >>> clustering_figures(figures, result, model, X)
    >>> [e["name"] for e in figures.entries]
    ['clusters', 'cluster_sizes', 'model_comparison']
    """
    if not figures.enabled:
        return
    best = result["best_model"]
    labels = _safely("cluster labels", lambda: _labels(model, X))
    if labels is not None:
        _draw_clusters(figures, model, X, labels, best)
        _draw_cluster_sizes(figures, labels, best)
    _draw_model_comparison(figures, result)
    _draw_search_results(figures, result)


def _labels(model: Any, X: Any) -> np.ndarray:
    estimator = model[-1] if hasattr(model, "steps") else model
    labels = getattr(estimator, "labels_", None)
    if labels is None or len(labels) != len(X):
        labels = model.predict(X)
    return np.asarray(labels)


def _draw_clusters(figures: FigureSet, model: Any, X: Any, labels: np.ndarray,
                   name: str) -> None:
    rows = sample_index(len(X), SCATTER_ROWS)
    shown = f"{len(rows)} of the {len(X)} rows" if len(rows) < len(X) else "The rows"
    caption = (f"{shown} on the first two principal components of the preprocessed "
               f"features, coloured by {name}'s cluster (grey: noise).")
    with figures.figure("clusters", f"Clusters ({name})", caption=caption,
                        size=(6.4, 5.0)) as (fig, ax):
        projected = projection_2d(model, X, take_rows(X, rows))
        if projected is None:
            raise ValueError("fewer than two preprocessed features")
        coords, axis_labels = projected
        shown_labels = labels[rows]
        found = sorted(set(shown_labels.tolist()) - {-1})
        for label, color in zip(found, _colors(len(found))):
            mask = shown_labels == label
            ax.scatter(coords[mask, 0], coords[mask, 1], s=12, color=color, alpha=0.7,
                       label=f"cluster {label}", edgecolors="none")
        noise = shown_labels == -1
        if noise.any():
            ax.scatter(coords[noise, 0], coords[noise, 1], s=10, color="lightgrey",
                       label="noise", edgecolors="none")
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel(axis_labels[1])
        if len(found) <= LEGEND_CLASSES:
            ax.legend(fontsize="small", markerscale=1.5)


def _draw_cluster_sizes(figures: FigureSet, labels: np.ndarray, name: str) -> None:
    caption = f"Rows in each of {name}'s clusters (noise: rows in none)."
    values, counts = np.unique(labels, return_counts=True)
    with figures.figure("cluster_sizes", f"Cluster sizes ({name})", caption=caption,
                        size=(max(4.0, 0.5 * len(values) + 2.5), 3.6)) as (fig, ax):
        names = ["noise" if v == -1 else str(v) for v in values]
        colors = ["lightgrey" if v == -1 else "C0" for v in values]
        # positions, not the names: labels "0", "1" would be read as numbers
        bars = ax.bar(range(len(values)), counts, color=colors)
        ax.set_xticks(range(len(values)), names)
        ax.bar_label(bars, padding=2, fontsize="small")
        ax.set_xlabel("cluster")
        ax.set_ylabel("rows")
        ax.margins(y=0.12)


def distributed_figures(figures: FigureSet, result: dict[str, Any], model: Any,
                        feature_names: Sequence[str], rows: HeldOut | None) -> None:
    """The figures of a job trained on the partitions, from what it holds anyway.

    No figure here reads the data again: the comparison and search results come from
    ``result``, the confusion matrix from the test metrics (all test rows), the
    importance from the final estimator's coefficients (or ``feature_importances_``),
    and the ROC/precision-recall or predicted-vs-actual figures from ``rows``, the
    best model's predictions of a bounded sample of the test rows.

    Parameters
    ----------
    figures : FigureSet
    result : dict
        The job's result (``mode: distributed``).
    model : Pipeline
        The best pipeline (``model`` its last step).
    feature_names : list of str
        The features, in order (preprocessing on partitions keeps the columns).
    rows : HeldOut, optional
        A sample of the test rows' targets, predictions and class scores.

    Examples
    --------
    >>> import tempfile
    >>> result = {"task": "regression", "mode": "distributed", "scoring": "r2",
    ...           "best_model": "sgd", "models": {"sgd": {"validation_score": 0.5,
    ...                                                   "search": {"results": []}}}}
    >>> figures = FigureSet(tempfile.mkdtemp())
    >>> y = np.arange(20.0)
    >>> distributed_figures(figures, result, None, ["a"], HeldOut(y, y + 1, total=20))
    >>> [e["name"] for e in figures.entries]
    ['model_comparison', 'predicted_vs_actual', 'residuals']
    """
    if not figures.enabled:
        return
    best = result["best_model"]
    _draw_model_comparison(figures, result)
    if result.get("task") == "classification":
        _draw_confusion_matrix(figures, result["models"][best]["test_metrics"], best,
                              f"all {result.get('rows', {}).get('test', '')} test rows")
        if rows is not None and rows.scores is not None:
            _draw_curves(figures, rows.y, rows.scores, _classes_of(None, result), best,
                        rows.describe())
    elif rows is not None:
        _draw_regression(figures, rows, best)
    estimator = model[-1] if hasattr(model, "steps") else model
    if estimator is not None:
        _draw_importance(figures, _safely("feature importance", lambda: importance_data(
            estimator, list(feature_names))), best)
    _draw_search_results(figures, result)
