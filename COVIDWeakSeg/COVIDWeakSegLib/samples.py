"""Phantom chest CTs for Slicer's Sample Data module, generated on first use and cached.

Real COVID-19 CTs cannot be shipped with the extension, and a download would
need a server; the covidweak phantom makes a study in seconds with known
lesions, so it is generated the first time a user asks for it and read from
the cache afterwards.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

CATEGORY = "COVID-19 phantoms"


@dataclass(frozen=True)
class PhantomSample:
    name: str  # shown in Sample Data and used as the node name
    pattern: str  # covidweak.phantom pattern
    seed: int
    size: int = 256
    slices: int = 64

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.seed}-{self.size}x{self.slices}.nrrd"


SAMPLES = (
    PhantomSample("COVIDPhantomGGO", "covid", seed=3),
    PhantomSample("COVIDPhantomCAP", "cap", seed=4),
    PhantomSample("COVIDPhantomNormal", "normal", seed=5),
)


def default_cache_dir() -> Path:
    """``$COVIDWEAK_CACHE_DIR``, else ``<temp>/covidweak-samples`` (Slicer passes its own temporaryPath)."""
    return Path(os.environ.get("COVIDWEAK_CACHE_DIR") or Path(tempfile.gettempdir()) / "covidweak-samples")


def sample_by_name(name: str) -> PhantomSample:
    from covidweak.errors import InputError

    for sample in SAMPLES:
        if sample.name == name:
            return sample
    raise InputError(f"no phantom sample named '{name}': choose one of {', '.join(s.name for s in SAMPLES)}")


def sample_path(sample: PhantomSample, cache_dir=None) -> Path:
    """The sample's CT file, generated and written (atomically) when not cached yet."""
    import SimpleITK as sitk

    from covidweak.io.atomic import replacing
    from covidweak.phantom import PhantomConfig, generate_study

    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / sample.file_name
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    study = generate_study(sample.seed, 0, sample.pattern, config=PhantomConfig(size=sample.size, slices=sample.slices))
    with replacing(path, suffix=".nrrd") as temp:  # a half-written file never looks cached
        sitk.WriteImage(study.ct, str(temp), useCompression=True)
    return path
