"""Test-set metrics of a fitted model, as JSON-able dicts.

Classification: accuracy, precision, recall and F1 (binary: of the positive class, the
larger label; multiclass: macro averages), ROC AUC (binary from the positive class's
probability or decision function; multiclass one-vs-rest on probabilities), the
confusion matrix (rows true, columns predicted, in ``labels`` order) and
``classification_report``. Regression: MAE, RMSE, R2. Clustering: silhouette.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["classification_metrics", "classification_metrics_of", "regression_metrics",
           "regression_metrics_of", "silhouette", "plain_value"]


def _scores_for_auc(model: Any, X: Any, labels: list) -> np.ndarray | None:
    if hasattr(model, "predict_proba"):
        try:
            return model.predict_proba(X)
        except (AttributeError, NotImplementedError):  # e.g. SVC(probability=False)
            pass
    if hasattr(model, "decision_function") and len(labels) == 2:
        return model.decision_function(X)
    return None


def classification_metrics(model: Any, X: Any, y: Any) -> dict[str, Any]:
    """Metrics of a fitted classifier (or pipeline) on ``X, y``."""
    labels = list(model.classes_)
    return classification_metrics_of(y, model.predict(X), _scores_for_auc(model, X, labels),
                                      labels)


def classification_metrics_of(y: Any, predicted: Any, scores: np.ndarray | None,
                              classes: list) -> dict[str, Any]:
    """The same metrics from the true labels, the predictions and, for ROC AUC, the class
    probabilities (or a binary decision function), all in memory."""
    from sklearn import metrics as m

    labels = [plain_value(v) for v in classes]
    binary = len(labels) == 2
    average = "binary" if binary else "macro"
    extra = {"pos_label": labels[1]} if binary else {}
    result: dict[str, Any] = {
        "accuracy": float(m.accuracy_score(y, predicted)),
        "precision": float(m.precision_score(y, predicted, average=average, zero_division=0,
                                             **extra)),
        "recall": float(m.recall_score(y, predicted, average=average, zero_division=0,
                                       **extra)),
        "f1": float(m.f1_score(y, predicted, average=average, zero_division=0, **extra)),
        "average": average if not binary else f"binary (positive class {labels[1]!r})",
    }
    if scores is not None and len(np.unique(y)) == len(labels):
        if binary:
            positive = scores[:, 1] if scores.ndim == 2 else scores
            result["roc_auc"] = float(m.roc_auc_score(y, positive))
        elif scores.ndim == 2:
            result["roc_auc"] = float(m.roc_auc_score(y, scores, multi_class="ovr",
                                                      labels=classes))
    result["labels"] = labels
    result["confusion_matrix"] = m.confusion_matrix(y, predicted, labels=classes).tolist()
    report = m.classification_report(y, predicted, labels=classes, output_dict=True,
                                      zero_division=0)
    result["classification_report"] = {str(k): _floats(v) for k, v in report.items()}
    return result


def regression_metrics(model: Any, X: Any, y: Any) -> dict[str, float]:
    """MAE, RMSE and R2 of a fitted regressor (or pipeline) on ``X, y``."""
    return regression_metrics_of(y, model.predict(X))


def regression_metrics_of(y: Any, predicted: Any) -> dict[str, float]:
    """MAE, RMSE and R2 from the true values and the predictions, in memory."""
    from sklearn import metrics as m

    return {"mae": float(m.mean_absolute_error(y, predicted)),
            "rmse": float(np.sqrt(m.mean_squared_error(y, predicted))),
            "r2": float(m.r2_score(y, predicted))}


def silhouette(X: Any, labels: np.ndarray, sample: int = 5000, random_state: int = 0
               ) -> float | None:
    """Silhouette of ``labels`` on ``X`` (a sample of at most ``sample`` rows, seeded);
    None when there are fewer than two clusters (DBSCAN may find one, or only noise)."""
    from sklearn.metrics import silhouette_score

    found = set(np.unique(labels)) - {-1}
    if len(found) < 2 or len(found) >= len(labels):
        return None
    size = sample if len(labels) > sample else None
    return float(silhouette_score(X, labels, sample_size=size, random_state=random_state))


def plain_value(value: Any) -> Any:
    """A NumPy scalar as the Python one (for JSON, and equality with the spec's values)."""
    return value.item() if isinstance(value, np.generic) else value


def _floats(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    return float(value) if isinstance(value, (float, np.floating, int, np.integer)) else value
