"""NumPy basics on Dask arrays, for ``python`` jobs: statistics, normalisation,
matrix-vector products - the same numbers NumPy gives, computed across the cluster.

Examples
--------
>>> import dask.array as da, numpy as np
>>> x = da.from_array(np.arange(12.0).reshape(6, 2), chunks=(2, 2))
>>> stats = column_statistics(x)
>>> stats["mean"].tolist(), stats["std"].round(4).tolist()
([5.0, 6.0], [3.4157, 3.4157])
>>> z = standardize(x, stats)
>>> np.allclose(z.mean(axis=0).compute(), 0), np.allclose(z.std(axis=0).compute(), 1)
(True, True)
>>> matvec(x, [1.0, -1.0]).compute().tolist()
[-1.0, -1.0, -1.0, -1.0, -1.0, -1.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import dask
import dask.array as da
import numpy as np
import pandas as pd

__all__ = ["column_statistics", "standardize", "matvec", "from_frame"]

STATISTICS = ("mean", "std", "min", "max", "sum")


def column_statistics(x: da.Array, names: Sequence[str] | None = None,
                      ddof: int = 0) -> pd.DataFrame:
    """Mean, standard deviation, min, max and sum of every column, in one pass.

    Parameters
    ----------
    x : dask array, 2-d
    names : column names, optional
    ddof : int
        As NumPy's ``std`` (0: population, the default there and here).

    Returns
    -------
    pandas.DataFrame
        One row per column, one column per statistic.
    """
    mean, std, low, high, total = dask.compute(
        x.mean(axis=0), x.std(axis=0, ddof=ddof), x.min(axis=0), x.max(axis=0), x.sum(axis=0))
    index = list(names) if names is not None else [f"x{i}" for i in range(x.shape[1])]
    return pd.DataFrame({"mean": mean, "std": std, "min": low, "max": high, "sum": total},
                        index=index)


def standardize(x: da.Array, stats: pd.DataFrame | None = None) -> da.Array:
    """``(x - mean) / std`` per column: zero mean, unit variance (lazy).

    ``stats`` from :func:`column_statistics` saves the pass that computes them.
    Constant columns (std 0) become 0 rather than NaN.
    """
    if stats is None:
        stats = column_statistics(x)
    std = stats["std"].to_numpy()
    return (x - stats["mean"].to_numpy()) / np.where(std == 0, 1.0, std)


def matvec(x: da.Array, w: Sequence[float] | np.ndarray) -> da.Array:
    """``x @ w`` with each row block multiplied where it lives (lazy).

    Columns are gathered into one chunk first, so the product needs no exchange of
    partial sums between workers.
    """
    weights = np.asarray(w, dtype=float)
    if weights.shape != (x.shape[1],):
        raise ValueError(f"w has shape {weights.shape}; x has {x.shape[1]} columns")
    return x.rechunk({1: -1}) @ weights


def from_frame(frame, columns: Sequence[str] | None = None) -> da.Array:
    """The numeric columns of a Dask DataFrame as a 2-d array with known chunk sizes."""
    selected = frame[list(columns)] if columns is not None else frame
    return selected.to_dask_array(lengths=True).astype(float)
