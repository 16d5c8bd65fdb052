"""The ``dataframe`` workload: pandas-style preprocessing scaled out with Dask.

- :mod:`~shipyard.data.spec`: the spec block (inputs, steps, output)
- :mod:`~shipyard.data.files`: finding input files on any fsspec filesystem
- :mod:`~shipyard.data.schema`: input schemas, and checking steps against them
- :mod:`~shipyard.data.readers` / :mod:`~shipyard.data.writers`: reading and atomic writing
- :mod:`~shipyard.data.ops`: the steps on Dask DataFrames; :mod:`~shipyard.data.stats`
  the whole-dataset statistics they need
- :mod:`~shipyard.data.pushdown`: which columns and rows the reader can skip
- :mod:`~shipyard.data.profile`: info()/describe() of the input
- :mod:`~shipyard.data.job`: the workload itself; :mod:`~shipyard.data.arrays`: NumPy
  basics on Dask arrays for ``python`` jobs
"""
