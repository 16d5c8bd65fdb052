"""The figures of dataframe jobs: the numbers they plot equal NumPy and pandas on the same
data (histogram counts, correlations, missing values), awkward columns are skipped or
handled, real jobs leave readable PNGs, and ``report: {figures: false}`` leaves none and
costs no extra pass over the data.

Everything computes on one module-scoped Dask cluster: the jobs reach it as an existing
scheduler (``cluster=<address>``), and the test process counts the graphs they submit.
"""

from __future__ import annotations

import threading

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin
from matplotlib.image import imread

import shipyard
from datagen import customers
from shipyard.data.profile import finish_profile, profile_tasks
from shipyard.report import dataframe_figures as figs
from shipyard.report.figures import FigureSet

pytestmark = [pytest.mark.filterwarnings("ignore::RuntimeWarning"),  # NaN correlations
              pytest.mark.figures]

FIGURES = ["histograms", "missing_values", "correlation", "rows_per_step"]


class GraphCounter(SchedulerPlugin):
    """Counts the graphs clients submit: one per ``dask.compute``, i.e. one per pass."""

    def __init__(self):
        self.lock = threading.Lock()
        self.graphs: list[list] = []

    def update_graph(self, scheduler, *, client, keys, tasks, **kwargs):
        with self.lock:
            self.graphs.append(list(tasks))


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        counter = GraphCounter()
        cluster.scheduler.add_plugin(counter, name="graph-counter")
        cluster.graphs = counter
        yield cluster


@pytest.fixture(scope="module")
def client(cluster):
    with Client(cluster) as client:
        yield client


def edge_frame(rows: int = 3_000, seed: int = 1) -> pd.DataFrame:
    """Numbers of every awkward kind, with text and dates beside them."""
    rng = np.random.default_rng(seed)
    missing = rng.random(rows) < 0.1
    x = rng.normal(10, 3, rows)
    x[missing] = np.nan
    with_inf = rng.normal(0, 1, rows)
    with_inf[:5] = np.inf
    with_inf[5:8] = -np.inf
    huge = np.full(rows, 1.0)
    huge[0], huge[1] = -1e308, 1e308  # a range wider than float64 holds
    small_ints = rng.integers(0, 10, rows)
    return pd.DataFrame({
        "x": x,
        "n": small_ints,                                               # one bin per value
        "big": rng.integers(-10**6, 10**6, rows),                      # 30 bins
        "flag": rng.random(rows) < 0.3,
        "nflag": pd.array(np.where(missing, None, rng.random(rows) < 0.5), dtype="boolean"),
        "nint": pd.array(np.where(missing, None, small_ints * 3), dtype="Int64"),
        "nfloat": pd.array(np.where(missing, None, x * 2), dtype="Float64"),
        "pa_double": pd.Series(pa.array(np.where(missing, None, -x), type=pa.float64()),
                               dtype=pd.ArrowDtype(pa.float64())),
        "pa_int": pd.Series(pa.array(np.where(missing, None, small_ints), type=pa.int64()),
                            dtype=pd.ArrowDtype(pa.int64())),
        "constant": np.full(rows, 7.5),
        "empty": np.full(rows, np.nan),
        "with_inf": with_inf,
        "huge": huge,
        "city": pd.Series(rng.choice(["a", "b", None], rows), dtype="string"),
        "when": pd.date_range("2024-01-01", periods=rows, freq="h"),
    })


def as_floats(frame: pd.DataFrame) -> pd.DataFrame:
    """The numeric columns as float64, infinities as missing: what pandas correlates."""
    out = pd.DataFrame({c: frame[c].astype("float64") for c in frame.columns})
    return out.replace([np.inf, -np.inf], np.nan)


def assert_like_numpy_and_pandas(data: figs.FrameFigureData, frame: pd.DataFrame) -> None:
    plottable = ["x", "n", "big", "flag", "nflag", "nint", "nfloat", "pa_double", "pa_int",
                 "constant", "empty", "with_inf", "huge"]
    assert data.columns == plottable  # no text, no dates
    floats = as_floats(frame[plottable])
    assert set(data.skipped) == {"empty", "huge"}
    assert set(data.histograms) == set(plottable) - {"empty", "huge"}
    for column, (spec, counts) in data.histograms.items():
        values = floats[column].dropna().to_numpy()
        expected, _ = np.histogram(values, bins=spec.edges)  # NumPy's own arbitrary-edge path
        np.testing.assert_array_equal(counts, expected, err_msg=column)
        assert counts.sum() == len(values), column
        low, high = values.min(), values.max()
        if column in ("n", "flag", "nflag", "nint", "pa_int"):   # one bin per integer value
            if column in ("flag", "nflag"):
                low, high = 0, 1
            assert spec.low == low - 0.5 and spec.high == high + 0.5, column
            assert spec.bins == high - low + 1, column
        elif column == "constant":
            assert (spec.low, spec.high, spec.bins) == (7.0, 8.0, 1)
        else:  # the finite range, in BINS bins
            assert (spec.low, spec.high, spec.bins) == (low, high, figs.BINS), column
    assert data.histograms["with_inf"][1].sum() == len(frame) - 8
    # "huge" overflows float64 when squared, in pandas and here alike: both are noise there
    sane = [c for c in plottable if c != "huge"]
    pd.testing.assert_frame_equal(data.correlation.loc[sane, sane], floats[sane].corr(),
                                  rtol=1e-9, atol=1e-12)
    assert list(data.correlation.columns) == plottable
    assert np.isnan(data.correlation.loc["constant", "x"])
    assert np.isnan(data.correlation.loc["empty", "empty"])


