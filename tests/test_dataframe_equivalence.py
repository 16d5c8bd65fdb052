"""Shipyard's dataframe steps on Dask give what pandas gives on the whole data.

The design doc's contract: statistics (mean, median, ...) are of the whole dataset, not
of a partition, and results equal pandas running the same steps on the whole data, up to
float rounding and to row order where no sort is asked for.

Hypothesis draws frames with missing values, a partitioning (which must not matter) and
step sequences valid for the frame's columns; each property runs the steps with
:func:`shipyard.data.ops.apply_step` on Dask and with the independent pandas reference in
``pandas_reference.py``, and compares the two with :func:`pandas_reference.assert_same`.

Every discrepancy these properties found has a minimal reproduction among the
``test_regression_*`` tests below, and is fixed. ``KNOWN`` holds a switch per problem
found (all off): a newly found one can be kept out of the properties while it is being
fixed, with an xfail reproduction beside it.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import note as _note
from hypothesis.control import currently_in_test_context
from hypothesis import strategies as st
from pydantic import TypeAdapter

import pandas_reference
from pandas_reference import assert_same, run_steps
from shipyard.data.ops import StepEnv, apply_step
from shipyard.data.spec import DataFrameWorkload, Step

pytestmark = [
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),   # mean of an empty slice, ...
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),      # dask's "Insufficient elements"
]

#: discrepancies found by the properties (all fixed, so all off; see the module docstring)
KNOWN = {
    # dask: drop_duplicates(keep=False) raises NotImplementedError
    "drop_duplicates_keep_false": False,
    # dask's groupby.agg refuses "nunique" ("unknown aggregate nunique")
    "groupby_nunique": False,
    # dask's groupby(sort=True).agg({..: ["median"]}) fails: KeyError 'options'
    "groupby_median": False,
    # dask's groupby var/std use sum(x^2) - sum(x)^2/n: inexact (even negative) for
    # values that are not small binary fractions; the properties use exact values only
    "groupby_var_cancellation": False,
    # dask's drop_duplicates hash-shuffles the rows: a later step that depends on row
    # order (drop_duplicates of a subset keeping first/last, groupby first/last) keeps
    # other rows than pandas does
    "drop_duplicates_reorders": False,
    # fillna mode sorts the most frequent values by value; pandas' mode()[0] of a
    # categorical is the first in the categories' order
    "mode_of_unsorted_categories": False,
    # a merge (shuffle join) of a string key with a categorical key fails in Dask when
    # some output partitions have rows from one side only: AttributeError
    "merge_string_with_categorical_key": False,
    # astype category on Dask gives unknown categories: get_dummies then takes the
    # values present at its step, where pandas keeps the categories of the astype step
    "astype_category_then_filter": False,
    # astype category on Dask gives unknown categories (each partition its own): a
    # sort_values by such a column does not sort, a groupby by it is not sorted by its keys
    "order_by_unknown_categories": False,
    # dask: a column made by one assign and set again by a later one, after another new
    # column, comes out last (values right, column order not pandas'); the steps made
    # columns n*/g* are then never set again
    "assign_again_reorders_columns": False,
    # cut's list of edges is validated as floats: integer edges (bins: [0, 30, 100]) give
    # intervals (0.0, 30.0] where pandas gives (0, 30] -- equal as values, but not as
    # text: get_dummies' column names (and written labels) differ
    "cut_integer_edges_become_floats": False,
    # dask pushes a one-column projection below DataFrame.fillna({column: value}), where
    # it becomes Series.fillna({column: value}), which fills nothing: a cut (integer bins:
    # edges, and labels) or get_dummies (categories) right after a fillna of the same
    # column sees the column unfilled
    "fill_lost_in_projection": False,
    # dask-ml's StandardScaler treats only an exactly-zero variance as constant: a
    # constant column whose mean rounds (0.1, 0.1, 0.1) scales to +-1 instead of 0
    "scale_constant_column": False,
}

#: more examples for a deeper run: EQUIVALENCE_EXAMPLES_FACTOR=10 pytest ...
FACTOR = float(os.environ.get("EQUIVALENCE_EXAMPLES_FACTOR", "1"))
#: new examples on every run: EQUIVALENCE_EXPLORE=1 pytest ... By default each run draws
#: the same ones (derived from the tests themselves), so that the suite's verdict on a
#: commit does not change from run to run: a random run found a real bug in an unrelated
#: landing's CI (bin numbers' dtype, test_regression_bin_numbers_...). Explore, and turn
#: what exploring finds into a regression test.
EXPLORE = os.environ.get("EQUIVALENCE_EXPLORE", "") not in ("", "0")


def examples(n: int) -> int:
    return max(1, round(n * FACTOR))


PROFILE = settings(
    max_examples=examples(30), deadline=None, derandomize=not EXPLORE, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example, HealthCheck.filter_too_much],
)

STEP = TypeAdapter(Step)

# column kinds the step strategies track
FLOAT, INT, STR, CAT, UCAT, DCAT, BOOL, INTERVAL, OTHER = (
    "float", "int", "str", "cat", "ucat", "dcat", "bool", "interval", "other")
# cat: a categorical of strings with sorted categories; ucat: with categories in another
# order; dcat: made by astype category (Dask does not know its categories); interval:
# pd.cut's intervals; other: a categorical of numbers (astype category)
NUMERIC = (FLOAT, INT)
STRINGS = (STR, CAT, UCAT, DCAT)
#: every string (and label) value is one of these, so conditions on any string column mean something
WORDS = ["a", "b", "c", "d", "e"]


# -- running both sides ------------------------------------------------------------------


def note(text: str) -> None:
    """Hypothesis' note (shown with a failing example); print outside Hypothesis."""
    if currently_in_test_context():
        _note(text)
    else:
        print(text)


def validated(steps: list[dict], inputs: dict[str, pd.DataFrame] | None = None) -> list:
    """The steps as shipyard's models, validated as part of a whole workload spec (which
    checks merge references; it reads no files)."""
    names = {"main": {"path": "main.parquet"}}
    names.update({name: {"path": f"{name}.parquet"} for name in (inputs or {})})
    workload = DataFrameWorkload.model_validate({"inputs": names, "steps": steps})
    one_by_one = [STEP.validate_python(step) for step in steps]
    assert workload.steps == one_by_one
    return one_by_one


