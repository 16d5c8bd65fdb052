"""The schema of an input (its columns and their dtypes), read without reading the data.

Parquet schemas come from the files' footers; CSV and JSON-lines schemas from the first
rows, read with pandas and the input's options. Types are reported as the reader will
deliver them (see :func:`arrow_dtype`): dates as ``datetime64[ms]`` so they compare with
date literals in ``query``, decimals as ``float64`` (unless ``decimals: keep``),
integer columns holding nulls as ``float64`` (as pandas reads them; a column that
pandas wrote as nullable ``Int64`` comes back as ``Int64``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.core.errors import InputDataError
from shipyard.data.files import expand, filesystem
from shipyard.data.spec import InputSpec

__all__ = ["Schema", "ParquetLayout", "read_schema", "arrow_dtype", "parquet_layout",
           "forget_layouts", "csv_sample"]

#: rows of a CSV / JSON-lines file read to learn its columns and types
SAMPLE_ROWS = 1000


@dataclass
class Schema:
    """Columns and dtypes at some point of a job (a dtype of None means "not known").

    ``open_prefixes`` are prefixes of columns that exist but whose full names depend on
    the data (``get_dummies`` makes ``city_`` + each city).
    """

    columns: dict[str, Any]
    open_prefixes: tuple[str, ...] = ()

    def copy(self) -> Schema:
        return Schema(dict(self.columns), self.open_prefixes)

    def has(self, column: str) -> bool:
        return column in self.columns or column.startswith(self.open_prefixes or ("\0",))

    def missing(self, columns: Iterable[str]) -> list[str]:
        return [c for c in columns if not self.has(c)]

    def names(self) -> list[str]:
        return list(self.columns) + [f"{p}*" for p in self.open_prefixes]


@dataclass
class ParquetLayout:
    """What the footers of a Parquet input say: files, schema, which integer columns hold
    nulls, sizes. Read once; used by the schema check, push-down and the reader."""

    files: list[str]
    schema: pa.Schema
    nullable_ints: set[str] = field(default_factory=set)
    num_rows: int = 0
    uncompressed_bytes: int = 0
    #: per column, its largest chunk in any row group (bytes, uncompressed)
    largest_chunks: dict[str, int] = field(default_factory=dict)

    def largest_row_group(self, columns: list[str] | None = None) -> int:
        """About the most bytes one row group of ``columns`` (default: all) holds: the
        smallest piece a Parquet reader can make a partition of."""
        names = self.largest_chunks if columns is None else columns
        return sum(self.largest_chunks.get(name, 0) for name in names)

    def pandas_type(self, column: str) -> str | None:
        """The dtype pandas recorded for ``column`` when it wrote the file, if it did."""
        meta = self.schema.pandas_metadata or {}
        for entry in meta.get("columns", []):
            if entry.get("name") == column:
                return entry.get("numpy_type")
        return None

    def dtype(self, field: pa.Field, decimals: str) -> Any:
        """The pandas dtype this column is read as."""
        return arrow_dtype(field.type, decimals, field.name in self.nullable_ints,
                           self.pandas_type(field.name))


def arrow_dtype(arrow_type: pa.DataType, decimals: str = "float64",
                has_nulls: bool = False, pandas_type: str | None = None) -> Any:
    """The pandas dtype shipyard reads an Arrow type as.

    Examples
    --------
    >>> arrow_dtype(pa.date32()), arrow_dtype(pa.decimal128(12, 2)), arrow_dtype(pa.int32(), has_nulls=True)
    (dtype('<M8[ms]'), dtype('float64'), dtype('float64'))
    >>> arrow_dtype(pa.int64(), has_nulls=True, pandas_type="Int64")
    Int64Dtype()
    """
    import numpy as np

    if pa.types.is_date(arrow_type):
        return np.dtype("datetime64[ms]")
    if pa.types.is_decimal(arrow_type):
        return np.dtype("float64") if decimals == "float64" else pd.ArrowDtype(arrow_type)
    if pa.types.is_integer(arrow_type):
        if pandas_type and pandas_type[0] in "IU":  # pandas wrote a nullable Int64 column
            return pd.api.types.pandas_dtype(pandas_type)
        return np.dtype("float64") if has_nulls else np.dtype("int64")
    if pa.types.is_dictionary(arrow_type):
        return pd.CategoricalDtype()
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.StringDtype()
    try:
        return arrow_type.to_pandas_dtype()
    except NotImplementedError:
        return pd.ArrowDtype(arrow_type)


def _footer(fs, path: str):
    with fs.open(path, "rb") as handle:
        return pq.ParquetFile(handle).metadata


def parquet_layout(spec: InputSpec) -> ParquetLayout:
    """Read every file's footer (in parallel): schema, row counts, nulls in int columns.

    Cached per path and storage options: checking the spec, planning push-down, reading
    and reporting all need it, and a dataset of many files has as many footers. The
    cache lives for one check or one run (:func:`forget_layouts` starts each), so a
    long-lived process never sees stale files.

    Raises
    ------
    InputDataError
        When a file is missing, unreadable or not Parquet (a corrupt footer).
    """
    return _cached_layout(spec.path, json.dumps(spec.storage_options, sort_keys=True,
                                                 default=str))


def forget_layouts() -> None:
    """Drop cached footers (called where a check or a run starts)."""
    _cached_layout.cache_clear()


@functools.lru_cache(maxsize=32)
def _cached_layout(path: str, storage_options: str) -> ParquetLayout:
    options = json.loads(storage_options)
    files = expand(path, options, suffixes=(".parquet", ".parq", ".pq"))
    fs, _ = filesystem(files[0], options)

    def footer(path: str):
        try:
            return _footer(fs, fs._strip_protocol(path))
        except (OSError, pa.ArrowInvalid, ValueError) as err:
            raise InputDataError(
                f"{path} is not a readable Parquet file ({type(err).__name__}: {err})") from None

    with ThreadPoolExecutor(max_workers=8) as pool:
        footers = list(pool.map(footer, files))
    schema = footers[0].schema.to_arrow_schema()
    int_columns = {f.name: i for i, f in enumerate(schema) if pa.types.is_integer(f.type)}
    nullable: set[str] = set()
    rows = size = 0
    largest: dict[str, int] = {}
    for meta in footers:
        rows += meta.num_rows
        names = [meta.schema.column(i).name for i in range(meta.num_columns)]
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            size += group.total_byte_size
            for i, name in enumerate(names):
                chunk = group.column(i).total_uncompressed_size
                largest[name] = max(largest.get(name, 0), chunk)
            for name in int_columns:
                if name in nullable or name not in names:
                    continue
                stats = group.column(names.index(name)).statistics
                # no statistics: nulls cannot be ruled out
                if stats is None or not stats.has_null_count or stats.null_count > 0:
                    nullable.add(name)
    return ParquetLayout(files, schema, nullable, rows, size, largest)


def csv_sample(spec: InputSpec, nrows: int = SAMPLE_ROWS) -> pd.DataFrame:
    """The first rows of the first file of a CSV input, read with its options."""
    files = expand(spec.path, spec.storage_options)
    kwargs = {k: v for k, v in (("sep", spec.sep), ("dtype", spec.dtype),
                                ("parse_dates", spec.parse_dates),
                                ("na_values", spec.na_values)) if v is not None}
    try:
        return pd.read_csv(files[0], nrows=nrows, compression=spec.compression,
                           storage_options=spec.storage_options or None, **kwargs,
                           **spec.options)
    except (ValueError, TypeError, OSError, UnicodeDecodeError,
            pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputDataError(f"{files[0]} could not be read as CSV: {err}") from None


def _json_sample(spec: InputSpec, nrows: int = SAMPLE_ROWS) -> pd.DataFrame:
    files = expand(spec.path, spec.storage_options)
    try:
        return pd.read_json(files[0], lines=True, nrows=nrows, compression=spec.compression,
                            storage_options=spec.storage_options or None, **spec.options)
    except (ValueError, TypeError, OSError) as err:
        raise InputDataError(f"{files[0]} could not be read as JSON lines: {err}") from None


def read_schema(spec: InputSpec) -> Schema:
    """The columns and dtypes this input will have once read.

    Raises
    ------
    InputDataError
        When the input cannot be found or read.
    """
    fmt = spec.resolved_format
    if fmt == "parquet":
        layout = parquet_layout(spec)
        columns = {f.name: layout.dtype(f, spec.decimals)
                   for f in layout.schema if not f.name.startswith("__index_level_")}
    else:
        sample = csv_sample(spec) if fmt == "csv" else _json_sample(spec)
        columns = dict(sample.dtypes.items())
    if spec.columns:
        absent = [c for c in spec.columns if c not in columns]
        if absent:
            raise InputDataError(f"{spec.path}: has no column(s) {', '.join(map(repr, absent))} "
                                 f"(its columns: {', '.join(columns)})")
        columns = {c: columns[c] for c in spec.columns}
    return Schema(columns)


def missing_column_problems(where: str, schema: Schema, columns: list[str]) -> list[str]:
    """One spec problem line per column of ``columns`` not in ``schema``, with the closest
    name as a suggestion and the columns there are.

    Examples
    --------
    >>> import numpy as np
    >>> schema = Schema({"age": np.dtype("float64"), "income": np.dtype("float64")})
    >>> missing_column_problems("spec.x.target", schema, ["incme", "age"])
    ["spec.x.target: column 'incme' is not in the input; did you mean 'income'? (its columns: age, income)"]
    """
    from shipyard.spec.suggest import closest

    problems = []
    listing = ", ".join(schema.names())
    if len(listing) > 300:
        listing = listing[:297] + "..."
    for column in schema.missing(columns):
        guess = closest(column, list(schema.columns))
        hint = f"; did you mean {guess!r}?" if guess else ""
        problems.append(f"{where}: column {column!r} is not in the input{hint} "
                        f"(its columns: {listing})")
    return problems
