"""The ``dataframe`` block of a job spec: inputs, steps, output.

Steps are named after the pandas method they run and take pandas' argument names::

    dataframe:
      inputs:
        main: {path: data/customers.csv}             # any fsspec URL or glob
        regions: {path: s3://bucket/regions.parquet}
      steps:
        - fillna: {age: mean, income: median, city: unknown}
        - query: "income > 60000"
        - assign: {income_per_purchase: "income / purchases"}
        - cut: {column: age, bins: [0, 30, 40, 100], labels: [young, middle, senior], into: age_group}
        - merge: {right: regions, on: [region_id], how: left}
        - groupby: {by: [age_group], agg: {will_churn: [mean, count]}}
      output: {path: out/churn.parquet}

Each step is a mapping with exactly one key, the step's name. This module only holds the
structure; :mod:`shipyard.data.schema` checks steps against the inputs' columns and
:mod:`shipyard.data.ops` runs them on Dask.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import (BaseModel, BeforeValidator, Discriminator, Field, Tag, field_validator,
    model_validator)

from shipyard.core.model import StrictModel
from shipyard.core.units import format_memory, parse_memory

__all__ = [
    "Format", "InputSpec", "OutputSpec", "DataFrameWorkload", "Step", "STEP_MODELS",
    "infer_format", "STATISTICS",
]

Format = Literal["csv", "parquet", "json"]

#: Whole-dataset statistics ``fillna`` accepts by name.
STATISTICS = ("mean", "median", "mode", "min", "max")

_EXTENSIONS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".parquet": "parquet", ".pq": "parquet", ".parq": "parquet",
    ".json": "json", ".jsonl": "json", ".ndjson": "json",
}
_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zip", ".zst", ".zstd")


def infer_format(path: str) -> str | None:
    """The format a path's extension says (compression suffixes skipped), or None.

    Examples
    --------
    >>> infer_format("data/part-*.csv.gz"), infer_format("s3://b/x.parquet"), infer_format("x")
    ('csv', 'parquet', None)
    """
    name = path.rstrip("/").lower()
    for suffix in _COMPRESSIONS:
        name = name.removesuffix(suffix)
    for extension, fmt in _EXTENSIONS.items():
        if name.endswith(extension):
            return fmt
    return None


def _as_list(value: Any) -> Any:
    """Let a single column be written without brackets: ``by: age`` means ``by: [age]``."""
    return [value] if isinstance(value, str) else value


Columns = Annotated[list[str], BeforeValidator(_as_list), Field(min_length=1)]


def _size(value: Any) -> int:
    return parse_memory(value)


class InputSpec(StrictModel):
    """One named input: a file, a directory or a glob, on any fsspec filesystem.

    CSV options keep pandas' names (``sep``, ``dtype``, ``parse_dates``, ``na_values``);
    anything else pandas' reader takes goes in ``options``.
    """

    path: str
    format: Format | None = None
    columns: list[str] | None = None
    sep: str | None = None
    dtype: dict[str, str] | None = None
    parse_dates: list[str] | None = None
    na_values: list[str] | None = None
    compression: str | None = "infer"
    #: decimal128 columns: read as float64 (default), or keep them as Arrow decimals
    decimals: Literal["float64", "keep"] = "float64"
    #: keep only this share of the rows, drawn at random (seeded: the same rows every
    #: run); ``shipyard run --sample`` sets it on every input
    sample: Annotated[float, Field(gt=0, le=1)] | None = None
    storage_options: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _format_known(self) -> InputSpec:
        if self.format is None and infer_format(self.path) is None:
            raise ValueError(
                f"format: cannot tell the format of {self.path!r} from its name; "
                "add format: csv, parquet or json"
            )
        csv_only = [n for n in ("sep", "dtype", "parse_dates", "na_values")
                    if getattr(self, n) is not None]
        if csv_only and self.resolved_format == "parquet":
            raise ValueError(f"{', '.join(csv_only)}: only for csv inputs (this one is parquet)")
        return self

    @property
    def resolved_format(self) -> str:
        return self.format or infer_format(self.path)  # type: ignore[return-value]


class OutputSpec(StrictModel):
    """Where the result goes. Written atomically; an existing target is refused unless
    ``overwrite: true``."""

    path: str
    format: Literal["csv", "parquet"] | None = None
    overwrite: bool = False
    partition_on: list[str] | None = None
    #: csv: one file (default when the path ends in .csv) or a directory of parts
    single_file: bool | None = None
    compression: str | None = None
    storage_options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> OutputSpec:
        fmt = self.format or infer_format(self.path)
        if fmt not in ("csv", "parquet"):
            raise ValueError(
                f"format: cannot tell the output format of {self.path!r}; add format: "
                "parquet or csv"
            )
        if self.partition_on and fmt != "parquet":
            raise ValueError("partition_on: only for parquet outputs")
        if self.single_file and fmt != "csv":
            raise ValueError("single_file: only for csv outputs")
        return self

    @property
    def resolved_format(self) -> str:
        return self.format or infer_format(self.path)  # type: ignore[return-value]

    @property
    def is_single_file(self) -> bool:
        if self.resolved_format != "csv":
            return False
        if self.single_file is not None:
            return self.single_file
        return infer_format(self.path) == "csv" and not self.path.endswith("/")


# -- steps -------------------------------------------------------------------------------


class QueryStep(StrictModel):
    """Keep the rows where a pandas ``DataFrame.query`` expression is true."""

    query: str


class FillnaStep(StrictModel):
    """Fill missing values per column: a whole-dataset statistic (mean, median, mode, min,
    max) or a literal."""

    fillna: dict[str, Any] = Field(min_length=1)

    @field_validator("fillna")
    @classmethod
    def _values(cls, fills: dict[str, Any]) -> dict[str, Any]:
        for column, value in fills.items():
            if isinstance(value, (dict, list)):
                raise ValueError(f"{column}: fill with {', '.join(STATISTICS)} or a literal "
                                 f"value, got {value!r}")
        return fills


class DropnaArgs(StrictModel):
    subset: Columns | None = None
    how: Literal["any", "all"] = "any"
    thresh: Annotated[int, Field(ge=0)] | None = None


class DropnaStep(StrictModel):
    """Drop rows with missing values (pandas ``dropna``)."""

    dropna: DropnaArgs = Field(default_factory=DropnaArgs)

    @field_validator("dropna", mode="before")
    @classmethod
    def _empty(cls, value: Any) -> Any:
        return {} if value is None else value


class AssignStep(StrictModel):
    """Add or replace columns from ``DataFrame.eval`` expressions, in order."""

    assign: dict[str, str] = Field(min_length=1)


class CutArgs(StrictModel):
    column: str
    # integer edges stay integers: pandas labels their intervals (0, 30], not (0.0, 30.0]
    bins: Annotated[int, Field(ge=1)] | Annotated[list[int | float], Field(min_length=2)]
    labels: list[str] | Literal[False] | None = None
    into: str | None = None
    right: bool = True
    include_lowest: bool = False

    @model_validator(mode="after")
    def _labels_fit_bins(self) -> CutArgs:
        edges = self.bins if isinstance(self.bins, int) else len(self.bins) - 1
        if isinstance(self.bins, list) and list(self.bins) != sorted(self.bins):
            raise ValueError(f"bins must increase, got {self.bins}")
        if isinstance(self.labels, list) and len(self.labels) != edges:
            raise ValueError(f"labels: {len(self.labels)} labels for {edges} bins; give one "
                             "label per bin")
        return self


class CutStep(StrictModel):
    """Bin a numeric column (pandas ``cut``); integer ``bins`` use the whole dataset's range."""

    cut: CutArgs