def run_shipyard(pdf: pd.DataFrame, steps: list[dict], *, npartitions: int = 1,
                 inputs: dict[str, pd.DataFrame] | None = None, right_partitions: int = 2,
                 broadcast_limit: int | None = None) -> pd.DataFrame:
    """Apply the steps with shipyard's Dask implementation and compute the result."""
    inputs = inputs or {}
    options = {} if broadcast_limit is None else {"broadcast_limit": broadcast_limit}
    env = StepEnv(
        read=lambda name: dd.from_pandas(inputs[name], npartitions=right_partitions),
        estimated_bytes=lambda name: int(inputs[name].memory_usage(deep=True).sum()),
        **options,
    )
    frame = dd.from_pandas(pdf, npartitions=npartitions)
    for item in validated(steps, inputs):
        frame = apply_step(frame, item, env)
    return frame.compute()


def check(pdf: pd.DataFrame, steps: list[dict], *, npartitions: int = 1,
          inputs: dict[str, pd.DataFrame] | None = None, **options) -> pd.DataFrame | None:
    """Shipyard's result equals the pandas reference's (sorted, unless the steps end in a
    sort or a groupby). Where pandas itself refuses the steps, shipyard must refuse too."""
    note(f"npartitions={npartitions}\nsteps={steps!r}\nframe=\n{pdf.to_string()}"
         if len(pdf) <= 40 else f"npartitions={npartitions}\nsteps={steps!r}\n"
                                f"frame dtypes:\n{pdf.dtypes}")
    inputs = inputs or {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = run_steps(pdf.copy(), steps, {k: v.copy() for k, v in inputs.items()})
    except (ValueError, TypeError, KeyError) as err:
        note(f"pandas refuses: {type(err).__name__}: {err}")
        if currently_in_test_context():
            event(f"pandas refuses: {type(err).__name__}: {str(err)[:40]}")
        with pytest.raises(Exception):
            run_shipyard(pdf, steps, npartitions=npartitions, inputs=inputs, **options)
        return None
    result = run_shipyard(pdf, steps, npartitions=npartitions, inputs=inputs, **options)
    if currently_in_test_context():
        event("empty result" if expected.empty else "rows in the result")
    note(f"result dtypes: {dict(result.dtypes.astype(str))}\n"
         f"expected dtypes: {dict(expected.dtypes.astype(str))}")
    last = steps[-1] if steps else {}
    if "sort_values" in last:
        by = last["sort_values"]["by"]
        by = [by] if isinstance(by, str) else list(by)
        # ties may come in any order: the keys are in order, the rows are the same
        assert_same(result[by], expected[by], sort=False)
        assert_same(result, expected, sort=True)
    elif "groupby" in last:
        assert_same(result, expected, sort=False)  # sorted by the keys, which are unique
    else:
        assert_same(result, expected, sort=True)
    return result


# -- frames ------------------------------------------------------------------------------

#: quarters: exact binary fractions, with many ties (modes, groups, duplicates)
quarters = st.one_of(st.none(), st.integers(-20, 20).map(lambda v: v / 4))
#: cents: decimals that binary floats only approximate
cents = st.one_of(st.none(), st.integers(-100_000, 100_000).map(lambda v: v / 100))
words = st.sampled_from([*WORDS[:4], None])


def _strings(values: list, dtype: str) -> pd.Series:
    if dtype == "category-fixed":  # own categories: not sorted, one never used
        return pd.Series(values, dtype=pd.CategoricalDtype(["d", "c", "b", "a", "e"]))
    return pd.Series(values, dtype=dtype)


@st.composite
def frames(draw, min_rows: int = 0, max_rows: int = 200) -> tuple[pd.DataFrame, dict]:
    """A frame with float columns ``x`` (quarters) and ``y`` (cents) with NaNs, an int
    column ``i``, a string column ``s`` with None (str, object or categorical) and a bool
    column ``b``; and its schema ``{column: kind}``."""
    n = draw(st.integers(min_rows, max_rows))

    def column(elements):
        return draw(st.lists(elements, min_size=n, max_size=n))

    string_dtype = draw(st.sampled_from(["str", "object", "category", "category-fixed"]))
    frame = pd.DataFrame({
        "x": pd.Series(column(quarters), dtype="float64"),
        "y": pd.Series(column(cents), dtype="float64"),
        "i": pd.Series(column(st.integers(-3, 12)), dtype="int64"),
        "s": _strings(column(words), string_dtype),
        "b": pd.Series(column(st.booleans()), dtype="bool"),
    })
    schema = {"x": FLOAT, "y": FLOAT, "i": INT,
              "s": {"category": CAT, "category-fixed": UCAT}.get(string_dtype, STR),
              "b": BOOL}
    return frame, schema


partitions = st.integers(1, 5)


# -- steps -------------------------------------------------------------------------------


def _columns(schema: dict, *kinds: str) -> list[str]:
    return [c for c, k in schema.items() if k in kinds]


def _some(options: list) -> list:
    """``options``, which a step needs to be non-empty (else the draw is discarded)."""
    assume(options)
    return options


def _settable(column: str) -> bool:
    """Whether a step may set this existing column again (see KNOWN)."""
    return not (KNOWN["assign_again_reorders_columns"] and column.startswith(("n", "g")))


def _new_name(schema: dict, prefix: str = "n") -> str:
    index = 0
    while f"{prefix}{index}" in schema:
        index += 1
    return f"{prefix}{index}"


@st.composite
def conditions(draw, schema: dict) -> str:
    """One pandas query condition on a column."""
    column = draw(st.sampled_from(_some(_columns(schema, FLOAT, INT, *STRINGS, BOOL))))
    kind = schema[column]
    op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
    if kind == FLOAT:
        value = draw(st.sampled_from([-2, -0.5, 0, 0.25, 1, 3.5, 250, -400]))
        return draw(st.sampled_from([f"{column} {op} {value}", f"{column} == {column}",
                                     f"{column} != {column}"]))
    if kind == INT:
        value = draw(st.integers(-3, 12))
        return draw(st.sampled_from([f"{column} {op} {value}", f"{column} % 2 == 0"]))
    if kind in STRINGS:
        word, other = draw(st.sampled_from(WORDS)), draw(st.sampled_from(WORDS))
        return draw(st.sampled_from([
            f"{column} == '{word}'", f"{column} != '{word}'",
            f"{column} in ['{word}', '{other}']", f"{column} not in ['{word}']"]))
    return draw(st.sampled_from([f"{column}", f"~{column}", f"{column} == False"]))


@st.composite
def query_steps(draw, schema: dict):
    first = draw(conditions(schema))
    if draw(st.booleans()):
        second = draw(conditions(schema))
        joiner = draw(st.sampled_from(["and", "or", "&", "|"]))
        first = f"({first}) {joiner} ({second})"
    return {"query": first}, schema


def _fill_choices(kind: str) -> list:
    if kind == FLOAT:
        return ["mean", "median", "mode", "min", "max", 0, -1.5, 1000]
    if kind == INT:
        return ["mean", "median", "mode", "min", "max", 7]
    if kind == STR:
        return ["mode", "min", "max", "zz"]
    if kind in (CAT, DCAT) or (kind == UCAT and not KNOWN["mode_of_unsorted_categories"]):
        return ["mode"]
    if kind == BOOL:
        return ["mode"]
    return []


@st.composite
def fillna_steps(draw, schema: dict):
    candidates = [c for c, k in schema.items() if _fill_choices(k)]
    columns = draw(st.lists(st.sampled_from(_some(candidates)), min_size=1, max_size=4,
                            unique=True))
    fills = {c: draw(st.sampled_from(_fill_choices(schema[c]))) for c in columns}
    schema = dict(schema)
    for column, how in fills.items():
        if schema[column] == INT and how in ("mean", "median"):
            schema[column] = FLOAT
    return {"fillna": fills}, schema


@st.composite
def dropna_steps(draw, schema: dict):
    args: dict = {}
    if draw(st.booleans()):
        args["subset"] = draw(st.lists(st.sampled_from(list(schema)), min_size=1,
                                       max_size=3, unique=True))
    choice = draw(st.sampled_from(["how", "thresh", "none"]))
    if choice == "how":
        args["how"] = draw(st.sampled_from(["any", "all"]))
    elif choice == "thresh":
        args["thresh"] = draw(st.integers(0, len(args.get("subset", schema))))
    return ({"dropna": args} if args or draw(st.booleans()) else {"dropna": None}), schema


@st.composite
def assign_steps(draw, schema: dict):
    schema = dict(schema)
    columns = {}
    for _ in range(draw(st.integers(1, 2))):
        numeric = _columns(schema, *NUMERIC)
        if not numeric:
            break
        a, b = draw(st.sampled_from(numeric)), draw(st.sampled_from(numeric))
        floats = FLOAT in (schema[a], schema[b])
        op = draw(st.sampled_from(["+", "-", "*", "/", ">", "scale"]))
        if op == ">":
            expression, kind = f"{a} > {b}", BOOL
        elif op == "scale":
            factor = draw(st.sampled_from([2, 0.5, -3]))
            expression = f"{a} * {factor}"
            kind = FLOAT if schema[a] == FLOAT or factor == 0.5 else INT
        else:
            expression = f"{a} {op} {b}"
            kind = FLOAT if floats or op == "/" else INT
        name = draw(st.sampled_from([_new_name(schema), a] if _settable(a) else
                                    [_new_name(schema)]))
        if name in columns:
            break
        columns[name] = expression
        schema[name] = kind
    assume(columns)
    return {"assign": columns}, schema


@st.composite
def cut_steps(draw, schema: dict):
    column = draw(st.sampled_from(_some(_columns(schema, *NUMERIC))))
    if draw(st.booleans()):
        bins = draw(st.integers(1, 5))
        edges = bins
    else:
        scale = draw(st.sampled_from([0.25, 1, 150]))
        points = draw(st.lists(st.integers(-8, 8), min_size=2, max_size=6, unique=True))
        bins = [p * scale for p in sorted(points)]  # integers when scale is, as in YAML
        if KNOWN["cut_integer_edges_become_floats"]:
            bins = [float(p) for p in bins]
        edges = len(bins) - 1
    labels = draw(st.sampled_from(["labels", None, False]))
    args: dict = {"column": column, "bins": bins}
    if labels == "labels":
        args["labels"] = draw(st.permutations(WORDS))[:edges]
    elif labels is False or draw(st.booleans()):
        args["labels"] = labels
    into = draw(st.sampled_from([None, _new_name(schema, "g")] if _settable(column) else
                                [_new_name(schema, "g")]))
    if into:
        args["into"] = into
    if draw(st.booleans()):
        args["right"] = draw(st.booleans())
    if draw(st.booleans()):
        args["include_lowest"] = draw(st.booleans())
    schema = dict(schema)
    schema[into or column] = {"labels": UCAT, None: INTERVAL, False: FLOAT}[labels]
    return {"cut": args}, schema


ASTYPES = {
    # (no float -> str: a mean's last-digit rounding would become a different string)
    INT: [("float64", FLOAT), ("Int64", INT), ("str", STR), ("category", OTHER)],
    STR: [("category", DCAT)],
    CAT: [("str", STR)],
    UCAT: [("str", STR)],
    DCAT: [("str", STR)],
    BOOL: [("int64", INT), ("float64", FLOAT)],
}


@st.composite
def astype_steps(draw, schema: dict):
    candidates = [c for c, k in schema.items() if k in ASTYPES]
    columns = draw(st.lists(st.sampled_from(_some(candidates)), min_size=1, max_size=2,
                            unique=True))
    schema = dict(schema)
    casts = {}
    for column in columns:
        dtype, kind = draw(st.sampled_from(ASTYPES[schema[column]]))
        casts[column] = dtype
        schema[column] = kind
    return {"astype": casts}, schema


@st.composite
def rename_steps(draw, schema: dict):
    columns = draw(st.lists(st.sampled_from(list(schema)), min_size=1, max_size=3, unique=True))
    names = {c: f"{c}_r" for c in columns if f"{c}_r" not in schema}
    assume(names)
    return {"rename": names}, {names.get(c, c): k for c, k in schema.items()}


@st.composite
def select_steps(draw, schema: dict):
    columns = draw(st.lists(st.sampled_from(list(schema)), min_size=1, max_size=len(schema),
                            unique=True))
    if len(columns) == 1 and draw(st.booleans()):
        return {"select": columns[0]}, {columns[0]: schema[columns[0]]}  # no brackets
    return {"select": columns}, {c: schema[c] for c in columns}


@st.composite
def drop_steps(draw, schema: dict):
    assume(len(schema) > 1)
    columns = draw(st.lists(st.sampled_from(list(schema)), min_size=1,
                            max_size=len(schema) - 1, unique=True))
    return {"drop": columns}, {c: k for c, k in schema.items() if c not in columns}


@st.composite
def drop_duplicates_steps(draw, schema: dict):
    args: dict = {}
    if draw(st.booleans()):
        args["subset"] = draw(st.lists(st.sampled_from(list(schema)), min_size=1, max_size=2,
                                       unique=True))
    keeps = ["first", "last"] + ([] if KNOWN["drop_duplicates_keep_false"] else [False])
    if draw(st.booleans()):
        args["keep"] = draw(st.sampled_from(keeps))
    return ({"drop_duplicates": args} if args or draw(st.booleans())
            else {"drop_duplicates": None}), schema


SORTABLE = (FLOAT, INT, STR, CAT, UCAT, BOOL, INTERVAL) + (
    () if KNOWN["order_by_unknown_categories"] else (DCAT, OTHER))


@st.composite
def sort_values_steps(draw, schema: dict):
    by = draw(st.lists(st.sampled_from(_some(_columns(schema, *SORTABLE))), min_size=1,
                       max_size=3, unique=True))
    args: dict = {"by": by}
    ascending = draw(st.sampled_from(["default", "one", "each"]))
    if ascending == "one":
        args["ascending"] = draw(st.booleans())
    elif ascending == "each":
        args["ascending"] = draw(st.lists(st.booleans(), min_size=len(by), max_size=len(by)))
    if draw(st.booleans()):
        args["na_position"] = draw(st.sampled_from(["first", "last"]))
    return {"sort_values": args}, schema


def _aggregations(kind: str, exact: bool, in_order: bool = True) -> list[str]:
    functions = _all_aggregations(kind, exact)
    if not in_order:  # first and last depend on the row order
        functions = [f for f in functions if f not in ("first", "last")]
    return functions


def _all_aggregations(kind: str, exact: bool) -> list[str]:
    if kind in NUMERIC:
        functions = ["sum", "mean", "count", "min", "max", "size", "first", "last"]
        if exact or not KNOWN["groupby_var_cancellation"]:
            functions += ["std", "var"]
        if not KNOWN["groupby_median"]:
            functions.append("median")
    elif kind == BOOL:
        functions = ["sum", "mean", "count", "min", "max", "size", "first", "last"]
    elif kind == STR:
        functions = ["count", "size", "first", "last", "min", "max"]
    else:
        functions = ["count", "size", "first", "last"]
    if not KNOWN["groupby_nunique"]:
        functions.append("nunique")
    return functions


@st.composite
def groupby_steps(draw, schema: dict, exact: frozenset = frozenset(), in_order: bool = True):
    """``exact``: the columns whose values sum exactly in binary (var/std are only exact
    for those in Dask; see KNOWN); ``in_order``: whether the rows are still in pandas'
    order (first/last need it)."""
    keys = _columns(schema, *SORTABLE)  # groupby sorts by its keys
    by = draw(st.lists(st.sampled_from(_some(keys)), min_size=1, max_size=2, unique=True))
    rest = [c for c in schema if c not in by]
    assume(rest)
    columns = draw(st.lists(st.sampled_from(rest), min_size=1, max_size=3, unique=True))
    agg = {}
    for column in columns:
        functions = _aggregations(schema[column], column in exact, in_order)
        chosen = draw(st.lists(st.sampled_from(functions), min_size=1, max_size=4, unique=True))
        agg[column] = chosen[0] if len(chosen) == 1 and draw(st.booleans()) else chosen
    args: dict = {"by": by[0] if len(by) == 1 and draw(st.booleans()) else by, "agg": agg}
    if draw(st.booleans()):
        args["dropna"] = draw(st.booleans())
    return {"groupby": args}, None


@st.composite
def get_dummies_steps(draw, schema: dict):
    candidates = _columns(schema, *STRINGS, BOOL, INT, OTHER, INTERVAL)
    columns = draw(st.lists(st.sampled_from(_some(candidates)), min_size=1, max_size=2,
                            unique=True))
    args: dict = {"columns": columns}
    if draw(st.booleans()):
        args["prefix_sep"] = draw(st.sampled_from(["_", "__", "="]))
    if draw(st.booleans()):
        args["drop_first"] = draw(st.booleans())
    if draw(st.booleans()):
        args["dtype"] = draw(st.sampled_from(["bool", "int64", "float64", "uint8"]))
    return {"get_dummies": args}, None


@st.composite
def scale_steps(draw, schema: dict):
    candidates = [c for c in _columns(schema, FLOAT, INT, BOOL) if _settable(c)]
    columns = draw(st.lists(st.sampled_from(_some(candidates)), min_size=1, max_size=3,
                            unique=True))
    args: dict = {"columns": columns}
    if draw(st.booleans()):
        args["method"] = draw(st.sampled_from(["standard", "minmax"]))
    return {"scale": args}, schema


def _reads_a_filled_column(steps: list[dict], step: dict) -> bool:
    """Whether ``step`` is a cut or get_dummies of a column an earlier fillna filled (see
    KNOWN["fill_lost_in_projection"])."""
    if not KNOWN["fill_lost_in_projection"]:
        return False
    filled: set[str] = set()
    for earlier in steps:
        if "fillna" in earlier:
            filled |= set(earlier["fillna"])
        elif "rename" in earlier:
            filled = {earlier["rename"].get(c, c) for c in filled}
    if "cut" in step:
        return step["cut"]["column"] in filled
    if "get_dummies" in step:
        return bool(filled & set(step["get_dummies"]["columns"]))
    return False


@st.composite
def sequences(draw, schema: dict, makers: list, min_size: int = 1, max_size: int = 4):
    """A list of steps, each drawn from ``makers`` for the columns as the steps before
    left them; returns the steps and the final schema."""
    steps = []
    shuffled = False
    for _ in range(draw(st.integers(min_size, max_size))):
        maker = draw(st.sampled_from(makers))
        step, schema = draw(maker(schema))
        assume(not _reads_a_filled_column(steps, step))
        if "drop_duplicates" in step:
            if shuffled and KNOWN["drop_duplicates_reorders"]:
                step = {"drop_duplicates": None}  # whole rows: which is kept does not matter
            shuffled = True
        steps.append(step)
    return steps, schema


# -- the properties ----------------------------------------------------------------------


@PROFILE
@given(data=frames(), npartitions=partitions, st_data=st.data())
def test_fillna_with_whole_dataset_statistics(data, npartitions, st_data):
    frame, schema = data
    steps, schema = st_data.draw(sequences(schema, [query_steps], min_size=0, max_size=1))
    step, _ = st_data.draw(fillna_steps(schema))
    check(frame, [*steps, step], npartitions=npartitions)


@PROFILE
@given(data=frames(), npartitions=partitions, st_data=st.data())
def test_fillna_every_statistic_of_every_column(data, npartitions, st_data):
    """All the statistics at once, after a query that may empty whole partitions."""
    frame, schema = data
    steps, schema = st_data.draw(sequences(schema, [query_steps], min_size=0, max_size=1))
    how = {FLOAT: ["mean", "median", "mode", "min", "max"], INT: ["mean", "median", "mode"],
           STR: ["mode", "min", "max"], CAT: ["mode"], DCAT: ["mode"], BOOL: ["mode"],
           UCAT: [] if KNOWN["mode_of_unsorted_categories"] else ["mode"]}
    fills = {c: st_data.draw(st.sampled_from(how[k])) for c, k in schema.items() if how[k]}
    check(frame, [*steps, {"fillna": fills}], npartitions=npartitions)


@settings(PROFILE, max_examples=examples(12))
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(3_000, 20_000),
       shape=st.sampled_from(["normal", "lognormal", "few values", "sorted", "two humps"]),
       missing=st.sampled_from([0.0, 0.1, 0.6]), npartitions=st.integers(1, 8))
