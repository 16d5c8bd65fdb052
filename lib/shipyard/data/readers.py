"""Read an input into a Dask DataFrame, partitioned to about ``partition_size`` in memory.

- **Parquet** (pyarrow): row groups are split or combined so that one large file still
  gives many partitions (``split_row_groups="adaptive"`` with a block size of
  ``partition_size`` uncompressed); only the needed columns are read, and simple
  conditions of a leading ``query`` become row-group and row filters (except on tables
  with ``string_view`` columns, which pyarrow cannot filter yet).
- **CSV**: blocks sized from a sample's in-memory/on-disk ratio; compressed files
  (gzip, bz2, xz, zip, zstd: inferred from the name) are one partition each, since
  they cannot be split.
- **JSON lines**: blocks of ``partition_size`` bytes.

Types are normalised as :func:`shipyard.data.schema.arrow_dtype` says: dates compare
with date literals, decimals are floats (unless ``decimals: keep``), and integer
columns holding nulls are floats, as pandas reads them.
"""

from __future__ import annotations

import logging
from typing import Any

import dask.dataframe as dd
import fsspec.utils
import numpy as np
import pandas as pd
import pyarrow as pa

from shipyard.core.errors import InputDataError
from shipyard.data.files import expand, filesystem
from shipyard.data.schema import ParquetLayout, csv_sample, parquet_layout
from shipyard.data.spec import InputSpec

__all__ = ["read_input", "estimated_bytes", "decimal_to_float64"]

log = logging.getLogger("shipyard.data")


