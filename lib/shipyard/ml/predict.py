"""Score a dataset with a fitted pipeline, in parallel over its partitions.

The pipeline is wrapped in dask-ml's ``ParallelPostFit``, which predicts partition by
partition on the workers (the model is shipped once), so the dataset never has to fit
in one process. The output holds the ``keep`` columns, ``prediction`` and, when asked,
one ``probability_<class>`` column per class; it is written atomically like a dataframe
job's output.
"""

from __future__ import annotations

from typing import Any

from shipyard.core.errors import InputDataError
from shipyard.data.readers import read_input
from shipyard.data.writers import stage_output
from shipyard.ml.spec import BatchPredictSpec

__all__ = ["batch_predict"]


def batch_predict(model: Any, features: list[str], spec: BatchPredictSpec, tag: str
                  ) -> dict[str, Any]:
    """Score ``spec.input`` with ``model`` on the current Dask client; write the output.

    Returns
    -------
    dict : ``{"path", "rows"}`` of the written output.
    """
    import dask
    from dask_ml.wrappers import ParallelPostFit

    if spec.probabilities and not hasattr(model, "predict_proba"):
        raise InputDataError(f"batch_predict.probabilities: the model "
                             f"({type(model).__name__}) has no predict_proba; set "
                             "probabilities: false")
    frame = read_input(spec.input, columns=list(dict.fromkeys(spec.keep + features)))
    wrapped = ParallelPostFit(estimator=model)
    predictions = wrapped.predict(frame[features])  # one task per partition
    out = frame[spec.keep] if spec.keep else frame[[]]
    out = out.assign(prediction=predictions)
    if spec.probabilities:
        probabilities = wrapped.predict_proba(frame[features])
        for index, label in enumerate(model.classes_):
            out = out.assign(**{f"probability_{label}": probabilities[:, index]})
    staged = stage_output(out, spec.output, tag)
    try:
        _, rows = dask.compute(staged.write, out.shape[0])
        staged.commit()
    except BaseException:
        staged.abort()
        raise
    return {"path": spec.output.path, "rows": int(rows)}
