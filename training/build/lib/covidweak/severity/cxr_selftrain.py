"""Progressive self-training schedule of Kim et al. (Sec. 2.3, Fig. 2 and Sec. 4).

The teacher trained on the labelled set for ``first_step`` updates labels the first part
of the unlabelled set; a student (the teacher's own weights, trained on) learns from true
and pseudo labels; every ``every`` updates the student becomes the teacher, which labels the
pool again and the next part joins. The paper: 12,000 updates, unlabelled data joining
after every 2,000 (five increments at 2,000 ... 10,000); the "one step" control adds all
of it at 2,000. Which unlabelled samples join when is fixed by a seeded permutation, so a
resumed run sees the same pool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MODES = ("none", "progressive", "one-step")
FIRST_STEP = 2000
"""Kim et al., Sec. 4: 2,000 labelled-only updates before unlabelled data joins."""
EVERY = 2000
"""Kim et al., Sec. 4: unlabelled data grows after every 2,000 of the 12,000 updates."""
INCREMENTS = 5
"""Additions at 2,000, 4,000, 6,000, 8,000 and 10,000 updates (Sec. 4)."""


@dataclass(frozen=True)
class SelfTrainSchedule:
    """Which of ``unlabelled`` samples (indices 0..unlabelled-1) are in the pool at an update."""

    unlabelled: int
    mode: str = "progressive"
    first_step: int = FIRST_STEP
    every: int = EVERY
    increments: int = INCREMENTS
    seed: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"self-training mode '{self.mode}': use one of {', '.join(MODES)}")
        if self.first_step < 0 or self.every < 1 or self.increments < 1:
            raise ValueError("first_step >= 0, every >= 1 and increments >= 1 are required")

    def stage(self, step: int) -> int:
        """0 before any unlabelled data, then 1, 2, ... each time the teacher changes (update ``step``, from 0)."""
        if self.mode == "none" or self.unlabelled == 0 or step < self.first_step:
            return 0
        if self.mode == "one-step":
            return 1
        return min(1 + (step - self.first_step) // self.every, self.increments)

    def count(self, stage: int) -> int:
        """Unlabelled samples in the pool at ``stage``: ceil(stage / increments) of them, all at once for one-step."""
        if stage == 0:
            return 0
        if self.mode == "one-step":
            return self.unlabelled
        return math.ceil(self.unlabelled * stage / self.increments)

    def order(self) -> np.ndarray:
        """The fixed order (a permutation of 0..unlabelled-1) in which unlabelled samples join."""
        return np.random.default_rng([self.seed, 2]).permutation(self.unlabelled)

    def pool(self, step: int) -> np.ndarray:
        """Indices of the unlabelled samples trained on at update ``step`` (sorted)."""
        return np.sort(self.order()[:self.count(self.stage(step))])