@pytest.mark.cluster
def test_histograms_and_correlations_equal_numpy_and_pandas(client):
    frame = edge_frame()
    ddf = dd.from_pandas(frame, npartitions=5)
    data = figs.frame_figure_data(ddf, rows=len(frame))
    assert data.passes == 2  # ranges, correlations and missing values; then histograms
    assert_like_numpy_and_pandas(data, frame)
    assert data.missing_scope == "numeric"
    assert data.missing == {c: int(frame[c].isna().sum()) for c in data.columns}
    assert data.missing["with_inf"] == 0  # infinities are values, not missing ones


def two_pass_correlations(frame: pd.DataFrame) -> pd.DataFrame:
    """Each pair's correlation over the rows where both are present, by NumPy's two-pass
    ``corrcoef`` (pandas' one-pass Welford update drifts by ~1e-8 on the data below)."""
    out = pd.DataFrame(np.nan, index=frame.columns, columns=frame.columns)
    for a in frame.columns:
        for b in frame.columns:
            both = frame[list(dict.fromkeys([a, b]))].dropna()
            out.loc[a, b] = np.corrcoef(both[a], both[b])[0, 1]
    return out


@pytest.mark.cluster
def test_correlations_stay_exact_far_from_zero(client):
    """Columns with a large mean and a small spread: one-pass sums would cancel, and
    partitions' means near 1e9 differ in digits a float64 of 1e9 barely holds."""
    rng = np.random.default_rng(5)
    base = rng.normal(0, 1, 4_000)
    frame = pd.DataFrame({"a": 1e9 + base, "b": 1e9 - 2 * base + rng.normal(0, 1, 4_000),
                          "c": rng.normal(0, 1e-6, 4_000)})
    frame.loc[rng.random(4_000) < 0.2, "b"] = np.nan
    data = figs.frame_figure_data(dd.from_pandas(frame, npartitions=7), missing={})
    pd.testing.assert_frame_equal(data.correlation, two_pass_correlations(frame),
                                  rtol=1e-12, atol=1e-14)


@pytest.mark.cluster
def test_the_profiles_ranges_save_a_pass(client):
    frame = edge_frame(seed=2)
    ddf = dd.from_pandas(frame, npartitions=4)
    (computed,) = dask.compute(profile_tasks(ddf))
    profile = finish_profile(ddf, computed)
    ranges = figs.ranges_from_describe(computed["numeric"])
    assert "with_inf" not in ranges and "huge" in ranges  # its min and max are finite
    data = figs.frame_figure_data(ddf, ranges=ranges, missing=profile["missing"],
                                  rows=profile["rows"])
    assert data.passes == 2  # with_inf's finite range is still to find
    assert_like_numpy_and_pandas(data, frame)
    assert data.missing == frame.isna().sum().to_dict()  # every column, text too

    finite = ddf.drop(columns=["with_inf"])
    (computed,) = dask.compute(profile_tasks(finite))
    data = figs.frame_figure_data(finite, ranges=figs.ranges_from_describe(computed["numeric"]),
                                  missing={})
    assert data.passes == 1  # the histograms and correlations together, nothing else
    plain = figs.frame_figure_data(finite)
    for column, (spec, counts) in plain.histograms.items():
        assert data.histograms[column][0] == spec
        np.testing.assert_array_equal(data.histograms[column][1], counts)
    pd.testing.assert_frame_equal(data.correlation, plain.correlation)


