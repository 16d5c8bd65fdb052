"""Inspect first: ``info()`` and ``describe()`` of a job's input, computed on the cluster.

Built lazily (:func:`profile_tasks`) so it is computed in the same pass as the job's
output, then turned into plain JSON (:func:`finish_profile`)::

    "profile": {
      "rows": 1000000, "columns": 8, "memory_bytes": 76000000,
      "dtypes": {"age": "float64", "city": "string", ...},
      "non_null": {"age": 987000, ...}, "missing": {"age": 13000, ...},
      "missing_fraction": {"age": 0.013, ...},
      "describe": {"age": {"count": ..., "mean": ..., "std": ..., "min": ...,
                           "25%": ..., "50%": ..., "75%": ..., "max": ...},
                   "city": {"count": ..., "unique": ..., "top": ..., "freq": ...}}
    }

Quartiles of numeric columns are Dask's approximate percentiles, and ``unique`` of text
columns an approximate (HyperLogLog) count; both are labelled so in the output.
"""

from __future__ import annotations

import math
from typing import Any

import dask.dataframe as dd
import numpy as np
import pandas as pd
from pandas.api import types as ptypes

__all__ = ["profile_tasks", "finish_profile"]


def _numeric(dtype: Any) -> bool:
    return ptypes.is_numeric_dtype(dtype) and not ptypes.is_bool_dtype(dtype)


def profile_tasks(frame: dd.DataFrame) -> dict[str, Any]:
    """The lazy pieces of the profile, to compute together with other work."""
    numeric = [c for c in frame.columns if _numeric(frame[c].dtype)]
    other = [c for c in frame.columns if c not in numeric]
    tasks: dict[str, Any] = {
        "rows": frame.shape[0],
        "non_null": frame.count(),
        "memory": frame.memory_usage(deep=True, index=False),
    }
    if numeric:
        # Dask's describe cannot take pandas' nullable Int64/Float64 columns (its
        # percentiles call NumPy on their dtype); as float64 they describe the same
        masked = {c: "float64" for c in numeric if ptypes.is_extension_array_dtype(
            frame[c].dtype) and not isinstance(frame[c].dtype, pd.ArrowDtype)}
        numbers = frame[numeric].astype(masked) if masked else frame[numeric]
        tasks["numeric"] = numbers.describe()
    for column in other:
        series = frame[column]
        tasks[f"unique:{column}"] = series.nunique_approx()
        if isinstance(series.dtype, pd.CategoricalDtype) or ptypes.is_bool_dtype(series.dtype):
            tasks[f"top:{column}"] = series.value_counts().nlargest(1)
        elif ptypes.is_datetime64_any_dtype(series.dtype):
            tasks[f"min:{column}"] = series.min()
            tasks[f"max:{column}"] = series.max()
    return tasks


def _plain(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return str(pd.Timestamp(value))
    return value


def finish_profile(frame: dd.DataFrame, computed: dict[str, Any]) -> dict[str, Any]:
    """Turn the computed pieces into the JSON profile."""
    rows = int(computed["rows"])
    non_null = {c: int(v) for c, v in computed["non_null"].items()}
    describe: dict[str, dict[str, Any]] = {}
    if "numeric" in computed:
        for column, stats in computed["numeric"].to_dict().items():
            describe[column] = {k: _plain(v) for k, v in stats.items()}
            describe[column]["quartiles"] = "approximate"
    for column in frame.columns:
        if column in describe:
            continue
        entry: dict[str, Any] = {"count": non_null[column],
                                 "unique_approx": int(computed[f"unique:{column}"])}
        top = computed.get(f"top:{column}")
        if top is not None and len(top):
            entry.update(top=_plain(top.index[0]), freq=int(top.iloc[0]))
        for key in ("min", "max"):
            if f"{key}:{column}" in computed:
                entry[key] = _plain(computed[f"{key}:{column}"])
        describe[column] = entry
    return {
        "rows": rows,
        "columns": len(frame.columns),
        "memory_bytes": int(computed["memory"].sum()),
        "dtypes": {c: str(frame[c].dtype) for c in frame.columns},
        "non_null": non_null,
        "missing": {c: rows - n for c, n in non_null.items()},
        "missing_fraction": {c: (rows - n) / rows if rows else 0.0 for c, n in non_null.items()},
        "describe": describe,
    }
