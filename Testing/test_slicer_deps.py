"""The Slicer dependency installer: pure decisions, and side effects through injected callables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from covidweak.slicer import deps as slicer_deps
from covidweak.slicer.deps import (
    PIP_REQUIREMENTS,
    TORCH_REQUIREMENT,
    DependencyError,
    constraints_text,
    ensure_dependencies,
    normalize_name,
    parse_requirement,
    plan_install,
    satisfies,
)

PYPROJECT = Path(__file__).resolve().parents[1] / "training" / "pyproject.toml"

SLICER_BASE = {"SimpleITK": "2.5.7", "numpy": "2.4.6", "packaging": "24.2", "torch": "2.13.0+cpu"}
"""What a recent Slicer with the PyTorch extension already has."""


def everything_installed() -> dict[str, str]:
    versions = dict(SLICER_BASE)
    for requirement in PIP_REQUIREMENTS:
        name, spec = parse_requirement(requirement)
        versions[name] = spec.removeprefix("==")
    return versions


def pyproject_dependencies() -> list[str]:
    text = PYPROJECT.read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: read the one array this test needs
        block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
        return re.findall(r'^\s*"([^"]+)",?\s*(?:#.*)?$', block, re.M)
    return tomllib.loads(text)["project"]["dependencies"]


def test_pip_list_is_pyproject_minus_torch_and_slicer_provided():
    skipped = {"torch"} | set(slicer_deps.SLICER_PROVIDED)
    expected = [req for req in pyproject_dependencies() if normalize_name(parse_requirement(req)[0]) not in skipped]
    assert list(PIP_REQUIREMENTS) == expected
    assert not any(normalize_name(parse_requirement(req)[0]) == "simpleitk" for req in PIP_REQUIREMENTS)


def test_torch_requirement_matches_pyproject():
    torch_lines = [req for req in pyproject_dependencies() if parse_requirement(req)[0] == "torch"]
    assert torch_lines == [TORCH_REQUIREMENT]


@pytest.mark.parametrize(
    "version, spec, expected",
    [
        ("2.4.6", "==2.4.6", True),
        ("2.4.6", "==2.4.7", False),
        ("2.13.0+cu121", ">=2.11,<2.15", True),
        ("2.10.1", ">=2.11,<2.15", False),
        ("2.15.0", ">=2.11,<2.15", False),
        ("1.17", "==1.17.0", True),
        ("0.26.0rc1", ">=0.26.0", False),
        ("0.26.0", ">0.26.0rc1", True),
        ("1.9.1", "!=1.9.1", False),
        ("2.2.5", "~=2.2.1", True),
        ("2.3.0", "~=2.2.1", False),
        ("10.0", ">=9.5", True),
    ],
)
def test_version_comparator(version, spec, expected):
    assert satisfies(version, spec) is expected


def test_bad_versions_are_rejected():
    with pytest.raises(ValueError):
        satisfies("not-a-version", ">=1")
    with pytest.raises(ValueError):
        satisfies("1.0", "=>1")


def test_fresh_slicer_installs_every_pip_requirement_and_keeps_its_own():
    plan = plan_install(SLICER_BASE)
    assert plan.install == list(PIP_REQUIREMENTS)
    assert plan.torch is None
    assert plan.slicer_provided == {"simpleitk": "2.5.7", "numpy": "2.4.6", "packaging": "24.2"}
    assert not plan.problems and not plan.replace


def test_everything_present_means_nothing_to_do():
    plan = plan_install(everything_installed())
    assert plan.nothing_to_do
    assert set(plan.satisfied) == {normalize_name(parse_requirement(r)[0]) for r in PIP_REQUIREMENTS}


def test_names_match_regardless_of_spelling():
    installed = everything_installed()
    installed["Scikit_Image"] = installed.pop("scikit-image")
    installed["Faiss_CPU"] = installed.pop("faiss-cpu")
    assert plan_install(installed).nothing_to_do


def test_wrong_version_is_reinstalled():
    installed = everything_installed()
    installed["scipy"] = "1.11.0"
    plan = plan_install(installed)
    assert plan.install == ["scipy==1.17.1"]
    assert plan.replace == {"scipy": "1.11.0"}


def test_simpleitk_is_never_installed_even_when_old_or_missing():
    installed = everything_installed()
    installed["SimpleITK"] = "1.2.0"
    plan = plan_install(installed)
    assert not any("simpleitk" in req.lower() for req in plan.install)
    assert plan.problems == ["Slicer's simpleitk 1.2.0 is too old (needs >=2.0)"]
    del installed["SimpleITK"]
    assert "Slicer's simpleitk is missing" in plan_install(installed).problems


def test_torch_is_routed_to_pytorchutils():
    installed = everything_installed()
    del installed["torch"]
    plan = plan_install(installed)
    assert plan.torch == TORCH_REQUIREMENT
    assert not any(parse_requirement(req)[0] == "torch" for req in plan.install)
    installed["torch"] = "2.4.1"
    assert plan_install(installed).torch == TORCH_REQUIREMENT


def test_old_python_is_a_problem():
    assert plan_install(everything_installed(), python_version=(3, 9)).problems


def test_constraints_pin_installed_protected_packages():
    text = constraints_text({"SimpleITK": "2.5.7", "numpy": "2.4.6", "torch": "2.13.0+cpu", "scipy": "1.0"})
    assert text.splitlines() == ["simpleitk==2.5.7", "numpy==2.4.6", "torch==2.13.0+cpu"]
    assert constraints_text({}) == ""


class Recorder:
    """Injected side effects that record what the installer asked for."""

    def __init__(self, installed: dict[str, str], answer: bool = True):
        self.versions = dict(installed)
        self.answer = answer
        self.pip_calls: list[list[str]] = []
        self.constraints_seen: list[str] = []
        self.torch_calls: list[str] = []
        self.questions: list[str] = []

    def installed(self):
        return dict(self.versions)

    def confirm(self, message):
        self.questions.append(message)
        return self.answer

    def pip_install(self, args):
        self.pip_calls.append(args)
        self.constraints_seen.append(Path(args[args.index("-c") + 1]).read_text())
        for requirement in args[: args.index("-c")]:
            name, spec = parse_requirement(requirement)
            self.versions[name] = spec.removeprefix("==")

    def torch_installer(self, requirement):
        self.torch_calls.append(requirement)
        self.versions["torch"] = "2.14.0+cu126"

    def run(self):
        return ensure_dependencies(pip_install=self.pip_install, torch_installer=self.torch_installer,
                                   confirm=self.confirm, installed=self.installed)


def test_ensure_installs_torch_first_then_pins_it_for_pip():
    rec = Recorder({"SimpleITK": "2.5.7", "numpy": "2.4.6", "packaging": "24.2"})
    plan = rec.run()
    assert rec.torch_calls == [TORCH_REQUIREMENT]
    assert len(rec.questions) == 1 and "PyTorch" in rec.questions[0]
    assert rec.pip_calls[0][: len(PIP_REQUIREMENTS)] == list(PIP_REQUIREMENTS)
    assert "torch==2.14.0+cu126" in rec.constraints_seen[0].splitlines()
    assert "simpleitk==2.5.7" in rec.constraints_seen[0].splitlines()
    assert plan.torch == TORCH_REQUIREMENT
    assert plan_install(rec.installed()).nothing_to_do


def test_ensure_removes_its_constraints_file():
    rec = Recorder(SLICER_BASE)
    rec.run()
    args = rec.pip_calls[0]
    assert not Path(args[args.index("-c") + 1]).exists()


def test_ensure_does_nothing_and_asks_nothing_when_satisfied():
    rec = Recorder(everything_installed())
    assert rec.run().nothing_to_do
    assert rec.questions == [] and rec.pip_calls == [] and rec.torch_calls == []


def test_declining_installs_nothing_and_says_how_to_recover():
    rec = Recorder(SLICER_BASE, answer=False)
    with pytest.raises(DependencyError, match="declined.*ensure_dependencies"):
        rec.run()
    assert rec.pip_calls == [] and rec.torch_calls == []


def test_unusable_slicer_packages_fail_before_asking():
    rec = Recorder({"numpy": "2.4.6"})
    with pytest.raises(DependencyError, match="simpleitk is missing"):
        rec.run()
    assert rec.questions == [] and rec.pip_calls == []


def test_pip_failure_becomes_a_one_line_dependency_error():
    def broken_pip(args):
        raise RuntimeError("no network")

    with pytest.raises(DependencyError, match="no network") as info:
        ensure_dependencies(pip_install=broken_pip, torch_installer=lambda r: None, confirm=lambda m: True,
                            installed=lambda: dict(SLICER_BASE))
    assert "\n" not in str(info.value)


def test_missing_pytorch_extension_names_the_fix(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "PyTorchUtils", None)
    with pytest.raises(DependencyError, match="PyTorch' extension"):
        slicer_deps._pytorchutils_install(TORCH_REQUIREMENT)


def test_installed_versions_reads_this_environment():
    versions = slicer_deps.installed_versions()
    assert satisfies(versions["numpy"], ">=1")
    assert "covidweak" in versions