def test_exact_median_on_larger_data(seed, rows, shape, missing, npartitions):
    """Large enough that the median takes the approximate-bracket path (not a full sort)."""
    rng = np.random.default_rng(seed)
    values = {
        "normal": lambda: rng.normal(50, 10, rows),
        "lognormal": lambda: rng.lognormal(0, 2.5, rows),
        "few values": lambda: rng.integers(0, 4, rows).astype("float64"),
        "sorted": lambda: np.sort(rng.exponential(3, rows)),
        "two humps": lambda: np.where(rng.random(rows) < 0.5, rng.normal(-100, 1, rows),
                                      rng.normal(100, 1, rows)),
    }[shape]()
    values[rng.random(rows) < missing] = np.nan
    frame = pd.DataFrame({"v": values, "w": values[::-1].copy(),
                          "k": rng.integers(0, 1000, rows)})
    check(frame, [{"fillna": {"v": "median", "w": "median", "k": "median"}}],
          npartitions=npartitions)


@PROFILE
@given(data=frames(), npartitions=partitions, st_data=st.data())
def test_query_assign_cut_dropna_chains(data, npartitions, st_data):
    frame, schema = data
    steps, _ = st_data.draw(sequences(
        schema, [query_steps, assign_steps, cut_steps, dropna_steps, fillna_steps],
        min_size=1, max_size=5))
    check(frame, steps, npartitions=npartitions)