@pytest.mark.cluster
def test_the_numbers_check_can_fail(client):
    """The comparison above is not vacuous: counts off by one, or a correlation computed
    another way, are caught."""
    frame = edge_frame(seed=3)
    data = figs.frame_figure_data(dd.from_pandas(frame, npartitions=3))
    spec, counts = data.histograms["x"]
    counts = counts.copy()
    counts[0] += 1
    data.histograms["x"] = (spec, counts)
    with pytest.raises(AssertionError):
        assert_like_numpy_and_pandas(data, frame)
    data = figs.frame_figure_data(dd.from_pandas(frame, npartitions=3))
    data.correlation = data.correlation.rank()
    with pytest.raises(AssertionError):
        assert_like_numpy_and_pandas(data, frame)


@pytest.mark.cluster
def test_frames_without_numbers_or_rows(client, tmp_path):
    text = dd.from_pandas(pd.DataFrame({"s": ["a", None]}), npartitions=1)
    data = figs.frame_figure_data(text)
    assert data.columns == [] and data.passes == 0 and data.histograms == {}
    empty = dd.from_pandas(edge_frame().iloc[:0], npartitions=1)
    data = figs.frame_figure_data(empty, rows=0)
    assert data.histograms == {} and set(data.skipped) == set(data.columns)
    figures = FigureSet(tmp_path)
    figs.draw_dataframe_figures(figures, data, figs.step_rows({"read": 0}, []))
    assert [e["name"] for e in figures.entries] == ["missing_values", "correlation",
                                                    "rows_per_step"]


def test_missing_bars_and_step_rows():
    bars = figs.missing_bars({f"c{i}": i for i in range(50)}, 100, limit=3)
    assert bars == [("c47", 47, 0.47), ("c48", 48, 0.48), ("c49", 49, 0.49)]
    steps = [{"index": 0, "step": "dropna", "rows": 7}, {"index": 1, "step": "groupby",
                                                         "rows": 2}]
    assert figs.step_rows({"input": 9, "read": 9, "output": 2}, steps) == [
        ("read", 9), ("0: dropna", 7), ("1: groupby", 2)]


def job_data(tmp_path) -> pd.DataFrame:
    frame = customers(12_000, seed=4)
    frame["visits"] = pd.array(np.where(frame["age"].isna(), None, frame["purchases"] * 3),
                               dtype="Int64")
    frame["vip"] = frame["income"] > 80_000
    frame["constant"] = 1.0
    frame["nothing"] = np.nan
    frame.to_parquet(tmp_path / "customers.parquet", index=False, row_group_size=2_000)
    return frame


def job_doc(tmp_path, profile: bool = True, figures: bool = True, name: str = "frames"):
    return {"apiVersion": "shipyard/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"report": {"figures": figures}, "dataframe": {
                "inputs": {"main": {"path": str(tmp_path / "customers.parquet")}},
                "profile": profile,
                "steps": [{"query": "tenure_months > 12"}, {"dropna": {"subset": ["age"]}},
                          {"drop": ["customer_id"]}],
                "output": {"path": str(tmp_path / "out" / f"{name}.parquet")}}}}


def run_counting(cluster, doc) -> tuple[object, int]:
    before = len(cluster.graphs.graphs)
    job = shipyard.run(doc, cluster=cluster.scheduler_address)
    assert job.status().state == "SUCCEEDED", "\n".join(job.logs())
    return job, len(cluster.graphs.graphs) - before


@pytest.mark.cluster
def test_a_dataframe_job_draws_readable_figures(home, tmp_path, cluster):
    job_data(tmp_path)
    job, graphs = run_counting(cluster, job_doc(tmp_path))
    assert graphs == 1 + 1 + 1  # profile, output, figures
    directory = job.run_dir / "report" / "figures"
    assert sorted(p.stem for p in directory.glob("*.png")) == sorted(FIGURES)
    for name in FIGURES:
        image = imread(directory / f"{name}.png")
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100, name
    log = "\n".join(job.logs())
    # the profile's ranges: one pass for every histogram and the correlations
    assert "figures: 4 drawn" in log and "(1 pass(es) over 11 numeric column(s))" in log


@pytest.mark.cluster
def test_figures_false_draws_none_and_makes_no_extra_pass(home, tmp_path, cluster):
    job_data(tmp_path)
    off, off_graphs = run_counting(cluster, job_doc(tmp_path, profile=False, figures=False,
                                                    name="off"))
    on, on_graphs = run_counting(cluster, job_doc(tmp_path, profile=False, name="on"))
    assert not (off.run_dir / "report" / "figures").exists()
    assert "figures:" not in "\n".join(off.logs())
    assert off_graphs == 1  # the output's own pass, nothing more
    assert on_graphs == off_graphs + 2  # without the profile: ranges, then histograms
    assert len(list((on.run_dir / "report" / "figures").glob("*.png"))) == 4
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "off.parquet"),
                                  pd.read_parquet(tmp_path / "out" / "on.parquet"))
