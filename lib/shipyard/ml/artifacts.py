"""The saved model: the fitted pipeline (joblib) and a JSON sidecar describing it.

``artifacts/model.joblib`` is the whole pipeline (preprocessing and model), so
``joblib.load(path).predict(frame[features])`` scores new rows. ``artifacts/model.json``
says what it expects and what it was built with: features, target, classes, task, the
model's name, estimator and parameters, and the library versions (a pickle is only safe
to load with the versions that wrote it).
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from shipyard.core.atomic import write_json_atomic
from shipyard.core.errors import InputDataError

__all__ = ["save_model", "load_model", "model_files", "LIBRARIES"]

LIBRARIES = ("shipyard", "scikit-learn", "dask-ml", "numpy", "pandas", "scipy", "joblib")


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def save_model(pipeline: Any, directory: Path, sidecar: dict[str, Any]) -> dict[str, str]:
    """Write ``model.joblib`` and ``model.json`` into ``directory``; return their paths."""
    import joblib

    directory.mkdir(parents=True, exist_ok=True)
    model_path, meta_path = directory / "model.joblib", directory / "model.json"
    partial = directory / ".model.joblib.partial"
    joblib.dump(pipeline, partial)
    partial.replace(model_path)  # readers never see half a pickle
    write_json_atomic(meta_path, {**sidecar, "versions": _versions()})
    return {"model": str(model_path), "metadata": str(meta_path)}


def model_files(path: str | Path) -> tuple[Path, Path]:
    """``(model.joblib, model.json)`` for a saved model named by its ``.joblib`` file or
    by the directory holding both."""
    path = Path(path)
    directory = path.parent if path.suffix == ".joblib" else path
    return (path if path.suffix == ".joblib" else directory / "model.joblib",
            directory / "model.json")


def load_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """A saved pipeline and its sidecar; :class:`InputDataError` when either is missing
    or unreadable."""
    import joblib

    model_path, meta_path = model_files(path)
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise InputDataError(f"{meta_path}: no such file; give the model.joblib a "
                             "shipyard sklearn job saved (its sidecar lies beside it)") from None
    except (OSError, ValueError) as err:
        raise InputDataError(f"{meta_path} could not be read: {err}") from None
    try:
        model = joblib.load(model_path)
    except FileNotFoundError:
        raise InputDataError(f"{model_path}: no such file") from None
    except Exception as err:  # unpickling can raise anything
        raise InputDataError(f"{model_path} could not be loaded ({type(err).__name__}: "
                             f"{err}); it was saved with {meta.get('versions')}") from None
    return model, meta