@PROFILE
@given(data=frames(), npartitions=partitions, st_data=st.data())
def test_groupby_every_aggregation(data, npartitions, st_data):
    frame, schema = data
    # prefix steps that keep x, i and b exact binary fractions (see KNOWN)
    steps, schema = st_data.draw(sequences(
        schema, [query_steps, cut_steps, dropna_steps, astype_steps], min_size=0, max_size=2))
    exact = frozenset({"x", "i", "b"}) if not any("astype" in s for s in steps) else \
        frozenset()
    step, _ = st_data.draw(groupby_steps(schema, exact))
    check(frame, [*steps, step], npartitions=npartitions)


@st.composite
def right_frames(draw, keys: list[str], right_keys: list[str],
                 left_strings: str) -> pd.DataFrame:
    n = draw(st.integers(0, 60))

    def column(elements):
        return draw(st.lists(elements, min_size=n, max_size=n))

    values = {"x": (quarters, "float64"), "i": (st.integers(-3, 12), "int64"),
              "s": (words, draw(st.sampled_from(["str", "object", "category"])))}
    if KNOWN["merge_string_with_categorical_key"]:
        categorical = isinstance(left_strings, pd.CategoricalDtype)
        values["s"] = (words, left_strings if categorical else
                       draw(st.sampled_from(["str", "object"])))
    frame = {}
    for key, name in zip(keys, right_keys):
        elements, dtype = values[key]
        frame[name] = pd.Series(column(elements), dtype=dtype)
    frame["w"] = pd.Series(column(cents), dtype="float64")
    if draw(st.booleans()):
        frame["y"] = pd.Series(column(cents), dtype="float64")  # clashes: suffixes
    return pd.DataFrame(frame)


