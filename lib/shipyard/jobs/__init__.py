"""The job API (:mod:`~shipyard.jobs.api`: load, submit, run, ``Job`` handles) and the
schema of ``result.json``.

Imports stay light here: the CLI's ``list`` and ``status`` must not pay for Dask.
"""
