"""The demo job (jobs/basics.yaml): its numbers equal NumPy's and pandas'."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

import shipyard
from helpers import ROOT

pytestmark = pytest.mark.cluster  # the demo job, run as a job on its own LocalCluster


@pytest.fixture(scope="module")
def basics(tmp_path_factory):
    sys.path.insert(0, str(ROOT / "jobs"))
    import basics  # jobs/basics.py
    yield basics
    sys.path.remove(str(ROOT / "jobs"))


def test_the_demo_job_matches_numpy_and_pandas(home, tmp_path, basics):
    rows, columns, groups, seed, chunk_rows = 20_000, 5, 4, 7, 5_000
    out = tmp_path / "basics-out"
    job = shipyard.run(ROOT / "jobs" / "basics.yaml", overrides=[
        f"spec.python.params.rows={rows}", f"spec.python.params.columns={columns}",
        f"spec.python.params.groups={groups}", f"spec.python.params.seed={seed}",
        f"spec.python.params.chunk_rows={chunk_rows}", f"spec.python.params.output={out}",
    ])
    assert job.status().state == "SUCCEEDED", list(job.logs())
    result = job.result()
    value = result["value"]
    assert value["partitions"] == 4
    assert result["outputs"] == [str(out / n) for n in
                                 ("normalised.parquet", "column_stats.csv", "by_group.parquet")]

    table, keys, weights = basics.make_data(rows, columns, groups, seed, chunk_rows)
    x, k = table.compute(), keys.compute()
    stats = pd.read_csv(out / "column_stats.csv", index_col="column")
    np.testing.assert_allclose(stats["mean"], x.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(stats["std"], x.std(axis=0), rtol=1e-10)
    np.testing.assert_allclose(stats["min"], x.min(axis=0))
    np.testing.assert_allclose(stats["max"], x.max(axis=0))

    z = (x - x.mean(axis=0)) / x.std(axis=0)
    normalised = pd.read_parquet(out / "normalised.parquet")
    np.testing.assert_allclose(normalised[[f"x{i}" for i in range(columns)]].to_numpy(), z,
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(normalised["score"], z @ weights, rtol=1e-9, atol=1e-12)
    assert value["normalised"]["max_abs_mean"] < 1e-12
    assert value["normalised"]["max_abs_std_minus_1"] < 1e-12

    frame = pd.DataFrame(z, columns=[f"x{i}" for i in range(columns)]).assign(
        score=z @ weights, group=k)
    expected = frame.groupby("group").agg(score_mean=("score", "mean"),
                                          score_std=("score", "std"),
                                          x0_mean=("x0", "mean"), rows=("score", "size"))
    by_group = pd.read_parquet(out / "by_group.parquet").set_index("group")
    pd.testing.assert_frame_equal(by_group, expected, check_dtype=False, rtol=1e-9)
    assert sum(row["rows"] for row in value["by_group"]) == rows


def test_a_rerun_replaces_the_output_whole(home, tmp_path):
    out = tmp_path / "basics-out"
    params = ["spec.python.params.rows=2000", "spec.python.params.chunk_rows=1000",
              f"spec.python.params.output={out}"]
    shipyard.run(ROOT / "jobs" / "basics.yaml", overrides=params)
    first = sorted(p.name for p in (out / "normalised.parquet").iterdir())
    shipyard.run(ROOT / "jobs" / "basics.yaml", overrides=params + ["spec.python.params.columns=3"])
    assert sorted(p.name for p in (out / "normalised.parquet").iterdir()) == first
    assert list(pd.read_parquet(out / "normalised.parquet").columns) == [
        "x0", "x1", "x2", "score", "group"]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())

