"""The figures of a ``torch`` job, drawn in the driver from the per-epoch history
(``result["metrics"]``: ``{"epoch", "train_loss", "val_loss", "train_accuracy",
"val_accuracy", "lr", "samples_per_s", ...}`` per epoch, as ``TrainSession.report``
records them):

- ``loss``: every ``*loss`` metric (training and validation) per epoch;
- ``accuracy``: every ``*accuracy`` metric per epoch;
- ``learning_rate``: the optimizer's learning rate (``lr``) per epoch;
- ``throughput``: training samples per second per epoch.

A figure whose metrics the loop never reported is not drawn. The numbers come from
:func:`metric_series`, a pure function a test compares with the history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["metric_series", "metric_keys", "draw_torch_figures"]

#: Which metrics come first in a figure's legend.
_ORDER = ("train_", "val_")


def metric_keys(history: Sequence[Mapping[str, Any]], suffix: str) -> list[str]:
    """The metrics of ``history`` named ``suffix`` or ``*_<suffix>``, train and
    validation first (``test_*`` metrics are not per epoch and are left out).

    Examples
    --------
    >>> metric_keys([{"val_loss": 1.0, "train_loss": 2.0, "lr": 0.1}], "loss")
    ['train_loss', 'val_loss']
    """
    keys: list[str] = []
    for entry in history:
        for key, value in entry.items():
            if (key == suffix or key.endswith("_" + suffix)) and not key.startswith("test_") \
                    and _number(value) and key not in keys:
                keys.append(key)

    def rank(key: str) -> tuple[int, str]:
        return next((i for i, p in enumerate(_ORDER) if key.startswith(p)), len(_ORDER)), key

    return sorted(keys, key=rank)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def metric_series(history: Sequence[Mapping[str, Any]], key: str
                  ) -> tuple[list[int], list[float]]:
    """``(epochs, values)`` of one metric: the epochs that reported a finite number, in
    epoch order, each once (the latest report wins: a resumed run repeats none, but a
    history may).

    Examples
    --------
    >>> metric_series([{"epoch": 1, "lr": 0.01}, {"epoch": 0, "lr": 0.1}, {"epoch": 2}], "lr")
    ([0, 1], [0.1, 0.01])
    """
    by_epoch: dict[int, float] = {}
    for position, entry in enumerate(history):
        value = entry.get(key)
        if not _number(value):
            continue
        epoch = entry.get("epoch")
        by_epoch[int(epoch) if _number(epoch) else position] = float(value)
    epochs = sorted(by_epoch)
    return epochs, [by_epoch[e] for e in epochs]


def _label(key: str) -> str:
    return {"train": "training", "val": "validation"}.get(key.split("_")[0], key) \
        if "_" in key else key


def _lines(figures, name: str, title: str, caption: str, history, keys: list[str],
           ylabel: str, log_scale: bool = False) -> None:
    series = {key: metric_series(history, key) for key in keys}
    series = {k: v for k, v in series.items() if v[0]}
    if not series:
        return
    with figures.figure(name, title, caption=caption) as (fig, ax):
        for key, (epochs, values) in series.items():
            ax.plot(epochs, values, marker="o", markersize=3, label=_label(key))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        if log_scale:
            ax.set_yscale("log")
        else:
            ax.ticklabel_format(axis="y", useOffset=False)  # no "+1.5e4" above the axis
        if name == "throughput":
            ax.set_ylim(bottom=0)  # small changes in samples/s should look small
        if len(series) > 1:
            ax.legend(fontsize="small")
        ax.grid(alpha=0.3)


def draw_torch_figures(figures, history: Sequence[Mapping[str, Any]]) -> None:
    """Draw ``loss``, ``accuracy``, ``learning_rate`` and ``throughput`` (those with
    numbers in ``history``) into ``figures``, a :class:`~shipyard.report.FigureSet`."""
    if not figures.enabled or not history:
        return
    _lines(figures, "loss", "Loss per epoch",
           "Training and validation loss at the end of each epoch.",
           history, metric_keys(history, "loss"), "loss")
    _lines(figures, "accuracy", "Accuracy per epoch",
           "Training and validation accuracy (fraction correct) of each epoch.",
           history, metric_keys(history, "accuracy"), "accuracy")
    _, rates = metric_series(history, "lr")
    positive = [r for r in rates if r > 0]
    # a schedule spanning decades reads better on a log axis
    log_scale = len(positive) == len(rates) and bool(rates) and max(rates) / min(rates) >= 10
    _lines(figures, "learning_rate", "Learning rate per epoch",
           "The optimizer's learning rate when each epoch reported its metrics.",
           history, ["lr"], "learning rate", log_scale=log_scale)
    _lines(figures, "throughput", "Training throughput per epoch",
           "Training samples per second of each epoch, over all workers (the first "
           "includes warm-up).", history, ["samples_per_s"], "samples / s")
