"""Reading inputs: formats, pandas' CSV options, compression, globs, splitting, types,
push-down, and the errors for missing or corrupt files."""

from __future__ import annotations

import datetime
import decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.data.pushdown import plan_reads
from shipyard.data.readers import read_input
from shipyard.data.schema import read_schema
from shipyard.data.spec import DataFrameWorkload, InputSpec
from shipyard.core.errors import InputDataError
from datagen import customers


def chunks(frame: pd.DataFrame, count: int) -> list[pd.DataFrame]:
    bounds = np.linspace(0, len(frame), count + 1).astype(int)
    return [frame.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(left.reset_index(drop=True), right.reset_index(drop=True),
                                  check_dtype=False)


@pytest.fixture
def frame():
    return customers(3000)


def test_csv_with_pandas_options(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("id;signup;score;city\n1;2024-01-05;?;berlin\n2;2024-02-01;3.5;?\n"
                    "3;2024-03-09;4.0;rome\n")
    spec = InputSpec(path=str(path), sep=";", dtype={"id": "int64"}, parse_dates=["signup"],
                     na_values=["?"])
    got = read_input(spec).compute()
    expected = pd.read_csv(path, sep=";", dtype={"id": "int64"}, parse_dates=["signup"],
                           na_values=["?"])
    same(got, expected)
    assert pd.api.types.is_datetime64_any_dtype(got["signup"])
    assert got["score"].isna().tolist() == [True, False, False]


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz"])
def test_compression_is_inferred_from_the_name(tmp_path, frame, suffix):
    path = tmp_path / f"customers{suffix}"
    frame.to_csv(path, index=False)
    got = read_input(InputSpec(path=str(path))).compute()
    same(got, pd.read_csv(path))


def test_globs_read_every_match_in_order(tmp_path, frame):
    for i, part in enumerate(chunks(frame, 3)):
        part.to_csv(tmp_path / f"part-{i}.csv", index=False)
    got = read_input(InputSpec(path=str(tmp_path / "part-*.csv"))).compute()
    same(got, pd.concat([pd.read_csv(tmp_path / f"part-{i}.csv") for i in range(3)]))


def test_json_lines(tmp_path, frame):
    path = tmp_path / "customers.jsonl"
    frame.to_json(path, orient="records", lines=True)
    got = read_input(InputSpec(path=str(path))).compute()
    same(got, pd.read_json(path, lines=True))


def test_a_large_csv_is_split_into_partitions(tmp_path):
    big = customers(200_000)
    path = tmp_path / "big.csv"
    big.to_csv(path, index=False)
    frame = read_input(InputSpec(path=str(path)), partition_size=2 * 2**20)
    assert frame.npartitions >= 5
    same(frame.compute(), pd.read_csv(path))


def test_one_large_parquet_file_gives_many_partitions(tmp_path):
    big = customers(200_000)
    path = tmp_path / "big.parquet"
    pq.write_table(pa.Table.from_pandas(big, preserve_index=False), path, row_group_size=10_000)
    frame = read_input(InputSpec(path=str(path)), partition_size=1 * 2**20)
    assert frame.npartitions >= 5
    same(frame.compute(), pd.read_parquet(path))


def test_row_groups_bigger_than_the_partitions_are_reported(tmp_path, caplog):
    path = tmp_path / "coarse.parquet"
    numbers = pd.DataFrame({"a": np.arange(400_000, dtype="float64"),
                            "b": np.arange(400_000, dtype="float64")})
    pq.write_table(pa.Table.from_pandas(numbers, preserve_index=False), path,
                   row_group_size=200_000)  # 1.5 MiB per column and row group
    with caplog.at_level("WARNING", logger="shipyard.data"):
        read_input(InputSpec(path=str(path)), partition_size=8 * 2**20)
    assert not caplog.records
    with caplog.at_level("WARNING", logger="shipyard.data"):
        frame = read_input(InputSpec(path=str(path)), partition_size=2 * 2**20)
    assert "row groups of up to 3 MiB" in caplog.text and "coarse.parquet" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="shipyard.data"):
        read_input(InputSpec(path=str(path)), columns=["a"], partition_size=2 * 2**20)
    assert not caplog.records  # one column's chunks fit
    assert frame.npartitions == 2


def test_directories_of_parquet_files(tmp_path, frame):
    (tmp_path / "ds").mkdir()
    for i, part in enumerate(chunks(frame, 4)):
        part.to_parquet(tmp_path / "ds" / f"part.{i}.parquet", index=False)
    (tmp_path / "ds" / "_SUCCESS").write_text("")
    got = read_input(InputSpec(path=str(tmp_path / "ds"), format="parquet")).compute()
    same(got, pd.read_parquet(tmp_path / "ds"))


@pytest.fixture
def typed_parquet(tmp_path):
    """The types real files carry: date32, timestamps, decimal128, dictionary strings,
    integers with nulls (written by Arrow) and pandas' nullable Int64."""
    n = 1000
    table = pa.table({
        "day": pa.array([datetime.date(2024, 1, 1) + datetime.timedelta(days=i % 366)
                         for i in range(n)], pa.date32()),
        "when": pa.array([datetime.datetime(2024, 1, 1) + datetime.timedelta(hours=i)
                          for i in range(n)], pa.timestamp("us")),
        "price": pa.array([decimal.Decimal(i) / 100 for i in range(n)], pa.decimal128(12, 2)),
        "flag": pa.array(["A", "N", "R", "F"] * (n // 4)).dictionary_encode(),
        "qty": pa.array([None if i % 9 == 0 else i for i in range(n)], pa.int64()),
        "name": pa.array([f"item {i}" for i in range(n)], pa.string()),
    })
    path = tmp_path / "typed.parquet"
    pq.write_table(table, path, row_group_size=250)
    pd.DataFrame({"count": pd.array([1, None, 3], dtype="Int64")}).to_parquet(
        tmp_path / "nullable.parquet")
    return path


def test_real_file_types_are_normalised(typed_parquet):
    got = read_input(InputSpec(path=str(typed_parquet))).compute()
    assert str(got["day"].dtype) == "datetime64[ms]"
    assert pd.api.types.is_datetime64_any_dtype(got["when"])
    assert got["price"].dtype == "float64" and got["price"].iloc[150] == 1.5
    assert isinstance(got["flag"].dtype, pd.CategoricalDtype)
    assert got["qty"].dtype == "float64" and got["qty"].isna().sum() == 112  # as pandas reads it
    assert pd.api.types.is_string_dtype(got["name"])
    # dates compare with date literals in a query, as a data engineer writes them
    assert len(got.query("day >= '2024-06-01'")) == len(
        pd.read_parquet(typed_parquet).assign(day=lambda d: pd.to_datetime(d["day"]))
        .query("day >= '2024-06-01'"))
    schema = read_schema(InputSpec(path=str(typed_parquet))).columns
    assert {c: str(schema[c]) for c in ("day", "price", "qty")} == {
        "day": "datetime64[ms]", "price": "float64", "qty": "float64"}


def test_cast_columns_are_right_in_every_partition(tmp_path):
    """Regression: cast dates and decimals were right partition by partition but wrong
    once partitions were combined (a view of freed Arrow memory)."""
    n = 400_000
    rng = np.random.default_rng(0)
    days = rng.integers(0, 3000, n).astype("int32")
    cents = rng.integers(0, 10**7, n)
    table = pa.table({"day": pa.array(days, pa.int32()).view(pa.date32()),
                      "price": pa.array([decimal.Decimal(int(c)).scaleb(-2) for c in cents],
                                        pa.decimal128(15, 2)),
                      "id": pa.array(np.arange(n))})
    path = tmp_path / "many.parquet"
    pq.write_table(table, path, row_group_size=20_000)
    frame = read_input(InputSpec(path=str(path)), partition_size=2**20)
    assert frame.npartitions >= 4
    got = frame.compute()
    assert (got["id"].to_numpy() == np.arange(n)).all()
    assert (got["day"].to_numpy().astype("datetime64[D]").astype("int64") == days).all()
    np.testing.assert_array_equal(got["price"].to_numpy(), cents / 100)


def test_decimals_can_be_kept(typed_parquet):
    got = read_input(InputSpec(path=str(typed_parquet), decimals="keep")).compute()
    assert "decimal" in str(got["price"].dtype)


def test_pandas_nullable_ints_stay_nullable(typed_parquet):
    got = read_input(InputSpec(path=str(typed_parquet.parent / "nullable.parquet"))).compute()
    assert str(got["count"].dtype) == "Int64" and got["count"].isna().tolist() == [False, True, False]


def test_only_needed_columns_are_read_and_leading_filters_pushed_down(tmp_path):
    path = tmp_path / "c.parquet"
    customers(20_000).to_parquet(path, index=False, row_group_size=2000)
    workload = DataFrameWorkload.model_validate({
        "inputs": {"main": {"path": str(path)}},
        "steps": [{"query": "income > 60000 and 30 <= age"},
                  {"assign": {"per": "income / purchases"}},
                  {"groupby": {"by": "region_id", "agg": {"per": "mean"}}}],
    })
    schemas = {"main": read_schema(workload.inputs["main"])}
    plan = plan_reads(workload, schemas, {"main": pq.read_schema(path)})
    assert plan.columns["main"] == ["age", "income", "purchases", "region_id"]
    assert plan.filters["main"] == [("income", ">", 60000), ("age", ">=", 30)]
    pushed = read_input(workload.inputs["main"], columns=plan.columns["main"],
                        filters=plan.filters["main"]).compute()
    expected = pd.read_parquet(path).query("income > 60000 and 30 <= age")
    same(pushed, expected[["age", "income", "purchases", "region_id"]])


def test_a_missing_input_names_the_path(tmp_path):
    with pytest.raises(InputDataError, match=r"nope\.csv: no such file"):
        read_schema(InputSpec(path=str(tmp_path / "nope.csv")))
    with pytest.raises(InputDataError, match="no such file, directory or matching files"):
        read_schema(InputSpec(path=str(tmp_path / "part-*.parquet")))


def test_a_corrupt_parquet_file_is_named(tmp_path):
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(InputDataError, match=r"corrupt\.parquet is not a readable Parquet file"):
        read_schema(InputSpec(path=str(path)))
