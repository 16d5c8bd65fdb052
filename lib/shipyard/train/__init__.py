"""The ``torch`` workload: PyTorch training with Ray Train, on CPUs or one worker per GPU.

- :mod:`shipyard.train.spec` - the ``torch`` block of a job spec;
- :mod:`shipyard.train.session` - the helpers a train loop uses (sharded data, DDP,
  mixed precision, checkpoints that resume the epoch counter, metric reporting);
- :mod:`shipyard.train.examples` - ready loops: a CNN on scikit-learn's digits, a
  tabular MLP on a Parquet dataset;
- :mod:`shipyard.train.job` - the runner: Ray, ``TorchTrainer``, progress, artifacts.

Nothing here imports torch or Ray until a job needs them.
"""
