"""Branching trees (pulmonary arteries, veins, bronchi) grown by territory splitting.

Each branch owns a set of sample points of the lung (its territory). It runs from
its parent's end toward the territory's centroid, then splits the territory in two
along its longest axis and hands one half to each child. The result fills the lung
evenly like a real perfusion tree. Child radii follow Murray's law with flow
proportional to territory size: r^3 = r1^3 + r2^3, r_i^3 = r^3 n_i / n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Tree:
    """nodes: (n, 3) physical mm; parent: (n,) index of each node's parent (-1 for the root);
    radius: (n,) mm of the branch ending at each node (root: the trunk radius)."""

    nodes: np.ndarray
    parent: np.ndarray
    radius: np.ndarray

    def segments(self, min_radius: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p0 (m,3), p1 (m,3), radius (m,)) for the branches thicker than ``min_radius``."""
        keep = (self.parent >= 0) & (self.radius >= min_radius)
        return self.nodes[self.parent[keep]], self.nodes[keep], self.radius[keep]

    def offset(self, direction: np.ndarray, gap: float, radius_scale: float) -> "Tree":
        """A companion tree shifted sideways node by node (bronchus beside its artery).

        Each node moves by (r + radius_scale * r + gap) along ``direction`` so the two
        tubes touch but do not overlap, and joints stay continuous.
        """
        unit = np.asarray(direction, dtype=np.float64)
        unit = unit / np.linalg.norm(unit)
        shift = (self.radius * (1 + radius_scale) + gap)[:, None] * unit
        return Tree(self.nodes + shift, self.parent.copy(), self.radius * radius_scale)


def grow_tree(
    rng: np.random.Generator,
    root: np.ndarray,
    territory: np.ndarray,
    root_radius: float,
    min_points: int = 2,
    min_radius: float = 0.4,
) -> Tree:
    """Grow a tree from ``root`` (3,) mm into ``territory`` (k, 3) mm points of one lung.

    Grown one generation at a time, all branches of a generation together: each
    branch's territory is a contiguous run of ``order``, so per-branch centroids,
    covariances and splits are segmented array operations instead of a Python loop
    over hundreds of branches.
    """
    territory = np.asarray(territory, dtype=np.float64)
    nodes = [np.asarray(root, dtype=np.float64)[None]]
    parents = [np.array([-1])]
    radii = [np.array([float(root_radius)])]
    count = 1
    order = np.arange(len(territory))
    parent = np.array([0])  # per growing branch: node it starts from, territory size, radius
    size = np.array([len(territory)])
    radius = np.array([float(root_radius)])
    depth = 0
    while len(parent):
        k = len(parent)
        start = np.cumsum(size) - size
        gid = np.repeat(np.arange(k), size)
        pts = territory[order]
        centre = np.add.reduceat(pts, start, axis=0) / size[:, None]
        base = np.concatenate(nodes)[parent]
        terminal = (size <= min_points) | (radius < min_radius)
        # A terminal branch reaches for its farthest point so the tree ends near the pleura.
        far = pts[np.lexsort((((pts - base[gid]) ** 2).sum(axis=1), gid))[start + size - 1]]
        frac = rng.uniform(*((0.3, 0.5) if depth else (0.15, 0.25)), size=k)
        tip = np.where(terminal[:, None], 0.5 * (centre + far), base + frac[:, None] * (centre - base))
        nodes.append(tip)
        parents.append(parent)
        radii.append(radius)
        here = count + np.arange(k)
        count += k
        # Split each territory in two along its longest axis.
        centred = pts - centre[gid]
        cov = np.add.reduceat(centred[:, :, None] * centred[:, None, :], start, axis=0)
        axis = np.linalg.eigh(cov)[1][:, :, -1]
        proj = (centred * axis[gid]).sum(axis=1)
        order = order[np.lexsort((proj, gid))]
        cut = np.clip(size // 2 + rng.integers((-size) // 8, size // 8 + 1), 1, np.maximum(size - 1, 1))
        grow = ~terminal
        order = order[grow[gid]]
        halves = np.stack([cut[grow], size[grow] - cut[grow]], axis=1)
        parent = np.repeat(here[grow], 2)
        radius = (radius[grow][:, None] * (halves / size[grow][:, None]) ** (1 / 3)).ravel()
        size = halves.ravel()
        depth += 1
    return Tree(np.concatenate(nodes), np.concatenate(parents), np.concatenate(radii))
