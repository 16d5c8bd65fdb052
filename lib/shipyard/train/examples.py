"""Ready-made train loops for ``torch.train_loop``.

- :func:`image_classifier` - a small CNN (conv, pool, dense, softmax) on scikit-learn's
  shipped ``digits`` images (1,797 8x8 grey images of the digits 0-9; nothing to download);
- :func:`tabular_mlp` - a multi-layer perceptron on the job's ``torch.data`` table, read by
  Ray Data and streamed to the workers in shards.

Both report per-epoch training and validation metrics, checkpoint every epoch (a restarted
run continues from the latest epoch) and return test metrics on a held-out split: loss,
accuracy, macro precision and recall.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from shipyard.train.session import TrainSession

__all__ = ["DigitsCNN", "TabularMLP", "image_classifier", "tabular_mlp", "digits_splits"]


class DigitsCNN(nn.Module):
    """Conv -> pool -> conv -> pool -> dense -> dense -> log-softmax, for 1x8x8 images.

    Parameters
    ----------
    channels : int
        Feature maps of the first convolution (the second has twice as many).
    hidden : int
        Units of the hidden dense layer.
    dropout : float
    classes : int
    """

    def __init__(self, channels: int = 16, hidden: int = 64, dropout: float = 0.25,
                 classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),                                   # 8x8 -> 4x4
            nn.Conv2d(channels, 2 * channels, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),                                   # 4x4 -> 2x2
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * channels * 2 * 2, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, classes),
            nn.LogSoftmax(dim=1),  # log-probabilities; trained with NLLLoss
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def digits_splits(test_size: float = 0.2, validation_size: float = 0.1, seed: int = 0
                  ) -> dict[str, TensorDataset]:
    """scikit-learn's digits as ``train``/``validation``/``test`` tensor datasets
    (stratified; pixels scaled from 0..16 to 0..1; images shaped 1x8x8)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    labels = torch.tensor(digits.target, dtype=torch.int64)
    index = list(range(len(labels)))
    rest, test = train_test_split(index, test_size=test_size, random_state=seed,
                                  stratify=digits.target)
    train, validation = train_test_split(
        rest, test_size=validation_size / (1 - test_size), random_state=seed,
        stratify=digits.target[rest])
    return {name: TensorDataset(images[idx], labels[idx])
            for name, idx in (("train", train), ("validation", validation), ("test", test))}


def image_classifier(config: dict[str, Any]) -> dict[str, Any]:
    """Train :class:`DigitsCNN` on the digits images; return test metrics.

    ``config``: ``epochs`` (10), ``lr`` (0.001), ``batch_size`` per worker (64),
    ``channels`` (16), ``hidden`` (64), ``dropout`` (0.25), ``seed`` (0).
    """
    session = TrainSession(config)
    splits = digits_splits(seed=int(config.get("seed", 0)))
    model = session.prepare_model(DigitsCNN(channels=int(config.get("channels", 16)),
                                            hidden=int(config.get("hidden", 64)),
                                            dropout=float(config.get("dropout", 0.25))))
    train = session.data_loader(splits["train"], int(config.get("batch_size", 64)))
    optimizer = torch.optim.Adam(model.parameters(), lr=float(config.get("lr", 0.001)))
    loss_fn = nn.NLLLoss()
    example = splits["test"].tensors[0][:2]
    for _epoch in session.epochs(model, optimizer):
        stats = session.train_epoch(model, train, optimizer, loss_fn)
        stats.update(session.evaluate(model, splits["validation"], loss_fn, num_classes=10))
        session.report(stats, model, optimizer, export_input=example)
    return session.evaluate(model, splits["test"], loss_fn, num_classes=10, prefix="test_",
                            confusion=True)


class TabularMLP(nn.Module):
    """Batch-normalised inputs -> ``hidden`` ReLU layers -> log-softmax over ``classes``."""

    def __init__(self, features: int, hidden: list[int], classes: int, dropout: float = 0.1):
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm1d(features)]  # standardises the raw columns
        width = features
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        layers += [nn.Linear(width, classes), nn.LogSoftmax(dim=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def tabular_mlp(config: dict[str, Any]) -> dict[str, Any]:
    """Train :class:`TabularMLP` on the job's ``torch.data`` shards; return metrics on the
    held-out ``validation`` rows (the job's test split).

    ``config``: ``target`` (an integer class column, required), ``features`` (default:
    every column of ``torch.data`` but the target),
    ``classes`` (2), ``hidden`` ([64, 32]), ``epochs`` (10), ``lr`` (0.001),
    ``batch_size`` per worker (256), ``seed`` (0).
    """
    session = TrainSession(config)
    if "target" not in config or "features" not in config:
        raise ValueError("tabular_mlp needs config.target (the class column) and a "
                         "torch.data table (config.features defaults to its other columns)")
    features, target = list(config["features"]), config["target"]
    classes = int(config.get("classes", 2))
    batch_size = int(config.get("batch_size", 256))
    model = session.prepare_model(TabularMLP(len(features), list(config.get("hidden", [64, 32])),
                                             classes, float(config.get("dropout", 0.1))))
    optimizer = torch.optim.Adam(model.parameters(), lr=float(config.get("lr", 0.001)))
    loss_fn = nn.NLLLoss()
    train = session.shard("train")
    try:
        held_out = session.shard("validation")
    except KeyError:
        raise ValueError("tabular_mlp evaluates on held-out rows: set torch.data.validation "
                         "above 0") from None

    def batches(shard):
        return session.tabular_batches(shard, batch_size, features, target)

    def training_batches():
        # a last batch of one row would break BatchNorm's statistics; the shards are of
        # equal size, so every worker leaves out the same step. (Dropping every incomplete
        # batch would leave a worker whose share is below batch_size nothing to train on.)
        return ((x, y) for x, y in batches(train) if len(y) > 1)

    example = torch.zeros(2, len(features))
    for _epoch in session.epochs(model, optimizer):
        stats = session.train_epoch(model, training_batches(), optimizer, loss_fn)
        stats.update(session.evaluate(model, batches(held_out), loss_fn, num_classes=classes))
        session.report(stats, model, optimizer, export_input=example)
    return session.evaluate(model, batches(held_out), loss_fn, num_classes=classes,
                            prefix="test_", confusion=True)
