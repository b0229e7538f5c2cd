"""num_gpus > 1: one worker process per device through torch.multiprocessing (NCCL on GPU, gloo on CPU)."""

from __future__ import annotations

import copy
import os
import socket
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from focoos.errors import FocoosError
from focoos.ports import ModelInfo, TrainerArgs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world: int, port: int, network: Any, info: ModelInfo, args: TrainerArgs, data_train: Any,
            data_val: Any, dataset_name: str | None, hooks: tuple = ()) -> None:
    from .trainer import Trainer

    use_cuda = torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(rank)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group("nccl" if use_cuda else "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    # mp.spawn hands every worker the SAME shared-memory tensors: without a private copy, each
    # rank's optimizer would step the one set of weights and the run would take world-size steps.
    network = copy.deepcopy(network)
    try:
        trainer = Trainer(network, info, args, data_train, data_val, rank=rank, world=world, hooks=hooks)
        metrics = trainer.run()
        if rank == 0:
            trainer.write_outputs(metrics, dataset_name)
    finally:
        dist.destroy_process_group()


def launch(network: Any, info: ModelInfo, args: TrainerArgs, data_train: Any, data_val: Any,
           dataset_name: str | None, hooks: tuple = ()) -> None:
    """Run args.num_gpus workers; rank 0 writes the run folder (and runs the hooks) like a single process."""
    world = args.num_gpus
    if torch.cuda.is_available() and torch.cuda.device_count() < world:
        raise FocoosError(f"num_gpus={world} but only {torch.cuda.device_count()} CUDA devices are visible")
    if args.batch_size % world:
        raise FocoosError(f"batch_size={args.batch_size} must be divisible by num_gpus={world}")
    mp.spawn(_worker, args=(world, _free_port(), network, info, args, data_train, data_val, dataset_name, hooks),
             nprocs=world, join=True)
