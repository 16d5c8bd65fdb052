"""The figures of a ``dataframe`` job, from numbers computed on its Dask cluster.

- ``histograms``: each numeric column of the main input (as read: the columns the job
  needs, after pushed-down filters), as a grid of small multiples (at most
  :data:`MAX_COLUMNS`);
- ``missing_values``: missing values per column (the profile's, else counted here);
- ``correlation``: Pearson correlations of those numeric columns (numbers written in
  the cells when there are few);
- ``rows_per_step``: rows read and left after each step (counted by the job anyway).

The histograms and correlations are one Dask tree reduction over a read of the numeric
columns only: each partition gives its histogram counts and, per pair of columns, the
moments of the rows where both are present (:func:`pair_moments`); counts add up and
moments merge (:func:`merge_moments`), so only those small arrays leave the workers. The
correlations are then those of pandas' ``DataFrame.corr()`` (Pearson, over the rows where
both columns are present), a little more exact; Dask's own ``DataFrame.corr()`` alone
costs three times this whole reduction. Histograms need each column's
range first: the profile's minimum and maximum when the job profiles its input (then one
pass computes every histogram and the correlations together), else one pass finds the
ranges, the correlations and the missing counts, and a second the histograms
(:func:`frame_figure_data`). Infinities are left out like missing values.

The numbers each figure plots come from small pure functions (:func:`histogram_spec`,
:func:`histogram_counts`, :func:`correlation_from_moments`, :func:`missing_bars`,
:func:`step_rows`) that a test compares with NumPy and pandas on the same data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.api import types as ptypes

__all__ = ["MAX_COLUMNS", "BINS", "HistogramSpec", "FrameFigureData", "plottable",
           "figure_columns", "histogram_spec", "histogram_counts",
           "pair_moments", "merge_moments", "correlation_from_moments",
           "ranges_from_describe", "missing_bars", "step_rows", "frame_figure_data",
           "draw_dataframe_figures"]

#: Columns histogrammed and correlated, at most (the first ones, in the input's order).
MAX_COLUMNS = 16
#: Equal-width bins of a histogram of a float column (or of a wide integer range).
BINS = 30
#: Integer columns spanning at most this many values get one bin per value.
MAX_INTEGER_BINS = 50
#: Correlation matrices up to this many columns have their numbers written in the cells.
ANNOTATE_UP_TO = 8
#: Bars of the missing-values figure, at most (the columns missing the most).
MAX_MISSING_BARS = 40


# -- which columns, as which numbers ------------------------------------------------------

def plottable(dtype: Any) -> bool:
    """Whether a column of ``dtype`` can be histogrammed: numbers and booleans, NumPy,
    nullable or Arrow-backed (decimals too), not complex numbers or timedeltas.

    Examples
    --------
    >>> [plottable(t) for t in ("float64", "Int64", "boolean", "object", "complex128")]
    [True, True, True, False, False]
    >>> plottable(pd.ArrowDtype(pa.int32())), plottable(pd.ArrowDtype(pa.string()))
    (True, False)
    """
    if isinstance(dtype, pd.ArrowDtype):
        kind = dtype.pyarrow_dtype
        return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind)
                    or pa.types.is_boolean(kind) or pa.types.is_decimal(kind))
    try:
        dtype = pd.api.types.pandas_dtype(dtype)
    except TypeError:
        return False
    if ptypes.is_bool_dtype(dtype):
        return True
    return (ptypes.is_numeric_dtype(dtype) and not ptypes.is_complex_dtype(dtype)
            and not ptypes.is_timedelta64_dtype(dtype))


def figure_columns(dtypes: Mapping[str, Any], limit: int = MAX_COLUMNS) -> tuple[list[str], int]:
    """The columns to histogram and correlate (the first ``limit`` plottable ones, in
    order) and how many plottable columns there are in all."""
    columns = [str(c) for c, t in dtypes.items() if plottable(t)]
    return columns[:limit], len(columns)


def _is_boolean(dtype: Any) -> bool:
    if isinstance(dtype, pd.ArrowDtype):
        return pa.types.is_boolean(dtype.pyarrow_dtype)
    return ptypes.is_bool_dtype(dtype)


def _is_integer(dtype: Any) -> bool:
    if isinstance(dtype, pd.ArrowDtype):
        return pa.types.is_integer(dtype.pyarrow_dtype)
    return ptypes.is_integer_dtype(dtype)


def _matrix(partition: pd.DataFrame, columns: list[str]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The columns as one float64 array (a column contiguous; infinities as NaN), the
    missing values of each, and which columns hold NaN now."""
    values = np.empty((len(partition), len(columns)), dtype="float64", order="F")
    for j, column in enumerate(columns):
        series = partition[column]
        if isinstance(series.dtype, np.dtype):  # NumPy's own: no copy before this one
            values[:, j] = series.to_numpy()
        else:  # nullable or Arrow-backed: missing values become NaN
            values[:, j] = series.to_numpy(dtype="float64", na_value=np.nan)
    missing = np.isnan(values).sum(axis=0)
    infinite = np.isinf(values)
    if infinite.any():
        values[infinite] = np.nan
        return values, missing, np.flatnonzero((missing > 0) | infinite.any(axis=0))
    return values, missing, np.flatnonzero(missing > 0)


