"""Checkpoint writes survive SIGKILL mid-save: the file always holds a complete checkpoint."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from covidweak.training.checkpoint import atomic_save, rng_state, set_rng_state

SAVER = """
import sys, torch
from covidweak.training.checkpoint import atomic_save
generation = 0
while True:
    generation += 1
    atomic_save({"generation": generation, "weights": torch.full((2_000_000,), float(generation))}, sys.argv[1])
    print(generation, flush=True)
"""


@pytest.mark.slow
def test_sigkill_during_save_leaves_the_previous_checkpoint_loadable(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save({"generation": 0, "weights": torch.zeros(2_000_000)}, path)
    rng = random.Random(3)
    for _ in range(3):
        saver = subprocess.Popen([sys.executable, "-c", SAVER, str(path)], stdout=subprocess.PIPE, text=True)
        saver.stdout.readline()  # one save done: the next one is under way
        time.sleep(rng.uniform(0.0, 0.15))
        saver.send_signal(signal.SIGKILL)
        saver.wait()
        saver.stdout.close()
        payload = torch.load(path, weights_only=True)
        assert torch.all(payload["weights"] == payload["generation"])
    # A killed writer cannot delete its temporary file; only such hidden files may remain.
    assert all(p.startswith(".last.pt.") and p.endswith(".tmp") for p in os.listdir(tmp_path) if p != "last.pt")


def test_rng_state_round_trips_through_a_weights_only_load(tmp_path):
    import numpy as np

    atomic_save({"rng": rng_state()}, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1))
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    assert (random.random(), np.random.rand()) == expected[:2] and torch.equal(torch.rand(1), expected[2])