@PROFILE
@given(data=frames(max_rows=120), npartitions=partitions, st_data=st.data())
def test_merge_with_another_input(data, npartitions, st_data):
    frame, schema = data
    steps, schema = st_data.draw(sequences(
        schema, [query_steps, fillna_steps], min_size=0, max_size=1))
    keys = st_data.draw(st.sampled_from([["i"], ["s"], ["x"], ["i", "s"]]))
    separate = st_data.draw(st.booleans())
    right_keys = [f"{k}2" for k in keys] if separate else keys
    right = st_data.draw(right_frames(keys, right_keys, frame["s"].dtype))
    args: dict = {"right": "other"}
    if separate:
        args["left_on"], args["right_on"] = keys, right_keys
    else:
        args["on"] = keys[0] if len(keys) == 1 and st_data.draw(st.booleans()) else keys
    args["how"] = st_data.draw(st.sampled_from(["inner", "left", "right", "outer"]))
    if st_data.draw(st.booleans()):
        args["suffixes"] = st_data.draw(st.sampled_from([["_l", "_r"], ["", "_other"]]))
    if st_data.draw(st.booleans()):
        args["broadcast"] = st_data.draw(st.booleans())
    # 0 forces a shuffle join, a huge limit a broadcast (for inner and left joins)
    limit = st_data.draw(st.sampled_from([0, 2**40]))
    check(frame, [*steps, {"merge": args}], npartitions=npartitions, inputs={"other": right},
          right_partitions=st_data.draw(st.integers(1, 3)), broadcast_limit=limit)