# -- histograms --------------------------------------------------------------------------

@dataclass(frozen=True)
class HistogramSpec:
    """Equal-width bins: ``bins`` of them from ``low`` to ``high`` (the last one closed,
    as NumPy's)."""

    low: float
    high: float
    bins: int

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(self.low, self.high, self.bins + 1)


def histogram_spec(low: float, high: float, integer: bool = False,
                   bins: int = BINS) -> HistogramSpec:
    """The bins of a column whose finite values run from ``low`` to ``high``.

    Integer columns spanning at most :data:`MAX_INTEGER_BINS` values get one bin per
    value (centred on it); a constant column one bin around its value. Raises
    ``ValueError`` when there is nothing to bin (no finite values) or the range is too
    wide for float64.

    Examples
    --------
    >>> histogram_spec(0.0, 3.0, bins=3).edges
    array([0., 1., 2., 3.])
    >>> histogram_spec(1, 3, integer=True).edges
    array([0.5, 1.5, 2.5, 3.5])
    >>> histogram_spec(2.0, 2.0).edges
    array([1.5, 2.5])
    """
    low, high = float(low), float(high)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("no finite values")
    if low > high:
        raise ValueError(f"minimum {low} above maximum {high}")
    if integer and high - low + 1 <= MAX_INTEGER_BINS:
        return HistogramSpec(low - 0.5, high + 0.5, int(high - low) + 1)
    if low == high:
        return HistogramSpec(low - 0.5, high + 0.5, 1)
    if not math.isfinite(high - low):
        raise ValueError(f"range {low:g} to {high:g} too wide to bin")
    return HistogramSpec(low, high, bins)


def histogram_counts(values: np.ndarray, spec: HistogramSpec) -> np.ndarray:
    """Counts of the finite ``values`` in ``spec``'s bins (NumPy's equal-width path,
    which leaves out NaN and infinities, as values outside the range)."""
    values = np.asarray(values, dtype="float64")
    counts, _ = np.histogram(values, bins=spec.bins, range=(spec.low, spec.high))
    return counts.astype("int64")


# -- correlations -------------------------------------------------------------------------

def _shift(values: np.ndarray, head: int = 4096) -> np.ndarray:
    """A value near each column's mean (of its first rows: any value near the centre keeps
    the shifted sums well conditioned); 0 for a column without values."""
    with np.errstate(invalid="ignore", divide="ignore"):
        sample = values[:head]
        counts = (~np.isnan(sample)).sum(axis=0)
        shift = np.nansum(sample, axis=0) / np.maximum(counts, 1)
        for j in np.flatnonzero(counts == 0):  # nothing near the top: look at the rest
            column = values[:, j]
            present = column[~np.isnan(column)]
            shift[j] = present.mean() if len(present) else 0.0
    return shift


