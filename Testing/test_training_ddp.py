"""Two gloo processes on loopback reach the weights of one process with the same global batch."""

from __future__ import annotations

import os
import socket

import pytest
import torch

from covidweak.training.checkpoint import load_checkpoint
from covidweak.training.session import train

SETTINGS = ["model.channels=[4, 8]", "model.num_res_units=1", "preprocess.size=32", "batch_size=4", "epochs=2",
            "optim.name=sgd", "optim.lr=0.1", "accumulate=2"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rank(rank: int, port: int, data, out) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2")
    torch.set_num_threads(1)
    train("cxr-lungs", data, out, overrides=SETTINGS, device="cpu")


@pytest.mark.slow
def test_two_processes_match_one(phantom_dir, tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_rank, args=(_free_port(), phantom_dir, tmp_path / "ddp"), nprocs=2, join=True)
    train("cxr-lungs", phantom_dir, tmp_path / "single", overrides=SETTINGS, device="cpu")
    ddp = load_checkpoint(tmp_path / "ddp/checkpoints/last.pt", "cxr-lungs")
    single = load_checkpoint(tmp_path / "single/checkpoints/last.pt", "cxr-lungs")
    assert ddp["position"] == single["position"] and ddp["position"]["step"] > 0
    for name, tensor in single["model"].items():
        assert torch.allclose(ddp["model"][name], tensor, atol=1e-5), name
