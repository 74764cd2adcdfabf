"""Make covidweak's third-party dependencies available inside Slicer's Python.

Standard library only: the modules import this before anything else exists.

Three kinds of packages, decided by :func:`plan_install` without side effects:

* ``torch`` goes through the PyTorch extension (``PyTorchUtils``), which picks
  the CUDA/CPU build that fits the machine; plain pip would fetch a wrong one.
* Slicer's own SimpleITK and numpy are kept as they are. Slicer's SimpleITK
  carries Slicer-specific IO, and numpy is already loaded by Slicer itself, so
  replacing either breaks the running application. Their installed versions
  (and torch's) are pinned in a pip constraints file so no dependency can pull
  in a replacement.
* Everything else in :data:`PIP_REQUIREMENTS` is pip-installed when missing or
  at a different version.

:func:`ensure_dependencies` carries out a plan with injectable callables, so
the decisions are testable without Slicer.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..errors import CovidWeakError

PIP_REQUIREMENTS = (
    "scipy==1.17.1",
    "scikit-image==0.26.0",
    "scikit-learn==1.9.1",
    "monai==1.6.1",
    "einops==0.8.2",  # MONAI imports it optionally, but its TransformerBlock (the severity ViT) needs it
    "captum==0.9.0",
    "faiss-cpu==1.15.1",
    "pydicom==3.0.2",
    "highdicom==0.28.2",
    "nibabel==5.4.2",
    "tqdm==4.70.1",
    "pillow==13.0.0",
)
"""What pip installs into Slicer. Kept equal to pyproject's dependencies minus
torch and the Slicer-provided packages by a test, so the two never drift."""

TORCH_REQUIREMENT = "torch>=2.11,<2.15"
"""Handed to PyTorchUtils; the range matches pyproject (Slicer brings its own build)."""

SLICER_PROVIDED = {"simpleitk": ">=2.0", "numpy": ">=2.0", "packaging": ">=22"}
"""Packages Slicer ships and covidweak never installs, with the oldest versions it works with."""

PROTECTED = ("simpleitk", "numpy", "torch")
"""Packages pinned at their installed version while pip runs."""

PYTORCH_EXTENSION_HINT = "install the 'PyTorch' extension from the Extensions Manager and restart Slicer"


class DependencyError(CovidWeakError):
    """A dependency that could not be (or was not allowed to be) installed."""


# ---------------------------------------------------------------- versions


# The version logic below is ``packaging``'s, as pip's is. Slicer ships it; it is imported inside
# each function because this module is loaded before any dependency is checked.


def normalize_name(name: str) -> str:
    """PEP 503 name: case-insensitive, runs of ``-_.`` equal."""
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def satisfies(version: str, specifier: str) -> bool:
    """Whether ``version`` meets a PEP 440 specifier such as ``>=2.11,<2.15`` (``packaging``'s rules).

    A pre-release counts like any version (it sorts before its final release), and a local
    label (``+cpu``, ``+cu121``) is ignored when the specifier has none. Raises ValueError
    for a string that is not a version or a specifier.
    """
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        return SpecifierSet(specifier).contains(Version(version), prereleases=True)
    except (InvalidVersion, InvalidSpecifier) as error:
        raise ValueError(str(error)) from None


def parse_requirement(text: str) -> tuple[str, str]:
    """``"scikit-image==0.26.0"`` -> ``("scikit-image", "==0.26.0")``. No extras, markers or URLs."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        raise ValueError(f"unsupported requirement: {text!r}") from None
    if requirement.extras or requirement.marker or requirement.url:
        raise ValueError(f"unsupported requirement: {text!r}")
    return requirement.name, str(requirement.specifier)


# ---------------------------------------------------------------- decisions


@dataclass
class InstallPlan:
    """What :func:`ensure_dependencies` would do, decided from installed versions alone."""

    install: list[str] = field(default_factory=list)
    """Requirements pip must install (missing, or present at another version)."""
    replace: dict[str, str] = field(default_factory=dict)
    """Subset of ``install`` present at a wrong version: name -> installed version."""
    satisfied: dict[str, str] = field(default_factory=dict)
    """Already fine: name -> installed version."""
    slicer_provided: dict[str, str] = field(default_factory=dict)
    """Kept as Slicer ships them: name -> installed version."""
    torch: Optional[str] = None
    """Requirement to hand to PyTorchUtils, or None when torch already fits."""
    problems: list[str] = field(default_factory=list)
    """Slicer-provided packages that are missing or too old (cannot be fixed by installing)."""

    @property
    def nothing_to_do(self) -> bool:
        return not self.install and self.torch is None and not self.problems

    def describe(self) -> str:
        """The text shown when asking the user for permission."""
        lines = []
        if self.torch:
            lines.append(f"PyTorch ({self.torch}) through the PyTorch extension")
        if self.install:
            lines.append("pip packages: " + ", ".join(self.install))
        if self.slicer_provided:
            kept = ", ".join(f"{name} {version}" for name, version in sorted(self.slicer_provided.items()))
            lines.append(f"kept as Slicer ships them: {kept}")
        return "covidweak will install into Slicer's Python:\n" + "\n".join(lines) + "\nThis can take several minutes."


MINIMUM_PYTHON = (3, 10)


def plan_install(installed: dict[str, str], python_version: tuple = tuple(sys.version_info[:2])) -> InstallPlan:
    """Decide what to install given ``installed`` (distribution name -> version)."""
    have = {normalize_name(name): version for name, version in installed.items()}
    plan = InstallPlan()
    if tuple(python_version) < MINIMUM_PYTHON:
        plan.problems.append("Slicer's Python %d.%d is older than 3.10" % tuple(python_version))
    for name, minimum in SLICER_PROVIDED.items():
        if name not in have:
            plan.problems.append(f"Slicer's {name} is missing")
        elif not _safe_satisfies(have[name], minimum):
            plan.problems.append(f"Slicer's {name} {have[name]} is too old (needs {minimum})")
        else:
            plan.slicer_provided[name] = have[name]
    torch_name, torch_spec = parse_requirement(TORCH_REQUIREMENT)
    if not _safe_satisfies(have.get(torch_name), torch_spec):
        plan.torch = TORCH_REQUIREMENT
    for requirement in PIP_REQUIREMENTS:
        name, spec = parse_requirement(requirement)
        key = normalize_name(name)
        if key in SLICER_PROVIDED or key == torch_name:
            continue
        version = have.get(key)
        if _safe_satisfies(version, spec):
            plan.satisfied[key] = version
            continue
        plan.install.append(requirement)
        if version is not None:
            plan.replace[key] = version
    return plan


def _safe_satisfies(version: Optional[str], spec: str) -> bool:
    if version is None:
        return False
    try:
        return satisfies(version, spec)
    except ValueError:
        # An unparsable installed version (a local dev build) cannot be trusted to fit.
        return False


def constraints_text(installed: dict[str, str]) -> str:
    """pip constraints pinning the protected packages at their installed versions."""
    have = {normalize_name(name): version for name, version in installed.items()}
    lines = [f"{name}=={have[name]}" for name in PROTECTED if name in have]
    return "\n".join(lines) + ("\n" if lines else "")


# ---------------------------------------------------------------- side effects


def installed_versions() -> dict[str, str]:
    """Installed distributions of the running Python: normalized name -> version."""
    from importlib import metadata

    found = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            found.setdefault(normalize_name(name), dist.version)
    return found


def _slicer_pip_install(args: list[str]) -> None:
    import slicer.util

    slicer.util.pip_install(args)


def _slicer_confirm(message: str) -> bool:
    import slicer.util

    return bool(slicer.util.confirmOkCancelDisplay(message, windowTitle="covidweak dependencies"))


def _pytorchutils_install(requirement: str) -> None:
    try:
        import PyTorchUtils
    except ImportError:
        raise DependencyError(f"PyTorch is needed and the PyTorch extension is missing: {PYTORCH_EXTENSION_HINT}") from None
    _, spec = parse_requirement(requirement)
    # askConfirmation=False: the user already agreed to the whole plan in one dialog.
    if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False, torchVersionRequirement=spec) is None:
        raise DependencyError(f"PyTorch {spec} was not installed: install it from the PyTorch Utils module, then retry")


