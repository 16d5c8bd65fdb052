"""The job layer: the job store, one attempt's runner, the per-job supervisor, the API.

Imports stay light here: the CLI's ``list`` and ``status`` must not pay for Dask.
"""
