"""Compare models on their cross-validation fold scores with SciPy.

Every pair gets two paired t-tests on the per-fold score differences:

- the ordinary paired t-test (``scipy.stats.ttest_rel``), and
- the corrected resampled t-test of Nadeau and Bengio (2003): k-fold training sets
  overlap, so the fold differences are correlated and the ordinary test is too eager.
  The variance of the mean difference is inflated from ``var/k`` to
  ``(1/k + n_test/n_train) * var``, with ``n_test``/``n_train`` the rows a fold tests
  and trains on; the statistic has ``k - 1`` degrees of freedom.

The verdict uses the corrected test: "forest is better than logreg, p = 0.003" when its
two-sided p-value is below ``alpha``, otherwise "no significant difference".
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["corrected_ttest", "compare_models"]


def corrected_ttest(a: np.ndarray, b: np.ndarray, n_train: int, n_test: int
                    ) -> tuple[float, float]:
    """The corrected resampled t-test of fold scores ``a`` against ``b``.

    Returns
    -------
    (t, p) : the statistic and its two-sided p-value (NaN when the scores never differ).

    Examples
    --------
    >>> a = np.array([0.90, 0.92, 0.91, 0.93, 0.92]); b = a - [0.01, 0.03, 0.02, 0.02, 0.01]
    >>> t, p = corrected_ttest(a, b, n_train=400, n_test=100)
    >>> round(t, 3), round(p, 4)
    (3.207, 0.0327)
    """
    differences = np.asarray(a, dtype="float64") - np.asarray(b, dtype="float64")
    k = len(differences)
    variance = np.var(differences, ddof=1)
    if k < 2 or variance == 0 or not np.isfinite(variance):
        return float("nan"), float("nan")
    t = differences.mean() / np.sqrt((1 / k + n_test / n_train) * variance)
    p = 2 * stats.t.sf(abs(t), df=k - 1)
    return float(t), float(p)


def compare_models(fold_scores: dict[str, np.ndarray], n_train: int, n_test: int,
                   alpha: float, scoring: str) -> list[dict[str, Any]]:
    """One entry per pair of models: means, both tests and the verdict.

    Parameters
    ----------
    fold_scores : dict of name -> array
        Each model's scores on the same CV folds (higher is better, as scikit-learn's
        scorers are).
    n_train, n_test : int
        Rows one fold trains and tests on.
    alpha : float
        Significance level of the verdict.
    scoring : str
        The scorer's name, for the verdict's wording.
    """
    pairs = []
    for first, second in itertools.combinations(fold_scores, 2):
        a, b = (np.asarray(fold_scores[n], dtype="float64") for n in (first, second))
        if len(a) != len(b) or np.isnan(a).any() or np.isnan(b).any():
            pairs.append({"models": [first, second], "verdict": "not compared (failed folds)"})
            continue
        if np.array_equal(a, b):
            paired_t = paired_p = float("nan")
        else:
            result = stats.ttest_rel(a, b)
            paired_t, paired_p = float(result.statistic), float(result.pvalue)
        t, p = corrected_ttest(a, b, n_train, n_test)
        better, worse = (first, second) if a.mean() >= b.mean() else (second, first)
        if np.isfinite(p) and p < alpha:
            verdict = f"{better} is better than {worse} ({scoring}), p = {_p(p)}"
        else:
            shown = _p(p) if np.isfinite(p) else "n/a (identical fold scores)"
            verdict = f"no significant difference between {first} and {second} " \
                      f"({scoring}), p = {shown}"
        pairs.append({
            "models": [first, second],
            "mean_difference": float(a.mean() - b.mean()),
            "paired_t": {"statistic": _none(paired_t), "p_value": _none(paired_p)},
            "corrected_t": {"statistic": _none(t), "p_value": _none(p), "df": len(a) - 1},
            "significant": bool(np.isfinite(p) and p < alpha),
            "alpha": alpha,
            "verdict": verdict,
        })
    return pairs


def _p(p: float) -> str:
    return f"{p:.3g}" if p >= 0.001 else f"{p:.1e}"


def _none(value: float) -> float | None:
    return value if np.isfinite(value) else None