def pair_moments(values: np.ndarray) -> np.ndarray:
    """Per pair of columns ``(i, j)``, over the rows where both are present (not NaN):
    the rows ``N``, the mean of column ``i`` as ``SHIFT + OFFSET`` (a value near the mean
    and the rest: a mean near 1e9 kept as one float would lose the digits that the
    differences between partitions' means need), its centred sum of squares ``M2`` and
    the co-moment ``C``; stacked as a ``(5, k, k)`` array.

    Values are shifted by a value near their column's mean first, so the sums stay well
    conditioned.
    """
    values = np.asarray(values, dtype="float64")
    return _pair_moments(values, np.flatnonzero(np.isnan(values).any(axis=0)),
                         overwrite=False)


def _pair_moments(values: np.ndarray, gaps: np.ndarray, overwrite: bool) -> np.ndarray:
    """:func:`pair_moments`, given the columns holding NaN (``gaps``); ``overwrite``
    lets it shift ``values`` in place.

    Sums over "the rows where ``i`` and ``j`` are present" are the sums over the rows of
    ``i`` less those over the (usually few) rows where ``j`` is missing, so the columns
    without missing values cost one matrix product and nothing more.
    """
    rows, k = values.shape
    shift = _shift(values)
    z = np.subtract(values, shift, out=values if overwrite else None)
    holes = [np.isnan(z[:, column]) for column in gaps]
    for column, hole in zip(gaps, holes):
        z[hole, column] = 0.0  # a missing value adds nothing to any sum
    products = z.T @ z
    count = np.full(k, float(rows))
    for column, hole in zip(gaps, holes):
        count[column] -= np.count_nonzero(hole)
    n = np.repeat(count[:, None], k, axis=1)               # rows where i is present
    sums = np.repeat(z.sum(axis=0)[:, None], k, axis=1)   # of column i where j is present
    sumsq = np.repeat(np.diag(products)[:, None], k, axis=1)
    for column, hole in zip(gaps, holes):
        lost = z[hole]                                     # the rows where j is missing
        sums[:, column] -= lost.sum(axis=0)
        sumsq[:, column] -= (lost * lost).sum(axis=0)
        n[:, column] -= np.count_nonzero(hole)
        for other, other_hole in zip(gaps, holes):  # rows counted out twice: add back
            n[other, column] += np.count_nonzero(hole & other_hole)
    offset = np.divide(sums, n, out=np.zeros((k, k)), where=n > 0)
    m2 = np.maximum(sumsq - sums * offset, 0.0)
    comoment = products - sums * offset.T
    return np.stack([n, np.repeat(shift[:, None], k, axis=1), offset, m2, comoment])


