"""Loading a spec: a YAML file or a mapping, with ``--set`` overrides, into a
:class:`~shipyard.spec.job.JobSpec` or a :class:`~shipyard.spec.pipeline.PipelineSpec`
(by its ``kind``), checked against what it refers to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from shipyard.core.errors import SpecError
from shipyard.spec.overrides import apply_overrides
from shipyard.spec.job import JobSpec, load_job
from shipyard.spec.pipeline import PipelineSpec, load_pipeline
from shipyard.spec.yamlio import load_yaml

__all__ = ["load"]


def _read_document(path: Path) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SpecError(f"{path} is a directory; give the path of a YAML job spec") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{path} could not be read: {err}") from None
    try:
        return load_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecError(f"{path} is not valid YAML{where}: {problem}") from None


def load(
    source: str | Path | Mapping[str, Any],
    overrides: Iterable[str] | Mapping[str, Any] = (),
    *,
    check_references: bool = True,
    check_inputs: bool = True,
    base_dir: str | None = None,
) -> JobSpec | PipelineSpec:
    """Load and validate a job spec (``kind: Job``) or a pipeline (``kind: Pipeline``,
    see :mod:`shipyard.spec.pipeline`) from a YAML file or a mapping.

    Parameters
    ----------
    source : path or mapping
        A YAML file, or the same structure as a dict.
    overrides : iterable of str or mapping, optional
        ``"path=value"`` overrides (as ``--set``), applied before validation.
    check_references : bool, default True
        Check what the spec refers to: import entrypoints (and check their parameters),
        read input schemas (and check the columns steps name), look at output targets.
    check_inputs : bool, default True
        Read the input schemas (False for a pipeline stage whose inputs an earlier
        stage writes).
    base_dir : str, optional
        Where entrypoint modules are looked for first (default: a file's own
        directory; none for a mapping).

    Returns
    -------
    JobSpec or PipelineSpec

    Raises
    ------
    SpecError
        Listing every problem with its dotted path (exit code 2 on the CLI).
    UsageError
        When an override cannot be applied.
    """
    if isinstance(source, Mapping):
        name, document = "the job spec", dict(source)
    else:
        path = Path(source)
        # a run's stored copy of a spec is read with the directory of the original
        name, document = str(path), _read_document(path)
        base_dir = base_dir or str(path.resolve().parent)
        if document is None:
            raise SpecError(
                f"{path} is empty; a job spec is a mapping with apiVersion, kind, "
                "metadata and spec"
            )
    if not isinstance(document, Mapping):
        raise SpecError(
            f"{name} must be a mapping with apiVersion, kind, metadata and spec at its "
            f"top level, got a {type(document).__name__}"
        )
    document = apply_overrides(document, overrides)
    if document.get("kind") == "Pipeline":
        return load_pipeline(document, name, base_dir, check_references=check_references)
    return load_job(document, name, base_dir, check_references=check_references,
                    check_inputs=check_inputs)
