"""Test data: the churn jobs' own generator (jobs/churn_data.py), at test sizes."""

from __future__ import annotations

import sys

import pandas as pd

from helpers import ROOT

sys.path.insert(0, str(ROOT / "jobs"))
import churn_data  # noqa: E402  (jobs/churn_data.py)


def customers(n: int = 5000, seed: int = 0) -> pd.DataFrame:
    """Customers with missing ages, incomes and cities (see jobs/churn_data.py)."""
    return churn_data.make_customers(n, seed)


def regions() -> pd.DataFrame:
    return churn_data.make_regions()
