"""What a train loop uses on each Ray Train worker, so that it holds only the model and
the loop body.

::

    def my_loop(config):
        session = TrainSession(config)
        model = session.prepare_model(MyNet())              # DDP: gloo on CPU, NCCL on GPU
        train = session.data_loader(train_set, config["batch_size"], shuffle=True)
        optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
        for epoch in session.epochs(model, optimizer):      # resumes after a restart
            stats = session.train_epoch(model, train, optimizer, loss_fn)
            stats |= session.evaluate(model, val_set, loss_fn, prefix="val_")
            session.report(stats, model, optimizer)           # metrics + checkpoint
        return session.evaluate(model, test_set, loss_fn, prefix="test_")

Every metric is computed over all workers (sums all-reduced), so what a 4-worker run
reports equals what one process would compute on the same data. Checkpoints hold the
model, optimizer and grad-scaler state, the epoch and the metric history; a restarted
worker group (a killed worker, or the job retried) continues from the latest one.
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

__all__ = ["TrainSession", "STATE_FILE", "HISTORY_FILE", "MODEL_FILE", "EXPORT_FILES"]

log = logging.getLogger("shipyard.train")

#: Files of a checkpoint: the training state, the metric history, the final model.
STATE_FILE = "state.pt"
HISTORY_FILE = "metrics.json"
MODEL_FILE = "model.pt"
#: The exported model, by format, in the final checkpoint when the model allows it.
EXPORT_FILES = {"torch.export": "model.pt2", "torchscript": "model.torchscript.pt"}


def _quiet_report_log() -> None:
    # Ray Train logs every report (metrics and all) at INFO on each worker, whatever the
    # run's LoggingConfig says: its logger is named by file path, outside "ray.train".
    # The driver already logs each epoch once.
    try:
        from ray.train.v2._internal.execution import context as report_module
    except ImportError:  # another Ray layout: keep its logging as it is
        return
    logging.getLogger(report_module.__file__).setLevel(logging.WARNING)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


class TrainSession:
    """One worker's view of a training run.

    Parameters
    ----------
    config : dict
        The job's ``torch.config``. ``epochs`` (default 10) bounds :meth:`epochs`,
        ``seed`` (default 0) seeds torch, ``amp`` (default true) turns on mixed
        precision where there is a GPU.
    """

    def __init__(self, config: dict[str, Any]):
        import ray.train
        import ray.train.torch

        self.config = dict(config)
        _quiet_report_log()
        context = ray.train.get_context()
        self.rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self.device = ray.train.torch.get_device()
        self.total_epochs = int(self.config.get("epochs", 10))
        torch.manual_seed(int(self.config.get("seed", 0)))
        on_gpu = self.device.type == "cuda"
        self.amp = bool(self.config.get("amp", True)) and on_gpu
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.history: list[dict[str, Any]] = []
        self.epoch = -1
        self.resumed_from: int | None = None
        self.started_at = time.time()

    # -- model and data -------------------------------------------------------------------

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Move the model to this worker's device and wrap it in DDP (with >1 worker)."""
        import ray.train.torch

        return ray.train.torch.prepare_model(model)

    def data_loader(self, dataset: Dataset, batch_size: int, shuffle: bool = True,
                    **kwargs: Any) -> DataLoader:
        """A loader over this worker's share of ``dataset`` (a DistributedSampler), whose
        batches arrive on the worker's device. ``batch_size`` is per worker."""
        import ray.train.torch

        loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, **kwargs)
        # On a GPU Ray copies the next batch on a side stream while this one computes; on a
        # CPU its per-batch wrapper is pure overhead (train_epoch moves batches anyway).
        on_gpu = self.device.type == "cuda"
        return ray.train.torch.prepare_data_loader(loader, move_to_device=on_gpu,
                                                   auto_transfer=on_gpu)

    def shard(self, name: str = "train"):
        """This worker's shard of the job's ``torch.data`` dataset (``train`` or
        ``validation``), a Ray Data ``DataIterator``."""
        import ray.train

        return ray.train.get_dataset_shard(name)

    def tabular_batches(self, shard, batch_size: int, features: list[str], target: str,
                        drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(x, y)`` batches from a Ray Data shard: the feature columns stacked as float32,
        the target as int64, on this worker's device."""
        for batch in shard.iter_torch_batches(batch_size=batch_size, device=self.device,
                                              drop_last=drop_last):
            x = torch.stack([batch[c].to(torch.float32) for c in features], dim=1)
            yield x, batch[target].to(torch.int64)

    def _my_share(self, dataset: Dataset, batch_size: int) -> Iterable:
        # Every rank evaluates a disjoint share with no padding, so summed counts are
        # exactly those of one pass over the whole set (a DistributedSampler would repeat
        # samples to even out the shares).
        if isinstance(dataset, Dataset):
            indices = range(self.rank, len(dataset), self.world_size)  # type: ignore[arg-type]
            return DataLoader(Subset(dataset, list(indices)), batch_size=batch_size)
        return dataset

    # -- epochs and checkpoints -----------------------------------------------------------

    def epochs(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None
               ) -> Iterator[int]:
        """The epochs still to run: from 0, or after the epoch of the latest checkpoint,
        whose model, optimizer and history are loaded first."""
        first = self.restore(model, optimizer)
        for epoch in range(first, self.total_epochs):
            self.epoch = epoch
            yield epoch

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> int:
        """Load the latest checkpoint of this run, if any; return the first epoch to run."""
        import ray.train

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return 0
        with checkpoint.as_directory() as directory:
            state = torch.load(Path(directory) / STATE_FILE, map_location=self.device,
                               weights_only=True)
        _unwrap(model).load_state_dict(state["model"])
        if optimizer is not None and state.get("optimizer"):
            optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.history = json.loads(state["history"])
        self.resumed_from = int(state["epoch"])
        if self.rank == 0:
            log.info("resumed from the checkpoint of epoch %d", self.resumed_from)
        return self.resumed_from + 1

    def report(self, metrics: dict[str, Any], model: nn.Module,
               optimizer: torch.optim.Optimizer | None = None,
               export_input: torch.Tensor | None = None) -> None:
        """Report this epoch's metrics with a checkpoint (saved by rank 0).

        Every worker must call it (it is a collective). On the last epoch the model is
        also exported for serving: ``torch.export`` with ``export_input`` as the example
        input, TorchScript where that fails, the state dict always. With an
        ``optimizer`` and no ``lr`` in ``metrics``, the entry records the optimizer's
        current learning rate (of its first parameter group) as ``lr``.
        """
        import ray.train

        now = time.time()
        entry = {"epoch": self.epoch, **metrics,
                 "elapsed_s": round(now - self.started_at, 3), "timestamp": round(now, 3)}
        if optimizer is not None and "lr" not in metrics:
            learning_rate = current_lr(optimizer)
            if learning_rate is not None:
                entry["lr"] = learning_rate
        if self.resumed_from is not None:
            entry["resumed_from"] = self.resumed_from
        self.history.append(entry)
        last = self.epoch == self.total_epochs - 1
        with tempfile.TemporaryDirectory(prefix="shipyard-ckpt-") as directory:
            checkpoint = None
            if self.rank == 0:
                self._save(Path(directory), model, optimizer,
                           export_input if last else None)
                checkpoint = ray.train.Checkpoint.from_directory(directory)
            ray.train.report(entry, checkpoint=checkpoint)

    def _save(self, directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None,
              export_input: torch.Tensor | None) -> None:
        plain = _unwrap(model)
        torch.save({
            "epoch": self.epoch,
            "model": plain.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "scaler": self.scaler.state_dict() if self.amp else None,
            # JSON text: loadable with weights_only=True whatever the metrics hold
            "history": json.dumps(self.history),
        }, directory / STATE_FILE)
        torch.save(plain.state_dict(), directory / MODEL_FILE)
        (directory / HISTORY_FILE).write_text(json.dumps(self.history, indent=1))
        if export_input is not None:
            export_model(plain, export_input, directory)

    # -- the loop body --------------------------------------------------------------------

    def autocast(self):
        """Mixed precision (float16) on a GPU when ``amp`` is on; nothing otherwise."""
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return nullcontext()

    def _all_sum(self, values: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def train_epoch(self, model: nn.Module, batches: Iterable, optimizer: torch.optim.Optimizer,
                    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                    classify: bool = True) -> dict[str, float]:
        """One pass over ``batches`` of ``(x, y)``; returns ``train_loss``, ``train_accuracy``
        (when ``classify``), ``samples`` and ``samples_per_s``, over all workers."""
        model.train()
        sampler = getattr(batches, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(max(self.epoch, 0))  # a different shuffle each epoch
        # Sums stay on the device (.item() per batch would wait for the GPU every step),
        # and the step does no more than a plain loop: small models are per-step bound.
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        count = 0
        started = time.perf_counter()
        for x, y in batches:
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with self.autocast():
                output = model(x)
                loss = loss_fn(output, y)
            if self.amp:
                self.scaler.scale(loss).backward()
                self.scaler.step(optimizer)
                self.scaler.update()
            else:
                loss.backward()
                optimizer.step()
            n = y.shape[0]
            loss_sum += loss.detach() * n
            if classify:
                correct += (output.detach().argmax(dim=1) == y).sum()
            count += n
        seconds = time.perf_counter() - started
        sums = torch.stack([loss_sum.double(), correct.double(),
                            torch.tensor(float(count), dtype=torch.float64, device=self.device)])
        sums = self._all_sum(sums).tolist()
        if sums[2] == 0:
            # every worker sees the same sums, so all of them stop here, none waits
            raise ValueError("an epoch went by without a single training row: the training "
                             "data is empty, or each worker's share is smaller than one "
                             "batch and the loop drops incomplete batches")
        count = sums[2]
        stats = {"train_loss": sums[0] / count, "samples": int(sums[2]),
                 "samples_per_s": sums[2] / seconds if seconds > 0 else 0.0}
        if classify:
            stats["train_accuracy"] = sums[1] / count
        return stats

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Dataset | Iterable, loss_fn: Callable,
                 num_classes: int | None = None, prefix: str = "val_",
                 batch_size: int = 256, confusion: bool = False) -> dict[str, Any]:
        """Loss, and for classifiers accuracy and macro precision and recall (and with
        ``confusion`` the confusion matrix, rows the true class), over ``data``.

        ``data`` is a map-style Dataset (each worker takes a disjoint share) or an
        iterable of ``(x, y)`` batches that is already this worker's share (a Ray Data
        shard). Counts are summed over workers, so the metrics are exact.
        """
        model.eval()
        classes = num_classes or 0
        counts = torch.zeros(classes * classes, dtype=torch.float64, device=self.device)
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)
        for x, y in self._my_share(data, batch_size):
            x, y = x.to(self.device), y.to(self.device)
            with self.autocast():
                output = model(x)
            sums[0] += loss_fn(output.float(), y).double() * y.shape[0]
            sums[1] += y.shape[0]
            if classes:
                predicted = output.argmax(dim=1)
                counts += torch.bincount(y * classes + predicted,
                                         minlength=classes * classes).double()
        sums = self._all_sum(sums).tolist()
        metrics: dict[str, Any] = {f"{prefix}loss": sums[0] / max(sums[1], 1.0)}
        if classes:
            matrix = self._all_sum(counts).reshape(classes, classes).cpu()
            metrics.update(classification_metrics(matrix, prefix))
            if not confusion:
                metrics.pop(f"{prefix}confusion")
        return metrics


def current_lr(optimizer: torch.optim.Optimizer) -> float | None:
    """The learning rate of the optimizer's first parameter group (a scheduler's
    latest value), as a float; None when it has none.

    Examples
    --------
    >>> current_lr(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05))
    0.05
    """
    groups = getattr(optimizer, "param_groups", None) or [{}]
    value = groups[0].get("lr")
    if isinstance(value, torch.Tensor):
        value = value.item()
    return float(value) if isinstance(value, (int, float)) else None


def classification_metrics(confusion: torch.Tensor, prefix: str = "") -> dict[str, Any]:
    """Accuracy and macro precision/recall from a confusion matrix (rows: true class).

    Classes never predicted count as precision 0 and classes absent as recall 0, as
    scikit-learn's ``zero_division=0``.

    Examples
    --------
    >>> m = torch.tensor([[3., 1.], [0., 4.]])
    >>> {k: round(v, 4) for k, v in classification_metrics(m).items() if k != "confusion"}
    {'accuracy': 0.875, 'precision': 0.9, 'recall': 0.875}
    """
    true_positives = confusion.diag()
    predicted = confusion.sum(dim=0)
    actual = confusion.sum(dim=1)
    precision = torch.where(predicted > 0, true_positives / predicted.clamp(min=1), 0.0)
    recall = torch.where(actual > 0, true_positives / actual.clamp(min=1), 0.0)
    labels = (actual > 0) | (predicted > 0)  # averaged over, as scikit-learn's macro
    return {
        f"{prefix}accuracy": float(true_positives.sum() / confusion.sum().clamp(min=1)),
        f"{prefix}precision": float(precision[labels].mean()),
        f"{prefix}recall": float(recall[labels].mean()),
        f"{prefix}confusion": confusion.to(torch.int64).tolist(),
    }


def export_model(model: nn.Module, example_input: torch.Tensor, directory: Path) -> str | None:
    """Save ``model`` for serving without its Python class: ``torch.export`` (``model.pt2``),
    else TorchScript by tracing (``model.torchscript.pt``). Returns the format, or None
    when neither works (the state dict is still saved)."""
    plain = copy.deepcopy(model).cpu().eval()
    example = example_input[:2].detach().cpu()
    try:
        # the batch dimension stays free: serving calls it with any number of rows
        exported = torch.export.export(plain, (example,),
                                       dynamic_shapes=({0: torch.export.Dim.DYNAMIC},))
        torch.export.save(exported, directory / EXPORT_FILES["torch.export"])
        return "torch.export"
    except Exception as err:  # many models cannot be exported; tracing often still works
        log.warning("torch.export failed (%s); trying TorchScript", err)
    try:
        traced = torch.jit.trace(plain, example)
        traced.save(str(directory / EXPORT_FILES["torchscript"]))
        return "torchscript"
    except Exception as err:
        log.warning("the model could not be exported (%s); only its state dict is saved", err)
        return None
