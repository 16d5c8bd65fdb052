"""What a job leaves for people to look at: figures (matplotlib, Agg, PNG) and one HTML
page per job (``runs/<id>/report/index.html``).

Workloads draw their figures through a :class:`~shipyard.report.figures.FigureSet`
(``ctx.figures``) from numbers computed on the cluster; the runner writes the page when
the attempt ends (:func:`~shipyard.report.page.write_report`), failed attempts included.
"""

from shipyard.report.figures import FigureSet

__all__ = ["FigureSet"]
