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
    """Grow a tree from ``root`` (3,) mm into ``territory`` (k, 3) mm points of one lung."""
    nodes = [np.asarray(root, dtype=np.float64)]
    parent = [-1]
    radius = [root_radius]
    stack = [(0, np.arange(len(territory)), root_radius, 0)]
    while stack:
        node, idx, r, depth = stack.pop()
        pts = territory[idx]
        centre = pts.mean(axis=0)
        start = nodes[node]
        if len(idx) <= min_points or r < min_radius:
            # Terminal branch: reach for the farthest point so the tree ends near the pleura.
            far = pts[np.argmax(np.linalg.norm(pts - start, axis=1))]
            nodes.append(0.5 * (centre + far))
            parent.append(node)
            radius.append(r)
            continue
        frac = rng.uniform(0.3, 0.5) if depth else rng.uniform(0.15, 0.25)
        nodes.append(start + frac * (centre - start))
        parent.append(node)
        radius.append(r)
        here = len(nodes) - 1
        centred = pts - centre
        axis = np.linalg.svd(centred, full_matrices=False)[2][0]
        proj = centred @ axis
        order = np.argsort(proj)
        cut = len(idx) // 2 + int(rng.integers(-len(idx) // 8, len(idx) // 8 + 1))
        cut = min(max(cut, 1), len(idx) - 1)
        for part in (idx[order[:cut]], idx[order[cut:]]):
            child_r = r * (len(part) / len(idx)) ** (1 / 3)
            stack.append((here, part, child_r, depth + 1))
    return Tree(np.array(nodes), np.array(parent), np.array(radius))
