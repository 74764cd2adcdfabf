"""The package's layers, read from the import statements of every file (top level and inside functions).

* the core (``covidweak`` outside the packages below) needs neither Slicer nor training code:
  no MRML, vtk or Qt, no ``covidweak.slicer``, ``covidweak.training`` or command-line front end;
* ``covidweak.training`` trains what the core defines and never needs Slicer;
* ``covidweak.slicer`` (MRML, panel, runner, child process) never needs training code; it may start
  the command line, which is what its child process runs;
* the extension's packages, the modules' Logics (``<Module>Lib``) and the headless batch
  (``COVIDBatchLib``), use the core and the Slicer layer, never training code or the commands.

The command line (``covidweak.cli``, ``covidweak.commands``, ``covidweak.demo``) is the front end
and may use every layer of ``covidweak``. No part of ``covidweak`` imports the extension's packages:
the batch joins the command line through an entry point (the repository's pyproject.toml).
"""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "training" / "covidweak"
FRONT_END = ("covidweak.cli", "covidweak.__main__", "covidweak.commands", "covidweak.demo")
SLICER_APP = ("slicer", "vtk", "qt", "ctk", "PySide6", "PyQt5", "mrml", "slicer_core")
EXTENSION = ("COVIDWeakSegLib", "COVIDSeverityLib", "COVIDSimilarCaseLib", "COVIDBatchLib")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved to absolute names."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return names


def within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def layer(name: str) -> str:
    if within(name, FRONT_END):
        return "front end"
    if within(name, ("covidweak.slicer",)):
        return "slicer"
    if within(name, ("covidweak.training",)):
        return "training"
    return "core"


FORBIDDEN = {
    "core": ("covidweak.slicer", "covidweak.training", *FRONT_END, *SLICER_APP, *EXTENSION),
    "training": ("covidweak.slicer", *FRONT_END, *SLICER_APP, *EXTENSION),
    # The Slicer layer may start the command line (``covidweak.cli``): its child process runs it.
    "slicer": ("covidweak.training", "covidweak.commands", "covidweak.demo", *EXTENSION),
    "front end": EXTENSION,
}


def package_files():
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", package_files(), ids=lambda p: module_name(p))
def test_each_package_module_imports_only_what_its_layer_allows(path):
    own = layer(module_name(path))
    broken = sorted(n for n in imported_modules(path) if within(n, FORBIDDEN[own]))
    assert not broken, f"{module_name(path)} ({own} layer) imports {broken}"


EXTENSION_FILES = sorted([*ROOT.glob("COVID*/COVID*Lib/*.py"), *ROOT.glob("Batch/COVIDBatchLib/*.py")])


@pytest.mark.parametrize("path", EXTENSION_FILES, ids=lambda p: p.parent.name + "." + p.stem)
def test_the_extensions_packages_never_import_training_or_the_commands(path):
    broken = sorted(n for n in imported_modules_outside(path) if within(n, ("covidweak.training", *FRONT_END)))
    assert not broken, f"{path.relative_to(ROOT)} imports {broken}"


def imported_modules_outside(path: Path) -> set[str]:
    """Absolute imports of a file outside the package (relative ones stay inside its own package)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add(node.module)
    return names


def test_the_checker_sees_imports_inside_functions_and_relative_ones(tmp_path):
    source = PACKAGE / "weakseg" / "lesions.py"
    assert "covidweak.io.ras" in imported_modules(source)
    assert layer("covidweak.slicer.runner") == "slicer" and layer("covidweak.training.loop") == "training"
    assert layer("covidweak.commands.train") == "front end" and layer("covidweak.weakseg.infer") == "core"


# ------------------------------------------------------------------ a plain `pip install covidweak`


def hide(monkeypatch, *names):
    """Make ``import name`` fail as it does when the package is not installed."""
    for name in names:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, name, None)


def test_training_without_the_train_extra_says_which_extra_in_one_line(monkeypatch, tmp_path, capsys):
    from covidweak.cli import EXIT_USER_ERROR, main

    hide(monkeypatch, "yaml")
    status = main(["train", "cam-pretrain", "--data", str(tmp_path), "--out", str(tmp_path / "run")])
    error = capsys.readouterr().err.strip()
    assert status == EXIT_USER_ERROR and len(error.splitlines()) == 1
    assert "pip install 'covidweak[train]'" in error and "Traceback" not in error


def test_batch_without_slicer_core_says_which_extra_before_any_case_runs(monkeypatch, tmp_path, capsys):
    from covidweak.cli import EXIT_USER_ERROR, main

    hide(monkeypatch, "slicer")
    (tmp_path / "cts").mkdir()
    status = main(["batch", "--input", str(tmp_path / "cts"), "--output", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip()
    assert status == EXIT_USER_ERROR and "pip install 'covidweak[slicer]'" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_inference_dependencies_are_what_slicer_installs_and_exclude_training_ones():
    from covidweak.slicer.deps import PIP_REQUIREMENTS

    names = {requirement.split("=")[0].lower() for requirement in PIP_REQUIREMENTS}
    assert not names & {"pyyaml", "tensorboard", "slicer-core", "pytest"}


def test_the_command_line_builds_without_the_training_package_slicer_leaves_out(monkeypatch, capsys):
    """The extension installs covidweak without covidweak.training (CMakeLists.txt); the child process
    still parses every command, and ``train`` names the extra."""
    from covidweak.cli import EXIT_USER_ERROR, build_parser, main

    hide(monkeypatch, "covidweak.training")
    assert build_parser().parse_args(["segment", "ct.nii.gz", "--out", "x"]).command == "segment"
    assert main(["train", "cam-pretrain", "--data", "d", "--out", "o"]) == EXIT_USER_ERROR
    assert "pip install 'covidweak[train]'" in capsys.readouterr().err


def test_batch_without_the_extensions_distribution_says_how_to_get_it(monkeypatch, tmp_path, capsys):
    """``covidweak batch`` comes from the extension through an entry point; a plain covidweak names the fix."""
    import importlib.metadata

    from covidweak.cli import EXIT_USER_ERROR, main

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [])
    status = main(["batch", "--input", str(tmp_path), "--output", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip()
    assert status == EXIT_USER_ERROR and len(error.splitlines()) == 1
    assert "pip install -e . in the SlicerCOVIDWeak repository" in error and not (tmp_path / "out").exists()