@PROFILE
@given(data=frames(), npartitions=partitions, st_data=st.data())
def test_get_dummies_categories_of_the_whole_dataset(data, npartitions, st_data):
    frame, schema = data
    makers = [query_steps, cut_steps, fillna_steps, dropna_steps]
    if not KNOWN["astype_category_then_filter"]:
        makers.append(astype_steps)
    steps, schema = st_data.draw(sequences(schema, makers, min_size=0, max_size=2))
    if KNOWN["astype_category_then_filter"] and st_data.draw(st.booleans()):
        step, schema = st_data.draw(astype_steps(schema))  # then no filter before the dummies
        steps.append(step)
    step, _ = st_data.draw(get_dummies_steps(schema))
    assume(not _reads_a_filled_column(steps, step))
    check(frame, [*steps, step], npartitions=npartitions)


def _constant(series: pd.Series) -> bool:
    values = series.dropna()
    return len(values) >= 2 and values.nunique() == 1


@PROFILE
@given(data=frames(), npartitions=partitions, st_data=st.data())
def test_scale_like_scikit_learn(data, npartitions, st_data):
    frame, schema = data
    steps, schema = st_data.draw(sequences(
        schema, [query_steps, fillna_steps, assign_steps], min_size=0, max_size=2))
    step, _ = st_data.draw(scale_steps(schema))
    _scale_assumptions(frame, steps, step)
    check(frame, [*steps, step], npartitions=npartitions)


