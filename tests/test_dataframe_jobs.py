"""Dataframe jobs end to end through the job layer: results equal pandas, the profile
equals pandas' info/describe, outputs are atomic, and s3:// works against a real S3 API."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

import shipyard
from datagen import customers, regions
from helpers import ROOT, shipyard as cli

pytestmark = pytest.mark.cluster  # dataframe jobs end to end


def dataframe_job(tmp_path, dataframe: dict, name: str = "df-job", **spec) -> object:
    doc = {"apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": name},
           "spec": {"resources": {"workers": 2, "threads_per_worker": 1}, **spec,
                    "dataframe": dataframe}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def churn_data(home, tmp_path):
    frame = customers(20_000, seed=3)
    (tmp_path / "data").mkdir()
    frame.to_parquet(tmp_path / "data" / "customers.parquet", index=False,
                     row_group_size=2_500)
    regions().to_parquet(tmp_path / "data" / "regions.parquet", index=False)
    return frame


def churn_rates_with_pandas(frame: pd.DataFrame) -> pd.DataFrame:
    """The classic example, written the way it is written in pandas."""
    df = frame.copy()
    df["age"] = df["age"].fillna(df["age"].mean())
    df["income"] = df["income"].fillna(df["income"].median())
    df["income_per_purchase"] = df["income"] / df["purchases"]
    df["age_group"] = pd.cut(df["age"], bins=[0, 30, 40, 100],
                             labels=["young", "middle", "senior"])
    df = df[df["income"] > 60000]
    out = df.groupby("age_group", observed=True).agg(
        will_churn_mean=("will_churn", "mean"), will_churn_count=("will_churn", "count"),
        income_per_purchase_mean=("income_per_purchase", "mean"))
    return out.reset_index()


def test_the_churn_example_equals_pandas(churn_data, tmp_path):
    proc = cli("run", str(ROOT / "jobs" / "churn-rates.yaml"), "--json")
    assert proc.returncode == 0, proc.stderr
    got = pd.read_parquet(tmp_path / "out" / "churn_rates.parquet")
    expected = churn_rates_with_pandas(churn_data)
    assert got["age_group"].astype(str).tolist() == ["young", "middle", "senior"]
    pd.testing.assert_frame_equal(got.drop(columns="age_group"),
                                  expected.drop(columns="age_group"), rtol=1e-12)


def test_the_result_profiles_the_input_like_pandas(churn_data, tmp_path):
    job = shipyard.run(ROOT / "jobs" / "churn-rates.yaml",
                       overrides=["spec.dataframe.output.path=out/rates.parquet"])
    result = job.result()
    read_columns = result["read"]["main"]["columns"]
    assert read_columns == ["age", "income", "purchases", "will_churn"]  # only what is used
    profile = result["profile"]
    frame = churn_data[read_columns]
    assert profile["rows"] == len(frame) and result["rows"]["read"] == len(frame)
    assert profile["missing"] == frame.isna().sum().to_dict()
    assert profile["dtypes"] == {c: str(t) for c, t in frame.dtypes.items()}
    described = frame.describe()
    for column in read_columns:
        for stat in ("count", "mean", "std", "min", "max"):
            assert profile["describe"][column][stat] == pytest.approx(
                described.loc[stat, column], rel=1e-9)
    assert [s["step"] for s in result["steps"]] == ["fillna", "assign", "cut", "query", "groupby"]
    assert result["steps"][3]["rows"] == int((frame["income"].fillna(
        frame["income"].median()) > 60000).sum())
    assert result["steps"][-1]["rows"] == result["rows"]["output"] == 3
    assert result["outputs"] == [str(tmp_path / "out" / "rates.parquet")]


def test_churn_features_job(churn_data, tmp_path):
    job = shipyard.run(ROOT / "jobs" / "churn-prep.yaml")
    assert job.status().state == "SUCCEEDED", "\n".join(job.logs())
    got = pd.read_parquet(tmp_path / "out" / "churn_features.parquet")
    df = churn_data.copy()
    df = df.fillna({"age": df["age"].mean(), "income": df["income"].median(), "city": "unknown"})
    df = df.dropna(subset=["customer_id"]).drop_duplicates(subset=["customer_id"])
    df["income_per_purchase"] = df.eval("income / purchases")
    df["purchases_per_year"] = df.eval("purchases / (tenure_months / 12 + 1)")
    df["age_group"] = pd.cut(df["age"], [0, 30, 40, 100], labels=["young", "middle", "senior"])
    df = df.merge(regions(), on=["region_id"], how="left")
    df = pd.get_dummies(df, columns=["age_group", "city", "region"]).drop(columns=["region_id"])
    assert list(got.columns) == list(df.columns)
    pd.testing.assert_frame_equal(got.sort_values("customer_id").reset_index(drop=True),
                                  df.sort_values("customer_id").reset_index(drop=True),
                                  check_dtype=False, rtol=1e-12)


def test_a_failed_job_leaves_the_previous_output_untouched(churn_data, tmp_path):
    first = dataframe_job(tmp_path, {"inputs": {"main": {"path": "data/customers.parquet"}},
                                     "steps": [{"select": ["customer_id", "age"]}],
                                     "output": {"path": "out/ages.parquet"}})
    assert cli("run", str(first)).returncode == 0
    before = pd.read_parquet(tmp_path / "out" / "ages.parquet")
    # casting a column with missing values to int64 fails while the output is written
    failing = dataframe_job(tmp_path, {"inputs": {"main": {"path": "data/customers.parquet"}},
                                       "steps": [{"astype": {"age": "int64"}}],
                                       "output": {"path": "out/ages.parquet",
                                                  "overwrite": True}}, name="df-fails")
    proc = cli("run", str(failing))
    assert proc.returncode == 1
    assert "IntCastingNaNError" in proc.stderr or "non-finite" in proc.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "ages.parquet"), before)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["ages.parquet"]  # no staging


def test_an_existing_output_is_refused_and_overwrite_replaces_it(churn_data, tmp_path):
    spec = dataframe_job(tmp_path, {"inputs": {"main": {"path": "data/customers.parquet"}},
                                    "steps": [{"query": "age > 80"}],
                                    "output": {"path": "out/old.csv"}})
    assert cli("run", str(spec)).returncode == 0
    assert cli("run", str(spec)).returncode == 2
    again = cli("run", str(spec), "--set", "spec.dataframe.output.overwrite=true")
    assert again.returncode == 0
    written = pd.read_csv(tmp_path / "out" / "old.csv")
    assert len(written) == (churn_data["age"] > 80).sum()


def test_output_layouts(churn_data, tmp_path):
    spec = dataframe_job(tmp_path, {
        "inputs": {"main": {"path": "data/customers.parquet"}},
        "steps": [{"fillna": {"city": "unknown"}}, {"select": ["customer_id", "city", "age"]}],
        "output": {"path": "out/by_city", "format": "parquet", "partition_on": ["city"]}})
    assert cli("run", str(spec)).returncode == 0
    partitions = sorted(p.name for p in (tmp_path / "out" / "by_city").iterdir())
    assert partitions == [f"city={c}" for c in sorted(churn_data["city"].fillna("unknown").unique())]
    back = pd.read_parquet(tmp_path / "out" / "by_city")
    assert len(back) == len(churn_data)
    csv_dir = cli("run", str(spec), "--set", "spec.dataframe.output={path: out/parts/, "
                                              "format: csv}",
                  "--set", "spec.dataframe.partition_size=100KiB")
    assert csv_dir.returncode == 0, csv_dir.stderr
    parts = sorted((tmp_path / "out" / "parts").glob("part-*.csv"))
    assert len(parts) > 1
    assert sum(len(pd.read_csv(p)) for p in parts) == len(churn_data)


def test_s3_input_and_output(home, tmp_path, monkeypatch, s3_server):
    import s3fs

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    fs = s3fs.S3FileSystem(endpoint_url=s3_server)
    fs.mkdir("lake")
    frame = customers(4_000, seed=9)
    with fs.open("lake/raw/customers.parquet", "wb") as handle:
        frame.to_parquet(handle, index=False, row_group_size=1000)
    with fs.open("lake/raw/regions.csv", "wb") as handle:
        handle.write(regions().to_csv(index=False).encode())
    options = {"endpoint_url": s3_server}
    spec = dataframe_job(tmp_path, {
        "inputs": {"main": {"path": "s3://lake/raw/customers.parquet", "storage_options": options},
                   "regions": {"path": "s3://lake/raw/regions.csv", "storage_options": options}},
        "steps": [{"merge": {"right": "regions", "on": ["region_id"]}},
                  {"groupby": {"by": "region", "agg": {"will_churn": ["mean", "count"]}}}],
        "output": {"path": "s3://lake/out/rates.parquet", "storage_options": options}})
    proc = cli("run", str(spec), "--json")
    assert proc.returncode == 0, proc.stderr
    assert fs.exists("lake/out/rates.parquet/_SUCCESS")
    assert not [p for p in fs.ls("lake/out") if ".shipyard-" in p]
    got = pd.read_parquet("s3://lake/out/rates.parquet", storage_options=options)
    expected = (frame.merge(regions(), on="region_id").groupby("region")["will_churn"]
                .agg(["mean", "count"]).add_prefix("will_churn_").reset_index())
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    missing = cli("validate", str(dataframe_job(tmp_path, {
        "inputs": {"main": {"path": "s3://lake/raw/nope.parquet", "storage_options": options}}},
        name="df-missing")))
    assert missing.returncode == 2 and "s3://lake/raw/nope.parquet: no such file" in missing.stderr