class AstypeStep(StrictModel):
    """Cast columns (pandas ``astype``): ``{customer_id: int64, city: category}``."""

    astype: dict[str, str] = Field(min_length=1)

    @field_validator("astype")
    @classmethod
    def _dtypes_exist(cls, casts: dict[str, str]) -> dict[str, str]:
        from pandas.api.types import pandas_dtype

        for column, dtype in casts.items():
            try:
                pandas_dtype(dtype)
            except TypeError:
                raise ValueError(f"{column}: {dtype!r} is not a pandas dtype (e.g. int64, "
                                 "float64, Int64, string, category, bool, datetime64[ns])") from None
        return casts


class RenameStep(StrictModel):
    """Rename columns: ``{old: new}``."""

    rename: dict[str, str] = Field(min_length=1)


class SelectStep(StrictModel):
    """Keep only these columns, in this order."""

    select: Columns


class DropStep(StrictModel):
    """Drop these columns."""

    drop: Columns


class DropDuplicatesArgs(StrictModel):
    subset: Columns | None = None
    keep: Literal["first", "last", False] = "first"


class DropDuplicatesStep(StrictModel):
    """Drop duplicate rows (by ``subset``), keeping the first (or last) in input order."""

    drop_duplicates: DropDuplicatesArgs = Field(default_factory=DropDuplicatesArgs)

    @field_validator("drop_duplicates", mode="before")
    @classmethod
    def _empty(cls, value: Any) -> Any:
        return {} if value is None else value


