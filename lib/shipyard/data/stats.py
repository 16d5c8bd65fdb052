"""Whole-dataset statistics, exactly as pandas computes them, on Dask.

Mean, min and max are plain reductions. Dask's median is approximate, so
:func:`exact_quantile` finds the exact order statistics in two passes: an approximate
quantile brackets the answer, one more pass counts the values below the bracket and
gathers the few inside it, and the answer is read off the sorted bracket (widened and
retried in the rare case it missed). The mode is the most frequent value, the smallest
one on ties, as ``Series.mode()[0]`` is.
"""

from __future__ import annotations

import math
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

__all__ = ["exact_quantile", "mode", "column_statistics"]


def _order_statistics(series: dd.Series, ranks: list[int], count: int) -> dict[int, Any]:
    """The values at 0-based ``ranks`` of the sorted non-null series."""
    centre = (min(ranks) + max(ranks)) / 2 / max(count - 1, 1)
    width = max(0.01, 2000 / max(count, 1))
    for _ in range(6):
        low_q, high_q = max(centre - width, 0.0), min(centre + width, 1.0)
        if low_q == 0.0 and high_q == 1.0:
            values = np.sort(series.compute().to_numpy())
            return {rank: values[rank] for rank in ranks}
        low, high = (series.quantile([low_q, high_q]).compute().to_numpy())
        below = (series < low).sum()
        window = series[(series >= low) & (series <= high)]
        below, inside = dask.compute(below, window)
        inside = np.sort(inside.to_numpy())
        if all(below <= rank < below + len(inside) for rank in ranks):
            return {rank: inside[rank - below] for rank in ranks}
        width *= 4  # the approximate bracket missed (skewed data): widen and retry
    values = np.sort(series.compute().to_numpy())
    return {rank: values[rank] for rank in ranks}


def exact_quantile(series: dd.Series, q: float = 0.5) -> float:
    """The exact ``q`` quantile of a Dask Series, with pandas' linear interpolation.

    Examples
    --------
    >>> s = pd.Series([5.0, 1.0, None, 3.0, 9.0, 7.0, 2.0])
    >>> exact_quantile(dd.from_pandas(s, npartitions=3)), float(s.median())
    (4.0, 4.0)
    """
    series = series.dropna()
    count = int(series.count().compute())
    if count == 0:
        return float("nan")
    position = (count - 1) * q
    low, high = math.floor(position), math.ceil(position)
    values = _order_statistics(series, sorted({low, high}), count)
    fraction = position - low
    return float(values[low] + (values[high] - values[low]) * fraction)


def mode(series: dd.Series) -> Any:
    """The most frequent non-null value; on ties the first in pandas' order - the
    categories' order for a categorical, else the smallest (pandas' ``mode()[0]``)."""
    counts = series.dropna().value_counts().compute()
    counts = counts[counts > 0]  # a categorical's value_counts lists absent categories too
    if counts.empty:
        return None
    top = set(counts[counts == counts.max()].index)
    if isinstance(counts.index.dtype, pd.CategoricalDtype):
        return next(c for c in counts.index.dtype.categories if c in top)
    return sorted(top)[0]


def column_statistics(frame: dd.DataFrame, wanted: dict[str, str]) -> dict[str, Any]:
    """Compute ``{column: statistic}`` (mean, median, mode, min, max) over the whole frame.

    The plain reductions share one pass over the data; medians and modes take their own.
    """
    plain = {c: getattr(frame[c], stat)() for c, stat in wanted.items()
             if stat in ("mean", "min", "max")}
    values = dict(zip(plain, dask.compute(*plain.values()))) if plain else {}
    for column, stat in wanted.items():
        if stat == "median":
            values[column] = exact_quantile(frame[column], 0.5)
        elif stat == "mode":
            values[column] = mode(frame[column])
    return {c: (v.item() if isinstance(v, np.generic) else v) for c, v in values.items()}
