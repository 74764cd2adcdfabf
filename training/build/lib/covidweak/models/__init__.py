"""Networks of the weakly supervised lesion segmentation: ResNet-38, CAM, SEAM (+NAM inputs), multi-scale CAM."""

from .cam import CAMNet, CAMOutput, transfer_cam_weights
from .mscam import MultiScaleCAM, MultiScaleCAMOutput
from .probability import cam_to_probability
from .resnet38 import LIGHT, PAPER, ResNet38, ResNet38Config, ResNet38Features, config_by_name
from .seam import SEAM, SEAMBranch, SEAMOutput

__all__ = [
    "CAMNet", "CAMOutput", "LIGHT", "MultiScaleCAM", "MultiScaleCAMOutput", "PAPER", "ResNet38",
    "ResNet38Config", "ResNet38Features", "SEAM", "SEAMBranch", "SEAMOutput", "cam_to_probability",
    "config_by_name", "transfer_cam_weights",
]

from .factory import METHODS, build_model, lesion_logits  # noqa: E402  (after the classes it builds)
from .weights import LoadedModel, load_lesion_model, load_weights, save_weights  # noqa: E402

__all__ += ["METHODS", "LoadedModel", "build_model", "lesion_logits", "load_lesion_model", "load_weights",
            "save_weights"]
