"""The ``sklearn`` workload: scikit-learn models trained, searched (dask-ml), evaluated,
compared and saved on the job's Dask cluster. :func:`shipyard.ml.job.run` is its entry."""