def _scale_assumptions(frame: pd.DataFrame, steps: list[dict], step: dict) -> None:
    columns = step["scale"]["columns"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            before = run_steps(frame, steps, {})[columns].astype("float64")
    except (ValueError, TypeError, KeyError):
        return
    # scikit-learn refuses infinities (x / 0): no reference to compare with
    assume(not np.isinf(before.to_numpy()).any())
    if KNOWN["scale_constant_column"] and step["scale"].get("method") != "minmax":
        assume(not any(_constant(before[c]) for c in columns))


@PROFILE
@given(data=frames(), npartitions=partitions, st_data=st.data())
def test_reshaping_steps_and_sort_values(data, npartitions, st_data):
    """drop_duplicates, rename, select, drop, astype (and a few others), then maybe a sort."""
    frame, schema = data
    steps, schema = st_data.draw(sequences(
        schema, [drop_duplicates_steps, rename_steps, select_steps, drop_steps, astype_steps,
                 dropna_steps, query_steps, fillna_steps], min_size=1, max_size=4))
    if st_data.draw(st.booleans()) and _columns(schema, *SORTABLE):
        step, _ = st_data.draw(sort_values_steps(schema))
        steps.append(step)
    check(frame, steps, npartitions=npartitions)


@PROFILE
@given(data=frames(), npartitions=partitions, st_data=st.data())
def test_sort_values(data, npartitions, st_data):
    frame, schema = data
    steps, schema = st_data.draw(sequences(
        schema, [query_steps, cut_steps, astype_steps], min_size=0, max_size=2))
    step, _ = st_data.draw(sort_values_steps(schema))
    check(frame, [*steps, step], npartitions=npartitions)


MIDDLE_STEPS = [query_steps, fillna_steps, dropna_steps, assign_steps, cut_steps, astype_steps,
                rename_steps, select_steps, drop_steps, drop_duplicates_steps]


@PROFILE
@given(data=frames(), npartitions=partitions, st_data=st.data())
def test_any_sequence_of_steps(data, npartitions, st_data):
    """Any of the steps in any order, then maybe one that ends a sequence (groupby,
    get_dummies, scale, sort_values)."""
    frame, schema = data
    steps, schema = st_data.draw(sequences(schema, MIDDLE_STEPS, min_size=1, max_size=6))
    end = st_data.draw(st.sampled_from(["none", "groupby", "get_dummies", "scale", "sort"]))
    reordered = any("drop_duplicates" in s for s in steps)
    unknown_categories = any("astype" in s for s in steps)
    if end == "groupby":
        step, _ = st_data.draw(groupby_steps(
            schema, in_order=not (reordered and KNOWN["drop_duplicates_reorders"])))
    elif end == "get_dummies" and _columns(schema, *STRINGS, BOOL, INT, OTHER, INTERVAL):
        assume(not (unknown_categories and KNOWN["astype_category_then_filter"]))
        step, _ = st_data.draw(get_dummies_steps(schema))
        assume(not _reads_a_filled_column(steps, step))
    elif end == "scale" and [c for c in _columns(schema, FLOAT, INT, BOOL) if _settable(c)]:
        step, _ = st_data.draw(scale_steps(schema))
        _scale_assumptions(frame, steps, step)
    elif end == "sort" and _columns(schema, *SORTABLE):
        step, _ = st_data.draw(sort_values_steps(schema))
    else:
        step = None
    check(frame, steps + ([step] if step else []), npartitions=npartitions)


@PROFILE
@given(data=frames(), npartitions=partitions, frac=st.floats(0.01, 2.0),
       replace=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_sample_properties(data, npartitions, frac, replace, seed):
    """Not row-equal to pandas (Dask samples each partition): rows of the input, the same
    for the same seed and partitioning, about ``frac`` of the rows."""
    frame, _ = data
    assume(frac <= 1 or replace)
    steps = [{"sample": {"frac": frac, "replace": replace, "random_state": seed}}]
    first = run_shipyard(frame, steps, npartitions=npartitions)
    second = run_shipyard(frame, steps, npartitions=npartitions)
    assert_same(first, second, sort=False)  # deterministic, row order included
    assert list(first.columns) == list(frame.columns)
    if not replace:
        assert first.index.is_unique
    assert set(first.index) <= set(frame.index)
    # each row is the input's row with that index
    assert_same(first.reset_index(drop=True), frame.loc[first.index].reset_index(drop=True),
                sort=False)
    # each partition takes round(frac * its rows): at most half a row off per partition
    actual = dd.from_pandas(frame, npartitions=npartitions).npartitions
    assert abs(len(first) - frac * len(frame)) <= actual / 2 + 1e-9


# -- the classic example -----------------------------------------------------------------


def churn_frame(rows: int = 5000, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, rows).clip(18, 90).round()
    income = rng.lognormal(11, 0.5, rows).round(2)
    age[rng.random(rows) < 0.1] = np.nan
    income[rng.random(rows) < 0.15] = np.nan
    purchases = rng.integers(1, 30, rows)
    churn_odds = 0.5 - (np.nan_to_num(age, nan=40) - 40) / 100
    return pd.DataFrame({
        "customer_id": np.arange(rows),
        "age": age,
        "income": income,
        "purchases": purchases,
        "city": pd.Series(rng.choice(["Berlin", "Paris", "Rome", None], rows), dtype="str"),
        "will_churn": (rng.random(rows) < churn_odds).astype("int64"),
    })


CHURN_STEPS = [
    {"fillna": {"age": "mean", "income": "median"}},
    {"assign": {"income_per_purchase": "income / purchases"}},
    {"cut": {"column": "age", "bins": [0, 30, 40, 100], "labels": ["young", "middle", "senior"],
             "into": "age_group"}},
    {"query": "income > 60000"},
    {"groupby": {"by": ["age_group"], "agg": {"will_churn": ["mean", "count"]}}},
]


def test_churn_example_matches_pandas():
    frame = churn_frame()
    result = check(frame, CHURN_STEPS, npartitions=4)
    assert result is not None
    assert list(result.columns) == ["age_group", "will_churn_mean", "will_churn_count"]
    assert list(result["age_group"].astype(str)) == ["young", "middle", "senior"]
    assert result["will_churn_count"].sum() > 1000  # the example is not vacuous
    # before the groupby too: every row, the statistics of the whole data filled in
    check(frame, CHURN_STEPS[:-1], npartitions=4)


# -- the comparison itself can fail ------------------------------------------------------


def test_assert_same_catches_differences():
    expected = pd.DataFrame({"a": [1.0, 2.0, np.nan], "s": ["x", None, "y"], "i": [1, 2, 3]})
    same = pd.DataFrame({"a": [1.0 + 1e-12, 2.0, None],
                         "s": pd.Series(["x", None, "y"], dtype="string[pyarrow]"),
                         "i": pd.Series([1, 2, 3], dtype="Int64")})
    assert_same(same, expected, sort=False)
    assert_same(same.iloc[::-1], expected, sort=True)
    assert_same(expected.astype({"s": "category"}), expected, sort=False)
    wrong = {
        "a value": expected.assign(a=[1.0, 2.001, np.nan]),
        "a missing value": expected.assign(a=[1.0, 2.0, 0.0]),
        "a missing row": expected.iloc[:2],
        "a duplicated row": pd.concat([expected.iloc[:2], expected.iloc[:1]]),
        "a column name": expected.rename(columns={"a": "b"}),
        "the column order": expected[["s", "a", "i"]],
        "an int column that became float": expected.astype({"i": "float64"}),
        "numbers that became strings": expected.astype({"i": "str"}),
        "a string": expected.assign(s=["x", None, "z"]),
    }
    for what, frame in wrong.items():
        for sort in (False, True):
            with pytest.raises(AssertionError):
                assert_same(frame, expected, sort=sort)
                pytest.fail(f"assert_same missed {what} (sort={sort})")  # pragma: no cover
    with pytest.raises(AssertionError):  # row order matters unless sort
        assert_same(same.iloc[::-1], expected, sort=False)


@contextmanager
def _mutated(name: str, replacement):
    original = getattr(pandas_reference, name)
    setattr(pandas_reference, name, replacement)
    try:
        yield
    finally:
        setattr(pandas_reference, name, original)


def test_a_wrong_reference_is_caught():
    """The properties can fail: a reference that is wrong in small ways is noticed."""
    frame = churn_frame(rows=300)
    statistic = pandas_reference._statistic

    def wrong_statistic(series, name):  # the median where the mean is asked for
        return statistic(series, "median" if name == "mean" else name)

    with _mutated("_statistic", wrong_statistic):
        with pytest.raises(AssertionError):
            check(frame, [{"fillna": {"age": "mean"}}], npartitions=3)
    steps = dict(pandas_reference.STEPS)
    try:
        pandas_reference.STEPS["query"] = lambda df, expression, inputs: df.query(
            expression).iloc[1:]
        with pytest.raises(AssertionError):
            check(frame, [{"query": "income > 60000"}], npartitions=3)
        pandas_reference.STEPS["groupby"] = lambda df, args, inputs: steps["groupby"](
            df, {**args, "dropna": not args.get("dropna", True)}, inputs)
        with pytest.raises(AssertionError):
            check(frame, [{"groupby": {"by": ["city"], "agg": {"age": ["count"]}}}],
                  npartitions=3)
    finally:
        pandas_reference.STEPS.clear()
        pandas_reference.STEPS.update(steps)


# -- regressions: discrepancies found by the properties, now fixed ------------------------


def test_regression_drop_duplicates_keep_false():
    frame = pd.DataFrame({"k": [1, 1, 2], "v": [1.0, 2.0, 3.0]})
    check(frame, [{"drop_duplicates": {"subset": ["k"], "keep": False}}], npartitions=2)


def test_regression_groupby_nunique():
    frame = pd.DataFrame({"k": [1, 1, 2], "v": [1.0, 2.0, 2.0]})
    check(frame, [{"groupby": {"by": ["k"], "agg": {"v": ["nunique"]}}}], npartitions=2)


def test_regression_groupby_median():
    frame = pd.DataFrame({"k": [1, 1, 2], "v": [1.0, 2.0, 2.0]})
    check(frame, [{"groupby": {"by": ["k"], "agg": {"v": ["median"]}}}], npartitions=2)


def test_regression_groupby_var_of_a_constant_group():
    frame = pd.DataFrame({"k": [1, 1, 1], "v": [999.99, 999.99, 999.99]})
    check(frame, [{"groupby": {"by": ["k"], "agg": {"v": ["var", "std"]}}}], npartitions=2)


def test_regression_scale_of_a_constant_column():
    frame = pd.DataFrame({"v": [0.1, 0.1, 0.1]})
    check(frame, [{"scale": {"columns": ["v"]}}], npartitions=1)


def test_regression_drop_duplicates_reorders_rows():
    frame = pd.DataFrame({"x": [1.0] * 6, "i": [0, 8, 0, -1, 5, 0]})
    check(frame, [{"drop_duplicates": None}, {"drop_duplicates": {"subset": ["x"]}}],
          npartitions=2)


def test_regression_mode_of_a_categorical_with_unsorted_categories():
    frame = pd.DataFrame({"s": pd.Series(["a", "b", None],
                                         dtype=pd.CategoricalDtype(["b", "a"]))})
    check(frame, [{"fillna": {"s": "mode"}}], npartitions=1)  # pandas fills "b"


def test_regression_merge_of_a_string_key_with_a_categorical_key():
    frame = pd.DataFrame({"i": [-1, 5, 5, 5, 5], "s": pd.Series(["a"] * 5, dtype="str")})
    other = pd.DataFrame({"i": [0], "s": pd.Series(["a"], dtype="category")})
    check(frame, [{"query": "i < 0"}, {"merge": {"right": "other", "on": ["i", "s"],
                                                 "how": "outer"}}],
          npartitions=5, inputs={"other": other}, broadcast_limit=0)


def test_regression_get_dummies_after_astype_category_and_a_filter():
    frame = pd.DataFrame({"s": ["a", "b", "b"], "v": [1, 2, 3]})
    check(frame, [{"astype": {"s": "category"}}, {"query": "v > 1"},
                  {"get_dummies": {"columns": ["s"]}}], npartitions=1)  # pandas: s_a, s_b


def test_regression_sort_values_by_a_column_cast_to_category():
    frame = pd.DataFrame({"s": ["b", "c", "a", "a"]})
    check(frame, [{"astype": {"s": "category"}}, {"sort_values": {"by": ["s"]}}],
          npartitions=2)  # Dask: b, c, a, a


def test_regression_assign_again_keeps_the_column_order():
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    check(frame, [{"assign": {"a": "x + 1"}}, {"assign": {"b": "x + 2", "a": "x + 3"}}],
          npartitions=1)  # pandas: x, a, b; Dask: x, b, a


def test_regression_groupby_by_a_column_cast_to_category():
    frame = pd.DataFrame({"k": [3, 1, 2, 1], "v": [1.0, 2.0, 3.0, 4.0]})
    check(frame, [{"astype": {"k": "category"}},
                  {"groupby": {"by": "k", "agg": {"v": ["sum"]}}}],
          npartitions=2)  # Dask: keys 1, 3, 2


def test_regression_cut_with_integer_edges_keeps_integer_intervals():
    frame = pd.DataFrame({"age": [25, 35, 50]})
    check(frame, [{"cut": {"column": "age", "bins": [0, 30, 40, 100]}},
                  {"get_dummies": {"columns": ["age"]}}], npartitions=1)


def test_regression_get_dummies_right_after_fillna():
    frame = pd.DataFrame({"city": pd.Series(["Paris", None], dtype="str")})
    check(frame, [{"fillna": {"city": "unknown"}}, {"get_dummies": {"columns": ["city"]}}],
          npartitions=1)  # Dask: no city_unknown column


def test_regression_cut_right_after_fillna():
    frame = pd.DataFrame({"x": [1.0, None, 2.0]})
    check(frame, [{"fillna": {"x": 10.0}},
                  {"cut": {"column": "x", "bins": 2, "labels": ["lo", "hi"]}}],
          npartitions=1)  # pandas: lo, hi, lo; Dask: lo, NaN, hi


def test_regression_identical_assign_expressions_then_reassign():
    # Dask's assign merged columns made by identical expressions; re-assigning one of
    # them then moved it, and a later step could not find it (KeyError)
    frame = pd.DataFrame({"x": [1.0, 2.0, 4.0], "y": [0.0, 1.0, 2.0]})
    check(frame, [{"assign": {"n0": "x + x", "n1": "x + x"}}, {"assign": {"n0": "n0 + x"}},
                  {"scale": {"columns": ["n0"]}}], npartitions=1)


def test_regression_mode_when_every_value_left_is_missing():
    # a categorical's value_counts lists categories that no longer occur (count 0), and
    # one of those was taken as the mode
    frame = pd.DataFrame({"x": [np.nan, np.nan, 0.0], "s": pd.Categorical(["a", "a", None])})
    check(frame, [{"query": "x == x"}, {"fillna": {"x": "mean", "s": "mode"}}], npartitions=1)


def test_regression_integer_bins_of_an_empty_column():
    frame = pd.DataFrame({"x": [np.nan, np.nan], "y": [1.0, 2.0]})
    check(frame, [{"cut": {"column": "x", "bins": 1, "labels": False}}], npartitions=1)


@pytest.mark.parametrize("bins, labels", [(1, ["a"]), (1, False), (1, None), (2, False),
                                          (2, ["a", "b"]), (3, None)])
def test_integer_bins_over_a_column_with_no_values_follow_pandas(bins, labels):
    """pandas bins a column of only missing values into missing values with one bin and
    refuses more (all-NaN edges are not unique); found by test_any_sequence_of_steps."""
    frame = pd.DataFrame({"x": [np.nan, np.nan], "y": [1.0, 2.0]})
    check(frame, [{"cut": {"column": "x", "bins": bins, "labels": labels}}], npartitions=2)


def test_regression_bin_numbers_are_float_where_any_partition_has_no_bin():
    # pandas gives float64 bin numbers when any value of the column falls in no bin; each
    # partition decided alone (int64 where it had none), and after a filter the result
    # was int64 (found by test_query_assign_cut_dropna_chains)
    frame = pd.DataFrame({"x": [np.nan, 0.0]})
    check(frame, [{"cut": {"column": "x", "bins": [0.0, 0.25], "labels": False,
                           "right": False}}, {"query": "x == x"}], npartitions=2)
    check(pd.DataFrame({"x": [0.1, 0.2, 0.9]}),
          [{"cut": {"column": "x", "bins": [0.0, 0.5, 1.0], "labels": False}}], npartitions=2)
    # integer bins span the column's range: only a missing value falls in no bin
    check(pd.DataFrame({"x": [np.nan, 0.0, 1.0, 2.0]}),
          [{"cut": {"column": "x", "bins": 3, "labels": False}}, {"query": "x == x"}],
          npartitions=2)
    check(pd.DataFrame({"x": [3.0, 0.0, 1.0, 2.0]}),
          [{"cut": {"column": "x", "bins": 3, "labels": False}}], npartitions=2)