def decimal_to_float64(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Decimals as the nearest float64, exactly as ``float(Decimal(...))`` gives them.

    Arrow's own decimal-to-double cast is off by one unit in the last place for about
    one value in eight. Dividing the unscaled integer by ``10**scale`` is correctly
    rounded whenever both are exact doubles, which covers real money columns; anything
    larger goes through Arrow's (correctly rounded) text-to-double parsing.

    Examples
    --------
    >>> import decimal
    >>> decimal_to_float64(pa.array([decimal.Decimal("74964.29"), None], pa.decimal128(15, 2)))
    array([74964.29,      nan])
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    scale = values.type.scale
    if pa.types.is_decimal128(values.type) and 0 <= scale <= 22 and len(values):
        words = np.frombuffer(values.buffers()[1], dtype="<i8")[
            2 * values.offset: 2 * (values.offset + len(values))]
        low, high = words[0::2], words[1::2]
        if (high == (low >> 63)).all() and np.abs(low).max() <= 2**53:
            out = low.astype(np.float64) / 10.0**scale
            if values.null_count:
                out[~values.is_valid().to_numpy(zero_copy_only=False)] = np.nan
            return out
    return np.array(values.cast(pa.string()).cast(pa.float64()).to_numpy(zero_copy_only=False),
                    copy=True)


def _cast_columns(partition: pd.DataFrame, casts: dict[str, Any]) -> pd.DataFrame:
    """Cast columns in Arrow (dates, decimals: ~100x faster than pandas' astype) or with
    NumPy (integers holding nulls, which arrive as int64 or float64 per partition)."""
    out = partition.copy(deep=False)
    for column, target in casts.items():
        series = partition[column]
        if isinstance(target, pa.DataType):
            arrow = pa.array(series.array) if isinstance(series.dtype, pd.ArrowDtype) else \
                pa.array(series, from_pandas=True)
            if pa.types.is_decimal(arrow.type) and target == pa.float64():
                values = decimal_to_float64(arrow)
            else:
                # copied into memory NumPy owns: a zero-copy view of the cast Arrow
                # buffer does not keep it alive, and once partitions are combined other
                # reads reuse it (seen as wrong dates in every partition but the first)
                values = np.array(arrow.cast(target).to_numpy(zero_copy_only=False), copy=True)
            out[column] = pd.Series(values, index=partition.index, name=column)
        else:
            out[column] = series.astype(target)
    return out


def _casts(layout: ParquetLayout, spec: InputSpec, columns: list[str]) -> dict[str, Any]:
    """The normalisations of :func:`shipyard.data.schema.arrow_dtype`, as casts."""
    casts: dict[str, Any] = {}
    for field in layout.schema:
        if field.name not in columns:
            continue
        if pa.types.is_date(field.type):
            casts[field.name] = pa.timestamp("ms")
        elif pa.types.is_decimal(field.type) and spec.decimals == "float64":
            casts[field.name] = pa.float64()
        elif field.name in layout.nullable_ints:
            wanted = layout.dtype(field, spec.decimals)
            if str(wanted) == "float64":
                casts[field.name] = wanted
    return casts


def _parquet(spec: InputSpec, columns: list[str] | None, filters: list | None,
             partition_size: int) -> dd.DataFrame:
    layout = parquet_layout(spec)
    names = columns or [f.name for f in layout.schema if not f.name.startswith("__index_level_")]
    views = [f.name for f in layout.schema if f.name in names and
             (pa.types.is_string_view(f.type) or pa.types.is_binary_view(f.type))]
    if filters and views:
        # pyarrow cannot yet filter the rows of a table holding view columns; the query
        # step still filters, only without skipping row groups
        log.info("%s: filters not pushed down (view-typed columns %s)", spec.path, views)
        filters = None
    try:
        frame = dd.read_parquet(
            layout.files, columns=columns, filters=filters or None,
            storage_options=spec.storage_options or None, split_row_groups="adaptive",
            blocksize=partition_size, index=False, **spec.options,
        )
    except (OSError, ValueError, TypeError) as err:
        raise InputDataError(f"{spec.path} could not be read as Parquet: {err}") from None
    smallest_piece = layout.largest_row_group(list(frame.columns))
    if smallest_piece > partition_size:
        # a row group is read whole: partitions cannot be smaller than the largest one
        log.warning("%s: row groups of up to %d MiB (of the columns read) exceed the %d MiB "
                    "partitions the workers' memory allows; give workers more memory or "
                    "rewrite the file with smaller row groups", spec.path,
                    smallest_piece // 2**20, partition_size // 2**20)
    casts = _casts(layout, spec, list(frame.columns))
    if casts:
        frame = frame.map_partitions(_cast_columns, casts, meta=_cast_columns(frame._meta, casts))
    log.info("%s: %d rows in %d file(s), %d partition(s)", spec.path, layout.num_rows,
             len(layout.files), frame.npartitions)
    return frame


def _csv_blocksize(spec: InputSpec, files: list[str], partition_size: int) -> int | None:
    compression = spec.compression
    if compression == "infer":
        compression = fsspec.utils.infer_compression(files[0])
    if compression:
        return None  # compressed files cannot be split: one partition per file
    sample = csv_sample(spec, nrows=20_000)
    if sample.empty:
        return partition_size
    with fsspec.open(files[0], "rb", **spec.storage_options) as handle:
        raw = handle.read(4 * 2**20)
    lines = raw.count(b"\n") or 1
    bytes_per_row = len(raw) / lines
    memory_per_row = sample.memory_usage(deep=True).sum() / len(sample)
    ratio = max(memory_per_row / bytes_per_row, 0.25)
    return max(int(partition_size / ratio), 2**20)


def _csv(spec: InputSpec, columns: list[str] | None, partition_size: int) -> dd.DataFrame:
    files = expand(spec.path, spec.storage_options)
    kwargs = {k: v for k, v in (("sep", spec.sep), ("dtype", spec.dtype),
                                ("parse_dates", spec.parse_dates),
                                ("na_values", spec.na_values)) if v is not None}
    if columns is not None:
        kwargs["usecols"] = columns
    try:
        return dd.read_csv(files, blocksize=_csv_blocksize(spec, files, partition_size),
                           compression=spec.compression, sample=2**20,
                           storage_options=spec.storage_options or None, **kwargs,
                           **spec.options)
    except (OSError, ValueError, TypeError) as err:
        raise InputDataError(f"{spec.path} could not be read as CSV: {err}") from None


def _json(spec: InputSpec, columns: list[str] | None, partition_size: int) -> dd.DataFrame:
    files = expand(spec.path, spec.storage_options)
    compression = spec.compression
    if compression == "infer":
        compression = fsspec.utils.infer_compression(files[0])
    try:
        frame = dd.read_json(files, lines=True, blocksize=None if compression else partition_size,
                             compression=compression, storage_options=spec.storage_options or {},
                             **spec.options)
    except (OSError, ValueError, TypeError) as err:
        raise InputDataError(f"{spec.path} could not be read as JSON lines: {err}") from None
    return frame[columns] if columns is not None else frame


#: The seed of ``sample``: which rows a sample keeps is part of the spec, not chance.
SAMPLE_SEED = 0


def estimated_bytes(spec: InputSpec) -> int:
    """An input's size: uncompressed Parquet bytes (from the footers), or the files' sizes
    (times ``sample``: the share of the rows that is kept)."""
    if spec.resolved_format == "parquet":
        size = parquet_layout(spec).uncompressed_bytes
    else:
        fs, _ = filesystem(spec.path, spec.storage_options)
        size = sum(fs.size(path) or 0 for path in expand(spec.path, spec.storage_options))
    return int(size * (spec.sample or 1.0))


def read_input(spec: InputSpec, *, columns: list[str] | None = None,
               filters: list[tuple[str, str, Any]] | None = None,
               partition_size: int = 100 * 2**20) -> dd.DataFrame:
    """Read one input lazily.

    Parameters
    ----------
    spec : InputSpec
    columns : list of str, optional
        Read only these (``spec.columns`` narrows further).
    filters : list of (column, op, value), optional
        Parquet only: rows failing any are skipped (row groups by their statistics).
    partition_size : int
        Target in-memory bytes per partition.

    Raises
    ------
    InputDataError
        When the input is missing, unreadable or of the wrong format.
    """
    if spec.columns is not None:
        columns = [c for c in spec.columns if columns is None or c in columns]
    fmt = spec.resolved_format
    if fmt == "parquet":
        frame = _parquet(spec, columns, filters, partition_size)
    elif fmt == "csv":
        frame = _csv(spec, columns, partition_size)
    else:
        frame = _json(spec, columns, partition_size)
    if spec.sample is not None and spec.sample < 1:
        # seeded per partition: the same rows on every run of the same input
        frame = frame.sample(frac=spec.sample, random_state=SAMPLE_SEED)
    return frame
