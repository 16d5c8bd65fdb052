"""shipyard.data.arrays gives NumPy's numbers on Dask arrays."""

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from shipyard.data.arrays import column_statistics, from_frame, matvec, standardize


@pytest.fixture
def table():
    rng = np.random.default_rng(4)
    values = rng.normal(size=(10_001, 6)) * np.arange(1, 7) + np.arange(6) * 10
    values[:, 5] = 3.0  # a constant column
    return values, da.from_array(values, chunks=(1_000, 4))


def test_statistics_equal_numpy(table):
    values, x = table
    stats = column_statistics(x, names=list("abcdef"))
    np.testing.assert_allclose(stats["mean"], values.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats["std"], values.std(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(column_statistics(x, ddof=1)["std"], values.std(axis=0, ddof=1),
                               rtol=1e-10, atol=1e-12)
    assert stats["min"].tolist() == values.min(axis=0).tolist()
    assert stats["max"].tolist() == values.max(axis=0).tolist()
    np.testing.assert_allclose(stats["sum"], values.sum(axis=0), rtol=1e-12)
    assert list(stats.index) == list("abcdef")


def test_standardize_equals_numpy(table):
    values, x = table
    std = values.std(axis=0)
    expected = (values - values.mean(axis=0)) / np.where(std == 0, 1, std)
    np.testing.assert_allclose(standardize(x).compute(), expected, rtol=1e-9, atol=1e-12)
    assert (standardize(x).compute()[:, 5] == 0).all()


def test_matvec_equals_numpy(table):
    values, x = table
    w = np.linspace(-1, 1, 6)
    np.testing.assert_allclose(matvec(x, w).compute(), values @ w, rtol=1e-12)
    with pytest.raises(ValueError, match="x has 6 columns"):
        matvec(x, [1, 2, 3])


def test_from_frame_keeps_chunk_sizes():
    frame = dd.from_pandas(pd.DataFrame({"a": np.arange(10), "b": np.arange(10) * 2.0,
                                         "c": list("abcdefghij")}), npartitions=3)
    x = from_frame(frame, ["a", "b"])
    assert not np.isnan(x.shape[0]) and x.shape == (10, 2)
    np.testing.assert_allclose(x.compute(), np.c_[np.arange(10), np.arange(10) * 2.0])
