"""Colours of lesion clusters and of the t-SNE plot's two series."""

from __future__ import annotations

CLUSTER_COLORS = ((0.90, 0.30, 0.20), (0.20, 0.60, 0.90), (0.30, 0.75, 0.35), (0.95, 0.70, 0.10),
                  (0.65, 0.40, 0.85), (0.10, 0.75, 0.75), (0.90, 0.45, 0.70), (0.55, 0.45, 0.30))
"""Distinct hues, cycled when a model has more clusters than colours."""
LIBRARY_COLOR = (0.65, 0.65, 0.65)
"""Library lesions in grey, so the current case's lesions (in their cluster colours' first hue) stand out."""
CASE_COLOR = (0.85, 0.10, 0.10)
QUERY_VIEW, MATCH_VIEW = "Red", "Yellow"
"""Slicer's side-by-side layout shows these two slice views: query left, similar case right."""


def cluster_color(cluster: int) -> tuple[float, float, float]:
    return CLUSTER_COLORS[int(cluster) % len(CLUSTER_COLORS)]


def lesion_segment_name(lesion: dict) -> str:
    return f"Lesion {lesion['lesion_id']} (cluster {lesion['cluster']})"
