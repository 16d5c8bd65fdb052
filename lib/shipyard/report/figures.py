"""A job's figures: PNG files under ``<run dir>/report/figures/``, listed for result.json.

Figures use matplotlib's object-oriented API on the Agg canvas (no pyplot, no global
state, nothing that needs a display), so several jobs may draw in one process::

    figures = FigureSet(run_dir)
    with figures.figure("loss", "Loss per epoch") as (fig, ax):
        ax.plot(epochs, losses)
    figures.entries   # [{"name": "loss", "title": ..., "path": "report/figures/loss.png"}]

A figure that fails to draw is skipped with a warning: a report is never worth failing
the job that computed it.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["FigureSet", "FIGURE_DIR", "new_figure"]

log = logging.getLogger("shipyard.report")

#: Where figures go, relative to the run directory (result.json lists them so).
FIGURE_DIR = Path("report") / "figures"

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def new_figure(size: tuple[float, float] = (6.4, 4.0), nrows: int = 1, ncols: int = 1,
               **subplots: Any):
    """A matplotlib ``Figure`` on the Agg canvas with its axes (``fig.subplots``)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots(nrows, ncols, **subplots)


class FigureSet:
    """The figures one attempt draws.

    Parameters
    ----------
    run_dir : path
        The job's run directory; figures go to ``report/figures/`` under it.
    enabled : bool
        False saves nothing (``spec.report.figures: false``); workloads check it first,
        to skip the computations behind their figures too.
    dpi : int
        Resolution of the PNG files.

    Examples
    --------
    >>> import tempfile
    >>> figures = FigureSet(tempfile.mkdtemp())
    >>> with figures.figure("line", "A line") as (fig, ax):
    ...     _ = ax.plot([0, 1], [0, 1])
    >>> figures.entries[0]["path"]
    'report/figures/line.png'
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True, dpi: int = 100):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.dpi = dpi
        self.entries: list[dict[str, str]] = []

    @property
    def directory(self) -> Path:
        return self.run_dir / FIGURE_DIR

    @contextlib.contextmanager
    def figure(self, name: str, title: str, caption: str = "",
               size: tuple[float, float] = (6.4, 4.0), nrows: int = 1, ncols: int = 1,
               **subplots: Any) -> Iterator[tuple[Any, Any]]:
        """Draw one figure in the block; it is saved as ``<name>.png`` when the block ends.

        Yields ``(fig, axes)``: ``axes`` as ``Figure.subplots`` gives them (one ``Axes``
        for a 1x1 grid, a 1-D array for one row or column, else 2-D).
        An exception in the block skips the figure (logged), it does not propagate.
        """
        if not _NAME.match(name):
            raise ValueError(f"figure name {name!r}: use lowercase letters, digits, '-', "
                             "'_' and '.'")
        try:
            fig, axes = new_figure(size, nrows, ncols, **subplots)
            fig.suptitle(title, fontsize="medium")
            yield fig, axes
            if not self.enabled:
                return
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{name}.png"
            fig.savefig(path, dpi=self.dpi, format="png")
        except Exception as err:  # noqa: BLE001 - a figure is never worth failing the job
            log.warning("figure %r skipped: %s: %s", name, type(err).__name__, err)
            return
        entry = {"name": name, "title": title, "path": (FIGURE_DIR / f"{name}.png").as_posix()}
        if caption:
            entry["caption"] = caption
        self.entries = [e for e in self.entries if e["name"] != name] + [entry]
