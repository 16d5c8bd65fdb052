"""What every sklearn job does last: save the best pipeline, score ``batch_predict``'s
dataset with it, and time the result. Shared by the in-memory, clustering and
distributed paths, so each saves the same sidecar and none forgets the batch scoring."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from shipyard.ml.artifacts import save_model
from shipyard.ml.predict import batch_predict
from shipyard.ml.spec import SklearnWorkload

if TYPE_CHECKING:
    from shipyard.runtime.context import JobContext

__all__ = ["finish"]


def finish(block: SklearnWorkload, ctx: JobContext, result: dict[str, Any], pipeline: Any,
           trained_on: dict[str, Any], started: float, **sidecar: Any) -> dict[str, Any]:
    """Complete ``result`` (which names its ``best_model``, ``task``, ``features``,
    ``scoring`` and per-model ``best_params``): save ``pipeline`` with its sidecar
    (``trained_on`` and any extra ``sidecar`` entries added), run ``batch_predict``,
    add ``artifacts``, ``batch_predict`` and ``seconds``."""
    best = result["best_model"]
    chosen = next(m for m in block.models if m.name == best)
    steps = len(block.models)
    ctx.progress("save", done=steps + 1, total=steps + 3)
    result["artifacts"] = save_model(pipeline, ctx.artifacts_dir, {
        "model": best, "estimator": chosen.estimator, "task": result["task"],
        "params": {**chosen.params, **result["models"][best]["best_params"]},
        "features": result["features"], "target": block.target,
        "classes": result.get("classes"), "scoring": result["scoring"], **sidecar,
        "trained_on": {"path": block.input.path, **trained_on},
    })
    if block.batch_predict is not None:
        ctx.progress("batch predict", done=steps + 2, total=steps + 3)
        result["batch_predict"] = batch_predict(pipeline, result["features"],
                                                block.batch_predict,
                                                f"{ctx.job_id}-{ctx.attempt}")
        ctx.add_output(block.batch_predict.output.path)
    result["seconds"] = round(time.time() - started, 3)
    ctx.progress("done", done=steps + 3, total=steps + 3)
    return result
