"""Generate the customer-churn dataset the churn jobs read (a ``python`` job).

Customers have an age, an income, a number of purchases, a city, a region, a tenure
and a churn flag that depends on them (older, richer customers with few purchases
churn more), with about 10% of ages and incomes and 5% of cities missing, as real
exports have. Partitions are generated on the cluster, each from its own seed, so the
same arguments always give the same data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

CITIES = ["berlin", "paris", "rome", "oslo", "lisbon", "warsaw"]
REGIONS = ["north", "south", "east", "west", "centre"]


def make_customers(rows: int, seed: int = 0, first_id: int = 0) -> pd.DataFrame:
    """``rows`` customers, reproducible from ``seed``; ids start at ``first_id``."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, rows).astype("float64")
    income = rng.normal(60_000, 20_000, rows).round(2)
    purchases = rng.integers(1, 50, rows)
    tenure = rng.integers(0, 120, rows)
    # churn odds rise with age and income, fall with purchases and tenure
    score = 0.03 * (age - 50) + (income - 60_000) / 40_000 - 0.05 * (purchases - 25) \
        - 0.01 * (tenure - 60)
    will_churn = (rng.random(rows) < 1 / (1 + np.exp(-score))).astype("int64")
    frame = pd.DataFrame({
        "customer_id": np.arange(first_id, first_id + rows, dtype="int64"),
        "age": age, "income": income, "purchases": purchases, "tenure_months": tenure,
        "city": pd.Series(rng.choice(CITIES, rows), dtype=object),
        "region_id": rng.integers(0, len(REGIONS), rows),
        "will_churn": will_churn,
    })
    frame.loc[rng.random(rows) < 0.10, "age"] = np.nan
    frame.loc[rng.random(rows) < 0.10, "income"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "city"] = None
    return frame


def make_regions() -> pd.DataFrame:
    return pd.DataFrame({"region_id": np.arange(len(REGIONS), dtype="int64"),
                         "region": REGIONS})


def main(ctx, rows: int = 1_000_000, partitions: int = 8, seed: int = 42,
         output_dir: str = "data"):
    """Write ``customers.parquet`` (one file per partition) and ``regions.parquet``.

    A trial run (``--sample``) generates only that share of the rows.
    """
    import dask.dataframe as dd

    if ctx.sample is not None:
        rows = max(int(rows * ctx.sample), partitions)

    ctx.client  # generate on the job's cluster
    sizes = [rows // partitions + (1 if i < rows % partitions else 0) for i in range(partitions)]
    starts = np.cumsum([0] + sizes[:-1]).tolist()
    frame = dd.from_map(lambda part: make_customers(part[0], seed + part[1], part[2]),
                        list(zip(sizes, range(partitions), starts)),
                        meta=make_customers(0))
    # a folder or an object-store URL (on a cluster: s3://.../outputs/data)
    customers, regions = (f"{str(output_dir).rstrip('/')}/{name}"
                          for name in ("customers.parquet", "regions.parquet"))
    ctx.progress("write", done=0, total=2)
    frame.to_parquet(customers, write_index=False, overwrite=True)
    if "://" not in regions:
        Path(regions).parent.mkdir(parents=True, exist_ok=True)
    make_regions().to_parquet(regions, index=False)
    ctx.progress("write", done=2, total=2)
    for name in (customers, regions):
        ctx.add_output(name)
    return {"rows": rows, "partitions": partitions}