class MergeArgs(StrictModel):
    right: str
    on: Columns | None = None
    left_on: Columns | None = None
    right_on: Columns | None = None
    how: Literal["inner", "left", "right", "outer"] = "inner"
    suffixes: tuple[str, str] = ("_x", "_y")
    #: ship the right side to every partition; default: when it is small (see ops)
    broadcast: bool | None = None

    @model_validator(mode="after")
    def _keys(self) -> MergeArgs:
        if self.on and (self.left_on or self.right_on):
            raise ValueError("give either on, or left_on and right_on, not both")
        if not self.on and not (self.left_on and self.right_on):
            raise ValueError("say what to join on: on: [columns], or left_on and right_on")
        if self.left_on and len(self.left_on) != len(self.right_on or []):
            raise ValueError("left_on and right_on must have the same length")
        return self


class MergeStep(StrictModel):
    """Join with another named input (pandas ``merge``)."""

    merge: MergeArgs


class GetDummiesArgs(StrictModel):
    columns: Columns
    prefix_sep: str = "_"
    drop_first: bool = False
    dtype: str = "bool"


class GetDummiesStep(StrictModel):
    """One-hot encode columns; the categories are computed once over the whole dataset."""

    get_dummies: GetDummiesArgs


class ScaleArgs(StrictModel):
    columns: Columns
    method: Literal["standard", "minmax"] = "standard"


class ScaleStep(StrictModel):
    """Scale numeric columns as scikit-learn's scalers do (standard: zero mean, unit
    variance; minmax: 0..1, with dask-ml)."""

    scale: ScaleArgs


AGGREGATIONS = ("sum", "mean", "count", "min", "max", "std", "var", "size", "nunique",
                "first", "last", "median")


class GroupbyArgs(StrictModel):
    by: Columns
    agg: dict[str, Annotated[list[Literal[AGGREGATIONS]], BeforeValidator(_as_list)]] = Field(
        min_length=1)
    dropna: bool = True


class GroupbyStep(StrictModel):
    """Group and aggregate: columns come out as ``<column>_<function>``, keys as columns,
    sorted by the keys."""

    groupby: GroupbyArgs


class SortValuesArgs(StrictModel):
    by: Columns
    ascending: bool | list[bool] = True
    na_position: Literal["first", "last"] = "last"

    @model_validator(mode="after")
    def _lengths(self) -> SortValuesArgs:
        if isinstance(self.ascending, list) and len(self.ascending) != len(self.by):
            raise ValueError("ascending: one true/false per column of by")
        return self


