"""The plain-PyTorch side of bench_train.py: the digits CNN trained with torch.distributed.

Started by ``torchrun --standalone --nproc_per_node=N plain_ddp.py`` it is N-process DDP
over gloo; started by plain ``python`` it is a single-process loop. The model, data,
splits, optimiser, per-process batch size and per-epoch validation are those of the
shipyard job (``shipyard.train.examples``), written without shipyard or Ray: a
DistributedSampler, DDP, a validation pass whose counts are all-reduced.

Prints one JSON document (rank 0): per-epoch train samples/s, validation accuracy and
seconds since the process started, and the wall time at which training began.
"""

from __future__ import annotations

import argparse
import json
import os
import time

STARTED = time.time()

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, Subset  # noqa: E402
from torch.utils.data.distributed import DistributedSampler  # noqa: E402

from shipyard.train.examples import DigitsCNN, digits_splits  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    torch.manual_seed(args.seed)

    splits = digits_splits(seed=args.seed)
    model = DigitsCNN()
    if distributed:
        model = nn.parallel.DistributedDataParallel(model)
    sampler = DistributedSampler(splits["train"], shuffle=True) if distributed else None
    loader = DataLoader(splits["train"], batch_size=args.batch_size, sampler=sampler,
                        shuffle=sampler is None)
    validation = Subset(splits["validation"], range(rank, len(splits["validation"]), world))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.NLLLoss()
    training_started = time.time()
    epochs = []
    for epoch in range(args.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        seen = torch.zeros(1, dtype=torch.float64)
        began = time.perf_counter()
        for x, y in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            seen += y.shape[0]
        seconds = time.perf_counter() - began
        model.eval()
        counts = torch.zeros(2, dtype=torch.float64)
        with torch.no_grad():
            for x, y in DataLoader(validation, batch_size=256):
                counts += torch.tensor([(model(x).argmax(1) == y).sum().item(), len(y)])
        if distributed:
            dist.all_reduce(seen)
            dist.all_reduce(counts)
        epochs.append({"epoch": epoch, "samples_per_s": float(seen) / seconds,
                       "val_accuracy": float(counts[0] / counts[1]),
                       "elapsed_s": time.time() - STARTED})
    if rank == 0:
        print(json.dumps({"world_size": world, "started_at": STARTED,
                          "training_started_s": training_started - STARTED, "epochs": epochs}))
    if distributed:
        # both ranks leave together: a rank tearing gloo down while the other still
        # talks to it aborted now and then ("terminate called without an active exception")
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
