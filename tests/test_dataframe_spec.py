"""Dataframe specs are checked against the inputs' schemas before anything runs:
each mistake exits 2 with a message naming the step, and writes nothing."""

from __future__ import annotations

import pytest
import yaml

from datagen import customers, regions
from helpers import shipyard


@pytest.fixture
def data(home, tmp_path):
    """customers.csv, customers.parquet and regions.parquet in the working directory."""
    frame = customers(500)
    frame.to_csv(tmp_path / "customers.csv", index=False)
    frame.to_parquet(tmp_path / "customers.parquet", index=False)
    regions().to_parquet(tmp_path / "regions.parquet", index=False)
    return tmp_path


def write(tmp_path, dataframe: dict, name: str = "spec.yaml"):
    doc = {"apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": "df"},
           "spec": {"dataframe": dataframe}}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def rejected(path, *expected: str) -> str:
    proc = shipyard("submit", str(path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    for text in expected:
        assert text in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (path.parent / "home" / "jobs.db").exists()
    return proc.stderr


def test_a_good_spec_validates(data):
    path = write(data, {
        "inputs": {"main": {"path": "customers.csv"}, "regions": {"path": "regions.parquet"}},
        "steps": [{"fillna": {"age": "mean", "income": "median", "city": "unknown"}},
                  {"assign": {"per_purchase": "income / purchases"}},
                  {"cut": {"column": "age", "bins": [0, 30, 40, 100],
                           "labels": ["young", "middle", "senior"], "into": "age_group"}},
                  {"query": "per_purchase > 100 and age_group == 'senior'"},
                  {"merge": {"right": "regions", "on": ["region_id"], "how": "left"}},
                  {"get_dummies": {"columns": ["region"]}},
                  {"groupby": {"by": ["age_group", "region_north"],
                               "agg": {"will_churn": ["mean", "count"]}}},
                  {"sort_values": {"by": "will_churn_mean", "ascending": False}}],
        "output": {"path": "out/churn.parquet"},
    })
    proc = shipyard("validate", str(path))
    assert proc.returncode == 0, proc.stderr


def test_a_missing_column_names_the_step_and_the_columns_there(data):
    path = write(data, {"inputs": {"main": {"path": "customers.parquet"}},
                        "steps": [{"drop": ["city"]}, {"query": "age > 30"},
                                  {"fillna": {"agee": "mean", "city": "unknown"}}]})
    stderr = rejected(
        path,
        "spec.dataframe.steps[2].fillna: column 'agee' does not exist at this step; did you "
        "mean 'age'? (columns here: customer_id, age, income, purchases, tenure_months, "
        "region_id, will_churn)",
        "spec.dataframe.steps[2].fillna: column 'city' does not exist at this step",
    )
    assert stderr.count("does not exist") == 2


def test_columns_follow_the_steps(data):
    path = write(data, {"inputs": {"main": {"path": "customers.csv"}},
                        "steps": [{"rename": {"income": "salary"}},
                                  {"query": "income > 5"},
                                  {"groupby": {"by": "city", "agg": {"salary": "mean"}}},
                                  {"sort_values": {"by": "salary"}}]})
    rejected(path, "steps[1].query: column 'income' does not exist at this step",
             "steps[3].sort_values: column 'salary' does not exist at this step; did you mean "
             "'salary_mean'?")


@pytest.mark.parametrize("steps, expected", [
    ([{"fillnaa": {"age": "mean"}}], "steps[0]: unknown step 'fillnaa'; did you mean 'fillna'?"),
    ([{"query": "age > 1", "drop": ["city"]}], "steps[0]: each step is a mapping with exactly "
                                                "one key"),
    (["query"], "steps[0]: each step is a mapping with exactly one key"),
    ([{"query": "age >"}], "steps[0].query: 'age >' is not a valid expression"),
    ([{"query": "age > @limit"}], "@variables refer to local variables"),
    ([{"fillna": {"city": "mean"}}], "steps[0].fillna: mean of column 'city' needs numbers"),
    ([{"fillna": {"age": [1, 2]}}], "age: fill with mean, median, mode, min, max or a literal"),
    ([{"astype": {"age": "integer"}}], "'integer' is not a pandas dtype"),
    ([{"cut": {"column": "age", "bins": [0, 50, 100], "labels": ["a"]}}],
     "labels: 1 labels for 2 bins"),
    ([{"cut": {"column": "city", "bins": 3}}], "cut needs a numeric column; 'city'"),
    ([{"merge": {"right": "nowhere", "on": ["region_id"]}}],
     "steps[0].merge.right: 'nowhere' is not an input"),
    ([{"merge": {"right": "regions", "on": ["region"]}}],
     "column 'region' does not exist at this step"),
    ([{"groupby": {"by": "city", "agg": {"age": "average"}}}],
     "steps[0].groupby.agg.age[0]: must be 'sum', 'mean'"),
    ([{"scale": {"columns": ["city"], "method": "standard"}}], "scaling needs numbers; 'city'"),
    ([{"sort_values": {"by": ["age", "income"], "ascending": [True]}}],
     "ascending: one true/false per column of by"),
    ([{"sample": {"frac": 2}}], "frac: above 1 needs replace: true"),
])
def test_step_mistakes(data, steps, expected):
    path = write(data, {"inputs": {"main": {"path": "customers.csv"},
                                   "regions": {"path": "regions.parquet"}},
                        "steps": steps})
    rejected(path, expected)


def test_input_and_output_problems(data):
    (data / "out.parquet").mkdir()
    (data / "broken.parquet").write_bytes(b"not parquet at all")
    rejected(write(data, {"inputs": {"main": {"path": "missing.csv"}}}),
             "spec.dataframe.inputs.main.path: missing.csv: no such file")
    rejected(write(data, {"inputs": {"main": {"path": "broken.parquet"}}}),
             "spec.dataframe.inputs.main.path: ", "broken.parquet is not a readable Parquet file")
    rejected(write(data, {"inputs": {"main": {"path": "customers.csv"}},
                          "output": {"path": "out.parquet"}}),
             "spec.dataframe.output.path: out.parquet already exists; set overwrite: true")
    rejected(write(data, {"inputs": {"main": {"path": "customers.csv"}},
                          "output": {"path": "o.parquet", "partition_on": ["nope"]}}),
             "spec.dataframe.output.partition_on: column 'nope' does not exist")
    rejected(write(data, {"inputs": {"main": {"path": "customers.data"}}}),
             "cannot tell the format of 'customers.data'")
    rejected(write(data, {"inputs": {"a": {"path": "customers.csv"},
                                     "b": {"path": "regions.parquet"}}}),
             "spec.dataframe: main: several inputs (a, b)")
    rejected(write(data, {"inputs": {"main": {"path": "customers.csv", "columns": ["agee"]}}}),
             "has no column(s) 'agee'")
