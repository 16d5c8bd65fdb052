"""scikit-learn's shipped datasets as Parquet files, for the example jobs and tests.

=============  =========  ========  ===========================================
file           rows       features  target
=============  =========  ========  ===========================================
breast_cancer  569        30        ``diagnosis``: ``malignant`` / ``benign``
wine           178        13        ``cultivar``: 0, 1, 2
digits         1797       64        ``digit``: 0-9 (8x8 pixel intensities)
diabetes       442        10        ``progression``: a float (one year later)
=============  =========  ========  ===========================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["DATASETS", "dataset_frame", "write_datasets"]

DATASETS = ("breast_cancer", "wine", "digits", "diabetes")


def dataset_frame(name: str) -> pd.DataFrame:
    """One dataset as a frame: the features, then the target column."""
    from sklearn import datasets

    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.copy()
    frame.columns = [str(c).replace(" ", "_").replace("(", "").replace(")", "")
                     for c in frame.columns]
    if name == "breast_cancer":
        frame["diagnosis"] = pd.Series(bunch.target_names[bunch.target]).astype("str")
        return frame.drop(columns="target")
    renamed = {"wine": "cultivar", "digits": "digit", "diabetes": "progression"}[name]
    return frame.rename(columns={"target": renamed})


def write_datasets(ctx: Any = None, directory: str = "out/datasets",
                   names: list[str] | None = None) -> dict[str, Any]:
    """Write the datasets as ``<directory>/<name>.parquet`` (a ``python`` job entrypoint:
    ``shipyard.ml.datasets:write_datasets``).

    A trial run (``--sample``) writes them whole too: they are small already (at most
    1,797 rows), and the jobs that read them take their own sample of each.
    """
    if ctx is not None and ctx.sample is not None:
        ctx.logger.info("a trial run writes the datasets whole: they are small, and the "
                        "jobs that read them take their own sample")
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in names or DATASETS:
        path = root / f"{name}.parquet"
        frame = dataset_frame(name)
        partial = root / f".{name}.parquet.partial"
        frame.to_parquet(partial, index=False)
        partial.replace(path)
        written[name] = {"path": str(path), "rows": len(frame), "columns": len(frame.columns)}
        if ctx is not None:
            ctx.add_output(str(path))
    return written
