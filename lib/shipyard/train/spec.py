"""The ``torch`` block of a job spec: a Ray Train loop, its config, data and scaling.

::

    torch:
      train_loop: shipyard.train.examples:image_classifier   # module:function(config)
      config: {epochs: 10, lr: 0.001, batch_size: 64}         # passed to the loop
      data: {path: out/features.parquet, validation: 0.2}     # optional: Ray Data shards
      scaling: {workers: 2, use_gpu: false}                   # one worker per GPU with use_gpu
      failure: {max_failures: 2}                              # worker failures survived
      checkpoint: {num_to_keep: 2, score: val_loss, mode: min}

The loop is imported where the spec enters (``shipyard validate`` names a typo) and must
take exactly one positional argument, the ``config`` dict: Ray Train calls it so on every
worker. Whether the cluster can place the workers is checked when the job starts, against
the Ray cluster it runs on.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal

from pydantic import (BeforeValidator, Field, PlainSerializer, Strict, ValidationInfo,
    field_validator, model_validator)

from shipyard.core.model import StrictModel
from shipyard.data.spec import InputSpec
from shipyard.spec.entrypoints import resolve_for_spec
from shipyard.core.units import format_duration, parse_duration

__all__ = ["TorchWorkload", "ScalingSpec", "FailureSpec", "CheckpointSpec", "TrainDataSpec"]


Seconds = Annotated[float, BeforeValidator(parse_duration),
                    PlainSerializer(format_duration, return_type=str)]


class ScalingSpec(StrictModel):
    """``torch.scaling``: how many training workers, and what each one reserves.

    With ``use_gpu`` each worker reserves one GPU (and trains on it with NCCL); without,
    ``cpus_per_worker`` CPUs and gloo. ``placement_timeout`` bounds the wait for the
    cluster to place every worker.
    """

    workers: Annotated[int, Strict()] = Field(2, ge=1)
    use_gpu: Annotated[bool, Strict()] = False
    cpus_per_worker: Annotated[int, Strict()] = Field(1, ge=1)
    placement_timeout: Seconds = 60.0


class FailureSpec(StrictModel):
    """``torch.failure``: how many worker failures a run survives (each one restarts the
    workers from the latest checkpoint). Retries of the whole job are ``spec.retries``."""

    max_failures: Annotated[int, Strict()] = Field(0, ge=0)


class CheckpointSpec(StrictModel):
    """``torch.checkpoint``: which checkpoints Ray Train keeps.

    ``score`` names a metric the loop reports; the ``num_to_keep`` best by it are kept
    (the latest is always kept too, to resume from).
    """

    num_to_keep: Annotated[int, Strict()] | None = Field(2, ge=1)
    score: str | None = None
    mode: Literal["min", "max"] = "min"


class TrainDataSpec(InputSpec):
    """``torch.data``: a dataset read with Ray Data and streamed to the workers in shards
    (the loop reads them with ``session.shard("train")`` / ``"validation"``).

    ``validation`` is the share of rows held out (shuffled with ``seed``); 0 keeps
    every row in ``train``.
    """

    validation: float = Field(0.2, ge=0, lt=1)
    seed: int = 0

    @model_validator(mode="after")
    def _only_what_ray_data_reads(self) -> TrainDataSpec:
        # Ray Data reads the file, not pandas: the pandas reader options would be ignored
        unsupported = [name for name in ("sep", "dtype", "parse_dates", "na_values")
                       if getattr(self, name) is not None]
        unsupported += ["options"] if self.options else []
        unsupported += ["decimals"] if self.decimals != "float64" else []
        if unsupported:
            raise ValueError(
                f"{', '.join(unsupported)}: not supported for torch.data, which Ray Data "
                "reads as it is (Parquet, comma-separated CSV with a header, JSON lines); "
                "prepare the table with a dataframe job first"
            )
        return self


def _one_positional(func: Any) -> str | None:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind({})
    except TypeError:
        return (f"must take one argument, the config dict (Ray Train calls "
                f"train_loop(config) on every worker); {func.__name__}{signature} does not")
    return None


class TorchWorkload(StrictModel):
    """``spec.torch``: PyTorch training with Ray Train's ``TorchTrainer``."""

    train_loop: str
    config: dict[str, Any] = Field(default_factory=dict)
    data: TrainDataSpec | None = None
    scaling: ScalingSpec = Field(default_factory=ScalingSpec)
    failure: FailureSpec = Field(default_factory=FailureSpec)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)

    @field_validator("train_loop")
    @classmethod
    def _loop_resolves(cls, reference: str, info: ValidationInfo) -> str:
        func = resolve_for_spec(reference, info.context)
        problem = _one_positional(func) if func is not None else None
        if problem:
            raise ValueError(problem)
        return reference

    @property
    def epochs(self) -> int | None:
        """``config.epochs`` when the loop is configured with one (for progress)."""
        epochs = self.config.get("epochs")
        return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None
