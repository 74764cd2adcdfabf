"""Run a covidweak command or a probe with SEAM changed to the design of the authors' released code.

    python scripts/probes/authors_seam.py train seam --data ... --out ... [covidweak train arguments]
    python scripts/probes/authors_seam.py scripts/probes/relative_maps.py PHANTOM_DIR WEIGHTS.pt

The package reads Tang et al.'s text: PCM refines the CAM logits, NAM splits pixels by
sigmoid(D_l), inference thresholds sigmoid(D_l). The training code the authors published
(TangWen920812/M-SEAM-NAM, read for this probe, nothing taken from it) differs in three places,
which this probe patches in for the duration of one process, leaving the package untouched:

* the PCM refines the CAM after ReLU and per-image max normalisation, so D lies in [0, 1];
* NAM's T_fg / T_bg apply to D itself;
* a min-pooling term pushes the lowest quarter of each positive image's D towards 0.

Maps come out as logit(D), so the package's sigmoid gives D back. Measured on the
``--lesion-scale 2`` phantom in docs/status.md (COVIDWeakSeg).
"""

import runpy
import sys

import torch
from torch.nn import functional as F

from covidweak.losses import nam as nam_losses
from covidweak.losses.seam import normalise_map
from covidweak.models import seam as seam_model
from covidweak.training.tasks import weakseg as weakseg_tasks

MIN_POOL_FRACTION = 0.25  # the lowest quarter of the map, as the authors' min-pooling term
LOGIT_CLAMP = 1e-6


def refine_normalised(self, cam, image, b4, b5):
    """PCM on the normalised CAM: (N, C, h, w) logits -> D in [0, 1]."""
    n, c, h, w = cam.shape
    affinity = self.affinity(image, b4, b5)
    return (normalise_map(cam.detach()).reshape(n, c, h * w) @ affinity).reshape(n, c, h, w)


def refined_as_logits(self):
    return torch.logit(self.refined.clamp(LOGIT_CLAMP, 1 - LOGIT_CLAMP))


def groups_on_d(d_l, t_fg=nam_losses.T_FG, t_bg=nam_losses.T_BG):
    score = d_l.detach().float().amax(dim=1)
    return (score > t_fg).float(), (score < t_bg).float()


def min_pooling(d: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Mean of the lowest quarter of each positive image's D (N, C, h, w); present: (N, C, 1, 1)."""
    flat = (d * present).amax(dim=1).flatten(1)
    k = max(1, int(flat.shape[1] * MIN_POOL_FRACTION))
    return F.relu(torch.topk(flat, k, dim=1, largest=False).values).mean()


def with_min_pooling(package_loss):
    def loss(output, y, bag_size=None, **kwargs):
        terms = package_loss(output, y, bag_size=bag_size, **kwargs)
        slice_y = y if bag_size is None else y.reshape(y.shape[0], -1).repeat_interleave(bag_size, dim=0)
        present = slice_y.float().reshape(slice_y.shape[0], -1)[:, :, None, None]
        extra = (min_pooling(output.d_l, present) + min_pooling(output.d_s, present)) / 2
        return terms._replace(total=terms.total + extra)
    return loss


def patch() -> None:
    seam_model.PixelCorrelationModule.forward = refine_normalised
    seam_model.SEAMBranch.lesion_logits = property(refined_as_logits)
    nam_losses.pixel_groups = groups_on_d
    weakseg_tasks.m_seam_nam_loss = with_min_pooling(weakseg_tasks.m_seam_nam_loss)


if __name__ == "__main__":
    patch()
    if sys.argv[1].endswith(".py"):
        sys.argv = sys.argv[1:]
        runpy.run_path(sys.argv[0], run_name="__main__")
    else:
        from covidweak.cli import main

        sys.exit(main(sys.argv[1:]))