def merge_moments(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The :func:`pair_moments` of two sets of rows together (Chan et al.'s update)."""
    na, shift_a, offset_a, m2a, ca = a
    nb, shift_b, offset_b, m2b, cb = b
    n = na + nb
    share = np.divide(nb, n, out=np.zeros_like(n), where=n > 0)
    weight = np.divide(na * nb, n, out=np.zeros_like(n), where=n > 0)
    # the difference of the shifts is exact when they are close, as means of one column are
    delta = (shift_b - shift_a) + (offset_b - offset_a)
    keep_a = na > 0
    return np.stack([n, np.where(keep_a, shift_a, shift_b),
                     np.where(keep_a, offset_a + delta * share, offset_b),
                     m2a + m2b + delta * delta * weight,
                     ca + cb + delta * delta.T * weight])


def correlation_from_moments(moments: np.ndarray, columns: Sequence[str]) -> pd.DataFrame:
    """Pearson correlations from :func:`pair_moments`, NaN where undefined (fewer than
    two rows, or no variance), as pandas' ``DataFrame.corr()`` gives them.

    Examples
    --------
    >>> data = np.array([[1.0, 2.0], [2.0, 4.5], [3.0, np.nan], [4.0, 7.0]])
    >>> moments = merge_moments(pair_moments(data[:2]), pair_moments(data[2:]))
    >>> correlation_from_moments(moments, ["a", "b"]).round(6).equals(
    ...     pd.DataFrame(data, columns=["a", "b"]).corr().round(6))
    True
    """
    m2, comoment = moments[3], moments[4]
    scale = np.sqrt(m2 * m2.T)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(scale > 0, comoment / scale, np.nan)
    return pd.DataFrame(values, index=list(columns), columns=list(columns))


# -- one reduction for everything -------------------------------------------------------

def _layout(k: int, specs: Mapping[str, HistogramSpec], want: frozenset[str]
            ) -> list[tuple[str, int]]:
    """The parts of a summary vector, in order, with their lengths."""
    parts = []
    if "missing" in want:
        parts.append(("missing", k))
    if "range" in want:
        parts += [("min", k), ("max", k)]
    if specs:
        parts.append(("histograms", sum(spec.bins for spec in specs.values())))
    if "correlation" in want:
        parts.append(("moments", 5 * k * k))
    return parts


def _split(vector: np.ndarray, layout: list[tuple[str, int]]) -> dict[str, np.ndarray]:
    out, start = {}, 0
    for name, size in layout:
        out[name] = vector[start:start + size]
        start += size
    return out


def _summarise(partition: pd.DataFrame, columns: list[str],
               specs: dict[str, HistogramSpec], want: frozenset[str]) -> pd.Series:
    """One partition's summary: missing values, finite minimum and maximum, histogram
    counts and pair moments (those ``want`` and ``specs`` ask for), as one float64 vector
    (counts stay exact up to 2**53)."""
    values, missing, gaps = _matrix(partition, columns)
    k = len(columns)
    parts = []
    if "missing" in want:
        parts.append(missing.astype("float64"))
    if "range" in want:
        empty = np.full(k, np.nan)
        parts += [np.fmin.reduce(values, axis=0) if len(values) else empty,
                  np.fmax.reduce(values, axis=0) if len(values) else empty]
    for column, spec in specs.items():
        parts.append(histogram_counts(values[:, columns.index(column)], spec)
                     .astype("float64"))
    if "correlation" in want:  # last: it shifts the values in place
        parts.append(_pair_moments(values, gaps, overwrite=True).ravel())
    return pd.Series(np.concatenate(parts) if parts else np.zeros(0))


def _combine(partials: pd.DataFrame, layout: list[tuple[str, int]], k: int) -> pd.Series:
    """Partitions' summaries (one a row) as one: counts add, ranges widen, moments merge."""
    rows = partials.to_numpy(dtype="float64")
    out = []
    start = 0
    for name, size in layout:
        block = rows[:, start:start + size]
        start += size
        if name == "min":
            out.append(np.fmin.reduce(block, axis=0))
        elif name == "max":
            out.append(np.fmax.reduce(block, axis=0))
        elif name == "moments":
            moments = block[0].reshape(5, k, k)
            for row in block[1:]:
                moments = merge_moments(moments, row.reshape(5, k, k))
            out.append(moments.ravel())
        else:
            out.append(block.sum(axis=0))
    return pd.Series(np.concatenate(out) if out else np.zeros(0))


def _summaries(frame, columns: list[str], specs: dict[str, HistogramSpec],
               want: frozenset[str]):
    """The lazy tree reduction of :func:`_summarise` over ``frame``, and its layout."""
    layout = _layout(len(columns), specs, want)
    sizes = {"layout": layout, "k": len(columns)}
    lazy = frame.reduction(_summarise, aggregate=_combine, combine=_combine,
                           meta=pd.Series(dtype="float64"),
                           chunk_kwargs={"columns": columns, "specs": specs, "want": want},
                           combine_kwargs=sizes, aggregate_kwargs=sizes)
    return lazy, layout


def ranges_from_describe(describe: pd.DataFrame | None) -> dict[str, tuple[float, float]]:
    """``{column: (min, max)}`` from a ``describe()`` table (the profile's), for columns
    whose range is known: finite, or NaN (no values). Columns holding infinities are
    left out: their finite range is still to compute."""
    ranges: dict[str, tuple[float, float]] = {}
    if describe is None:
        return ranges
    for column in describe.columns:
        try:
            low, high = float(describe.loc["min", column]), float(describe.loc["max", column])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isinf(low) or math.isinf(high):
            continue
        ranges[str(column)] = (low, high)
    return ranges


# -- missing values and rows --------------------------------------------------------------

def missing_bars(missing: Mapping[str, int], rows: int,
                 limit: int = MAX_MISSING_BARS) -> list[tuple[str, int, float]]:
    """``(column, missing, fraction)`` per column, in the input's order; with more than
    ``limit`` columns, the ``limit`` missing the most.

    Examples
    --------
    >>> missing_bars({"a": 0, "b": 5}, 20)
    [('a', 0, 0.0), ('b', 5, 0.25)]
    """
    bars = [(str(c), int(n), int(n) / rows if rows else 0.0) for c, n in missing.items()]
    if len(bars) > limit:
        keep = {c for c, _, _ in sorted(bars, key=lambda b: -b[1])[:limit]}
        bars = [b for b in bars if b[0] in keep]
    return bars


def step_rows(rows: Mapping[str, int], steps: Sequence[Mapping[str, Any]]
              ) -> list[tuple[str, int]]:
    """``(label, rows)``: the input (when pushed-down filters skipped rows), the rows
    read, then the rows after each step.

    Examples
    --------
    >>> step_rows({"input": 10, "read": 8, "output": 4},
    ...           [{"index": 0, "step": "query", "rows": 4}])
    [('input', 10), ('read (filters pushed down)', 8), ('0: query', 4)]
    """
    bars: list[tuple[str, int]] = []
    read = int(rows["read"])
    if rows.get("input") is not None and int(rows["input"]) != read:
        bars += [("input", int(rows["input"])), ("read (filters pushed down)", read)]
    else:
        bars.append(("read", read))
    bars += [(f"{s['index']}: {s['step']}", int(s["rows"])) for s in steps]
    return bars


# -- computing on the cluster -------------------------------------------------------------

@dataclass
class FrameFigureData:
    """The numbers behind the histograms, correlation and missing-values figures."""

    columns: list[str]
    plottable_columns: int
    rows: int | None = None
    histograms: dict[str, tuple[HistogramSpec, np.ndarray]] = field(default_factory=dict)
    #: column -> why it has no histogram
    skipped: dict[str, str] = field(default_factory=dict)
    correlation: pd.DataFrame | None = None
    missing: dict[str, int] | None = None
    #: where ``missing`` comes from: "profile" (every column read) or "numeric"
    missing_scope: str = "profile"
    #: passes over the data this took
    passes: int = 0


def frame_figure_data(frame, ranges: Mapping[str, tuple[float, float]] | None = None,
                      missing: Mapping[str, int] | None = None,
                      rows: int | None = None) -> FrameFigureData:
    """Compute the histograms, correlations and (without ``missing``) missing counts of
    ``frame``'s plottable columns on its Dask cluster.

    Parameters
    ----------
    frame : dask DataFrame
        The data, ideally read with only the columns :func:`figure_columns` picks.
    ranges : mapping, optional
        ``{column: (min, max)}`` already known (:func:`ranges_from_describe` of the
        profile); the others are computed in a first pass, with the correlations.
    missing : mapping, optional
        Missing values per column already known (the profile's); else they are counted
        (of the plottable columns) in the first pass.
    rows : int, optional
        The frame's rows, for the figures' captions.

    Returns
    -------
    FrameFigureData
        With ``passes`` the number of ``dask.compute`` calls it made (one or two).

    Examples
    --------
    >>> import dask
    >>> import dask.dataframe as dd
    >>> data = pd.DataFrame({"x": [1.0, 2.0, 2.5, None], "n": [1, 2, 2, 3]})
    >>> with dask.config.set(scheduler="sync"):
    ...     out = frame_figure_data(dd.from_pandas(data, npartitions=2))
    >>> out.histograms["n"][1].tolist(), out.missing, out.passes
    ([1, 2, 1], {'x': 1, 'n': 0}, 2)
    """
    import dask

    columns, total = figure_columns(frame.dtypes.to_dict())
    data = FrameFigureData(columns=columns, plottable_columns=total, rows=rows)
    if missing is not None:
        data.missing = {str(c): int(n) for c, n in missing.items()}
    else:
        data.missing_scope = "numeric"
    if not columns:
        data.missing = data.missing or {}
        return data
    dtypes = frame.dtypes.to_dict()
    raw = frame[columns]
    known = dict(ranges or {})
    for column in columns:
        if _is_boolean(dtypes[column]):
            known[column] = (0.0, 1.0)  # both values get a bar, present or not
    want = set()
    if any(c not in known for c in columns):
        want.add("range")
    if data.missing is None:
        want.add("missing")
    correlate = len(columns) >= 2
    if want and correlate:  # a pass is made anyway: the correlations go with it
        want.add("correlation")
    if want:
        lazy, layout = _summaries(raw, columns, {}, frozenset(want))
        (vector,) = dask.compute(lazy)
        data.passes += 1
        parts = _split(vector.to_numpy(), layout)
        if "missing" in parts:
            data.missing = {c: int(n) for c, n in zip(columns, parts["missing"])}
        if "moments" in parts:
            data.correlation = correlation_from_moments(
                parts["moments"].reshape(5, len(columns), len(columns)), columns)
        for j, column in enumerate(columns):
            if column not in known:
                known[column] = (parts["min"][j], parts["max"][j])

    specs: dict[str, HistogramSpec] = {}
    for column in columns:
        low, high = known[column]
        try:
            integer = _is_integer(dtypes[column]) or _is_boolean(dtypes[column])
            specs[column] = histogram_spec(low, high, integer=integer)
        except (TypeError, ValueError) as err:
            data.skipped[column] = str(err)
    want = {"correlation"} if correlate and data.correlation is None else set()
    if specs or want:
        lazy, layout = _summaries(raw, columns, specs, frozenset(want))
        (vector,) = dask.compute(lazy)
        data.passes += 1
        parts = _split(vector.to_numpy(), layout)
        start = 0
        for column, spec in specs.items():
            counts = parts["histograms"][start:start + spec.bins].astype("int64")
            start += spec.bins
            if counts.sum():
                data.histograms[column] = (spec, counts)
            else:  # a boolean column without values (its range was not looked up)
                data.skipped[column] = "no finite values"
        if "moments" in parts:
            data.correlation = correlation_from_moments(
                parts["moments"].reshape(5, len(columns), len(columns)), columns)
    return data


# -- drawing ------------------------------------------------------------------------------

def _grid(n: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def _count_text(n: int | None) -> str:
    return f"{n:,}" if n is not None else "all"


def draw_histograms(figures, data: FrameFigureData) -> None:
    if not data.histograms:
        return
    names = list(data.histograms)
    nrows, ncols = _grid(len(names))
    more = (f" (the first {len(data.columns)} of {data.plottable_columns} numeric columns)"
            if data.plottable_columns > len(data.columns) else "")
    skipped = ("; not drawn: " + ", ".join(f"{c} ({why})" for c, why in data.skipped.items())
               if data.skipped else "")
    caption = (f"Distribution of each numeric column over the {_count_text(data.rows)} rows "
               f"read{more}, missing and infinite values left out{skipped}.")
    with figures.figure("histograms", "Histograms of the numeric columns", caption=caption,
                        size=(2.6 * ncols + 0.6, 2.0 * nrows + 0.6),
                        nrows=nrows, ncols=ncols) as (fig, axes):
        axes = np.atleast_1d(axes).ravel()
        for ax, name in zip(axes, names):
            spec, counts = data.histograms[name]
            ax.stairs(counts, spec.edges, fill=True, color="#4878a8")
            ax.set_title(name, fontsize="small")
            ax.tick_params(labelsize="x-small")
            ax.margins(x=0)
        for ax in axes[len(names):]:
            ax.set_visible(False)


def draw_missing(figures, data: FrameFigureData) -> None:
    if data.missing is None:
        return
    bars = missing_bars(data.missing, data.rows or 0)
    if not bars:
        return
    scope = ("each column read" if data.missing_scope == "profile"
             else "each numeric column (without the profile no other column is read again)")
    caption = (f"Missing values in {scope}, out of {_count_text(data.rows)} rows, the labels "
               "giving the fraction.")
    with figures.figure("missing_values", "Missing values per column", caption=caption,
                        size=(6.4, max(2.2, 0.3 * len(bars) + 1.2))) as (fig, ax):
        labels = [c for c, _, _ in bars]
        positions = np.arange(len(bars))
        ax.barh(positions, [n for _, n, _ in bars], color="#c0504d")
        ax.set_yticks(positions, labels, fontsize="small")
        ax.invert_yaxis()
        ax.set_xlabel("missing values")
        for y, (_, n, fraction) in zip(positions, bars):
            ax.annotate(f"{fraction:.1%}", (n, y), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize="x-small")
        ax.margins(x=0.12)


def draw_correlation(figures, data: FrameFigureData) -> None:
    matrix = data.correlation
    if matrix is None or len(matrix.columns) < 2:
        return
    n = len(matrix.columns)
    caption = ("Pearson correlation of each pair of numeric columns, over the rows where "
               "both have a finite value (blank: undefined, a constant or empty column).")
    size = max(4.0, 0.45 * n + 2.5)
    with figures.figure("correlation", "Correlation of the numeric columns", caption=caption,
                        size=(size + 1.0, size)) as (fig, ax):
        values = np.ma.masked_invalid(matrix.to_numpy(dtype="float64"))
        image = ax.imshow(values, cmap="RdBu_r", vmin=-1, vmax=1)
        labels = [str(c) for c in matrix.columns]
        ax.set_xticks(range(n), labels, rotation=90, fontsize="small")
        ax.set_yticks(range(n), labels, fontsize="small")
        fig.colorbar(image, ax=ax, shrink=0.8)
        if n <= ANNOTATE_UP_TO:
            undefined = np.ma.getmaskarray(values)
            for i in range(n):
                for j in range(n):
                    if not undefined[i, j]:
                        value = float(values[i, j])
                        ax.text(j, i, f"{value:.2f}", ha="center", va="center",
                                fontsize="x-small",
                                color="white" if abs(value) > 0.6 else "black")


def draw_rows_per_step(figures, bars: list[tuple[str, int]]) -> None:
    if not bars:
        return
    caption = "Rows read from the main input and left after each step of the job."
    with figures.figure("rows_per_step", "Rows after each step", caption=caption,
                        size=(6.4, max(2.2, 0.32 * len(bars) + 1.2))) as (fig, ax):
        positions = np.arange(len(bars))
        counts = [n for _, n in bars]
        ax.barh(positions, counts, color="#4878a8")
        ax.set_yticks(positions, [label for label, _ in bars], fontsize="small")
        ax.invert_yaxis()
        ax.set_xlabel("rows")
        for y, n in zip(positions, counts):
            ax.annotate(f"{n:,}", (n, y), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize="x-small")
        ax.margins(x=0.15)


def draw_dataframe_figures(figures, data: FrameFigureData | None,
                           rows: list[tuple[str, int]]) -> None:
    """Draw the dataframe figures (those ``data`` has numbers for) into ``figures``."""
    if data is not None:
        draw_histograms(figures, data)
        draw_missing(figures, data)
        draw_correlation(figures, data)
    draw_rows_per_step(figures, rows)