class SortValuesStep(StrictModel):
    """Sort rows by columns (a distributed sort)."""

    sort_values: SortValuesArgs


class SampleArgs(StrictModel):
    frac: Annotated[float, Field(gt=0)]
    replace: bool = False
    random_state: int | None = None

    @model_validator(mode="after")
    def _fraction(self) -> SampleArgs:
        if self.frac > 1 and not self.replace:
            raise ValueError(f"frac: above 1 needs replace: true, got {self.frac}")
        return self


class SampleStep(StrictModel):
    """A random fraction of the rows (sampled per partition, as Dask does)."""

    sample: SampleArgs


#: step name -> model; the name is also the step's only key in the spec
STEP_MODELS: dict[str, type[StrictModel]] = {
    "query": QueryStep, "fillna": FillnaStep, "dropna": DropnaStep, "assign": AssignStep,
    "cut": CutStep, "astype": AstypeStep, "rename": RenameStep, "select": SelectStep,
    "drop": DropStep, "drop_duplicates": DropDuplicatesStep, "merge": MergeStep,
    "get_dummies": GetDummiesStep, "scale": ScaleStep, "groupby": GroupbyStep,
    "sort_values": SortValuesStep, "sample": SampleStep,
}


def step(value: Any) -> str | None:
    """The discriminator: a step is a mapping whose one key names it."""
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value))
    if isinstance(value, BaseModel):
        return next(iter(type(value).model_fields))
    return None


Step = Annotated[
    Union[tuple(Annotated[model, Tag(name)] for name, model in STEP_MODELS.items())],  # type: ignore[misc]
    Discriminator(step),
]


def step_name(item: BaseModel) -> str:
    """The name of a validated step (its only field)."""
    return next(iter(type(item).model_fields))


def step_args(item: BaseModel) -> Any:
    """The arguments of a validated step (the value of its only field)."""
    return getattr(item, step_name(item))


_INPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class DataFrameWorkload(StrictModel):
    """``spec.dataframe``: read inputs, run steps on the main one, write the output."""

    inputs: dict[str, InputSpec] = Field(min_length=1)
    main: str | None = None
    steps: list[Step] = Field(default_factory=list)
    output: OutputSpec | None = None
    #: record info()/describe()/missing counts of the main input in result.json
    profile: bool = True
    #: target in-memory size of a partition; input splitting aims at it
    partition_size: Annotated[int, BeforeValidator(_size)] = 100 * 2**20

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, inputs: dict[str, InputSpec]) -> dict[str, InputSpec]:
        for name in inputs:
            if not _INPUT_NAME.match(name):
                raise ValueError(f"input name {name!r}: use letters, digits, '_' and '-'")
        return inputs

    @model_validator(mode="after")
    def _references(self) -> DataFrameWorkload:
        names = list(self.inputs)
        if self.main is not None and self.main not in self.inputs:
            raise ValueError(f"main: {self.main!r} is not an input (inputs: {', '.join(names)})")
        if self.main is None and len(names) > 1 and "main" not in self.inputs:
            raise ValueError(f"main: several inputs ({', '.join(names)}); say which one the "
                             "steps start from with main: NAME (or call it main)")
        for index, item in enumerate(self.steps):
            if isinstance(item, MergeStep):
                right = item.merge.right
                if right not in self.inputs:
                    raise ValueError(f"steps[{index}].merge.right: {right!r} is not an input "
                                     f"(inputs: {', '.join(names)})")
                if right == self.main_name:
                    raise ValueError(f"steps[{index}].merge.right: {right!r} is the main "
                                     "input itself")
        return self

    @property
    def main_name(self) -> str:
        """The input the steps start from."""
        if self.main:
            return self.main
        return "main" if "main" in self.inputs else next(iter(self.inputs))

    def partition_size_text(self) -> str:
        return format_memory(self.partition_size)
