"""The result tables of a job's report, read from its ``result.json``, per workload (each
workload's descriptor in :mod:`shipyard.core.workloads` names its builder here).

- dataframe: rows in, read and out; rows after each step; the input's profile;
- sklearn: the models (CV score, test metrics, best parameters), the significance
  comparisons with their verdicts, and the best model's classification report;
- torch: test metrics, the metrics of every epoch, start-up and training times;
- python: the returned value's scalar fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shipyard.core.workloads import WORKLOADS, resolve

__all__ = ["Table", "result_tables", "dataframe_tables", "sklearn_tables", "torch_tables",
           "python_tables"]


@dataclass
class Table:
    """A titled table: ``columns`` names, ``rows`` of cells (numbers or text)."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _short(value: Any, limit: int = 120) -> Any:
    if _scalar(value):
        return value
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dataframe_tables(result: dict[str, Any]) -> list[Table]:
    rows = result.get("rows") or {}
    tables = [Table("Rows", ["input", "read", "output", "partitions", "partition size (MiB)"],
                    [[rows.get("input"), rows.get("read"), rows.get("output"),
                      result.get("partitions"),
                      round(result["partition_size"] / 2**20, 1)
                      if result.get("partition_size") else None]])]
    steps = result.get("steps") or []
    if steps:
        before = rows.get("read")
        table = Table("Rows after each step", ["#", "step", "rows", "change"])
        for step in steps:
            change = step["rows"] - before if before is not None else None
            table.rows.append([step["index"], step["step"], step["rows"], change])
            before = step["rows"]
        tables.append(table)
    profile = result.get("profile")
    if profile:
        table = Table("Input profile", ["column", "dtype", "missing", "missing %", "mean",
                                        "std", "min", "max"],
                      note="Quartiles are approximate (Dask percentiles).")
        for column, dtype in profile.get("dtypes", {}).items():
            described = profile.get("describe", {}).get(column, {})
            table.rows.append([column, dtype, profile.get("missing", {}).get(column),
                               round(100 * profile.get("missing_fraction", {}).get(column, 0), 2),
                               described.get("mean"), described.get("std"),
                               _short(described.get("min")), _short(described.get("max"))])
        tables.append(table)
    return tables


def _metric_names(models: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for entry in models.values():
        for key, value in (entry.get("test_metrics") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in names:
                names.append(key)
    return names


def sklearn_tables(result: dict[str, Any]) -> list[Table]:
    models = result.get("models") or {}
    best = result.get("best_model")
    tables: list[Table] = []
    if result.get("task") == "clustering":
        table = Table("Models", ["model", "estimator", "silhouette", "clusters", "noise",
                                 "best parameters"])
        for name, entry in models.items():
            table.rows.append([name + (" (best)" if name == best else ""), entry.get("estimator"),
                               entry.get("silhouette"), entry.get("clusters"), entry.get("noise"),
                               _short(entry.get("best_params"))])
        return [table]
    metric_names = _metric_names(models)
    scoring = result.get("scoring", "score")
    table = Table("Models", ["model", "estimator", f"CV {scoring}", "CV std",
                             *[f"test {m}" for m in metric_names], "best parameters"],
                  note=f"{result.get('search', {}).get('cv', '?')}-fold cross-validation on "
                       f"the training rows; test metrics on the held-out rows.")
    for name, entry in models.items():
        metrics = entry.get("test_metrics") or {}
        table.rows.append([name + (" (best)" if name == best else ""), entry.get("estimator"),
                           entry.get("cv_mean"), entry.get("cv_std"),
                           *[metrics.get(m) for m in metric_names],
                           _short(entry.get("best_params"))])
    tables.append(table)
    comparisons = result.get("comparisons") or []
    if comparisons:
        compared = Table("Significance of the differences", ["models", "mean difference",
                                                             "corrected t p-value",
                                                             "paired t p-value", "verdict"],
                         note="Corrected resampled t-test (Nadeau and Bengio) on the fold "
                              "scores; the paired t-test is shown for reference.")
        for pair in comparisons:
            compared.rows.append([" vs ".join(pair["models"]), pair.get("mean_difference"),
                                  (pair.get("corrected_t") or {}).get("p_value"),
                                  (pair.get("paired_t") or {}).get("p_value"),
                                  pair.get("verdict")])
        tables.append(compared)
    report = ((models.get(best) or {}).get("test_metrics") or {}).get("classification_report")
    if report:
        classes = Table(f"Classification report of {best} (test rows)",
                        ["class", "precision", "recall", "f1-score", "support"])
        for label, values in report.items():
            if isinstance(values, dict):
                classes.rows.append([label, values.get("precision"), values.get("recall"),
                                     values.get("f1-score"), values.get("support")])
            else:
                classes.rows.append([label, None, None, values, None])
        tables.append(classes)
    return tables


_EPOCH_COLUMNS = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr",
                  "samples_per_s", "elapsed_s")


def torch_tables(result: dict[str, Any]) -> list[Table]:
    tables: list[Table] = []
    test = result.get("test_metrics")
    if isinstance(test, dict) and test:
        scalars = {k: v for k, v in test.items() if _scalar(v)}
        tables.append(Table("Test metrics", list(scalars), [list(scalars.values())]))
    epochs = result.get("metrics") or []
    if epochs:
        present = [c for c in _EPOCH_COLUMNS if any(c in e for e in epochs)]
        tables.append(Table("Epochs", present, [[e.get(c) for c in present] for e in epochs]))
    timing = result.get("timing") or {}
    scaling = result.get("scaling") or {}
    if timing or scaling:
        facts = {**{f"scaling {k}": v for k, v in scaling.items()}, **timing,
                 "worker failures": result.get("worker_failures"),
                 "resumed from epoch": result.get("resumed_from_epoch")}
        tables.append(Table("Training run", ["", "value"],
                            [[k, _short(v)] for k, v in facts.items()]))
    return tables


def python_tables(result: dict[str, Any]) -> list[Table]:
    value = result.get("value")
    if isinstance(value, dict):
        return [Table("Returned value", ["key", "value"],
                      [[k, _short(v)] for k, v in value.items()])]
    return [Table("Returned value", ["value"], [[_short(value, 400)]])]


def _pipeline(result: dict[str, Any]) -> list[Table]:
    stages = result.get("stages") or {}
    overview = Table("Stages", ["stage", "workload", "state", "cached", "seconds", "job",
                                "reason"])
    tables = [overview]
    for name, stage in stages.items():
        overview.rows.append([name, stage.get("workload"), stage.get("state"),
                              "yes" if stage.get("cached") else "no", stage.get("seconds"),
                              stage.get("job_id") or "", stage.get("reason") or ""])
        if stage.get("result"):
            for table in result_tables(stage.get("workload"), stage["result"]):
                table.title = f"{name}: {table.title}"
                tables.append(table)
    overview.note = ("Cached stages reuse the result of the job named (same spec, inputs "
                     "and code); each stage's own page is runs/<job>/report/index.html.")
    return tables


def result_tables(workload: str | None, result: dict[str, Any]) -> list[Table]:
    """The tables of ``result`` (the job's ``result.json``) for its workload.

    Examples
    --------
    >>> [t.title for t in result_tables("python", {"value": {"rows": 3}})]
    ['Returned value']
    """
    if workload == "pipeline":
        return _pipeline(result)
    builder = WORKLOADS[workload].result_tables if workload in WORKLOADS else None
    return resolve(builder)(result) if builder else []