def ensure_dependencies(
    pip_install: Callable[[list[str]], None] = _slicer_pip_install,
    torch_installer: Callable[[str], None] = _pytorchutils_install,
    confirm: Callable[[str], bool] = _slicer_confirm,
    installed: Callable[[], dict[str, str]] = installed_versions,
    log: Callable[[str], None] = lambda message: None,
) -> InstallPlan:
    """Install what :func:`plan_install` asks for, after one confirmation; returns the plan.

    Raises :class:`DependencyError` when Slicer's own packages are unusable,
    when the user declines (then nothing is installed), or when a step fails.
    """
    plan = plan_install(installed())
    if plan.problems:
        raise DependencyError("; ".join(plan.problems) + ": install a newer Slicer release")
    if plan.nothing_to_do:
        return plan
    if not confirm(plan.describe()):
        raise DependencyError("installing covidweak's dependencies was declined: "
                              "the modules need them; reopen the module and accept, or run "
                              "covidweak.slicer.deps.ensure_dependencies() from the Python console")
    if plan.torch:
        log(f"Installing {plan.torch} through the PyTorch extension...")
        torch_installer(plan.torch)
    if plan.install:
        # Re-read: the torch step changed what must be pinned.
        pins = constraints_text(installed())
        handle, path = tempfile.mkstemp(prefix="covidweak-constraints-", suffix=".txt")
        try:
            with os.fdopen(handle, "w") as stream:
                stream.write(pins)
            log("Installing " + ", ".join(plan.install) + "...")
            try:
                pip_install(list(plan.install) + ["-c", path])
            except Exception as error:
                raise DependencyError(f"pip could not install covidweak's dependencies ({error}): "
                                      "check the network connection and the Python console log, then retry") from error
        finally:
            os.unlink(path)
    log("covidweak dependencies are installed.")
    return plan
