"""The Slicer extension's build files, module files and their wiring, checked without building.

A file missing from a module's CMakeLists is missing from the packaged
extension, and a typo in ``self.ui.<name>`` only shows up when a user opens the
module; both are caught here.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("COVIDWeakSeg", "COVIDSeverity", "COVIDSimilarCase")
TOP = (ROOT / "CMakeLists.txt").read_text()

EARLY_IMPORTED = ("__init__", "errors", "progress", "slicer/__init__", "slicer/deps", "slicer/parameters", "slicer/panel",
                  "slicer/runner")
"""covidweak modules (paths under training/covidweak, no .py) the Slicer modules import before
dependencies are installed."""


def cmake_list(text: str, variable: str, module: str) -> list[str]:
    match = re.search(rf"set\(\s*{variable}\s+(.*?)\)", text, re.S)
    assert match, f"{variable} not set"
    return [item.replace("${MODULE_NAME}", module) for item in match.group(1).split()]


def cmake_set(name: str) -> str:
    match = re.search(rf'set\({name}\s+"([^"]*)"\)', TOP)
    assert match, f"{name} missing from the top-level CMakeLists.txt"
    return match.group(1)


def module_files(module: str) -> tuple[set[str], set[str]]:
    folder = ROOT / module
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    return {f for f in files if f.endswith(".py")}, {f for f in files if f.startswith("Resources/")}


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def class_def(tree: ast.Module, name: str) -> ast.ClassDef:
    found = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name]
    assert found, f"class {name} missing"
    return found[0]


def parent_assignments(cls: ast.ClassDef) -> dict[str, ast.AST]:
    """``self.parent.<attr> = value`` statements of a Module class."""
    out = {}
    for node in ast.walk(cls):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute)
                        and target.value.attr == "parent"):
                    out[target.attr] = node.value
    return out


def imported_modules(tree: ast.Module, top_level_only: bool) -> set[str]:
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
    return names


# ---------------------------------------------------------------- top level


def test_top_level_is_a_slicer_extension():
    assert re.search(r"^cmake_minimum_required\(", TOP, re.M)
    assert "project(SlicerCOVIDWeak)" in TOP
    assert "find_package(Slicer REQUIRED)" in TOP and "include(${Slicer_USE_FILE})" in TOP
    generate = TOP.index("include(${Slicer_EXTENSION_GENERATE_CONFIG})")
    cpack = TOP.index("include(${Slicer_EXTENSION_CPACK})")
    assert TOP.index("find_package(Slicer REQUIRED)") < TOP.index("add_subdirectory(") < generate < cpack


def test_extension_metadata():
    assert cmake_set("EXTENSION_HOMEPAGE") == "https://github.com/covidweak/SlicerCOVIDWeak"
    assert cmake_set("EXTENSION_CATEGORY") == "Chest Imaging"
    assert cmake_set("EXTENSION_CONTRIBUTORS")
    assert "not for clinical use" in cmake_set("EXTENSION_DESCRIPTION")
    assert cmake_set("EXTENSION_DEPENDS").split() == ["PyTorch"]
    raw = "https://raw.githubusercontent.com/covidweak/SlicerCOVIDWeak/main/"
    icon = cmake_set("EXTENSION_ICONURL")
    assert icon.startswith(raw) and (ROOT / icon.removeprefix(raw)).is_file()
    screenshots = cmake_set("EXTENSION_SCREENSHOTURLS").split()
    assert screenshots[0] == raw + "Resources/Screenshots/phantom_montage.png"
    assert {raw + f"Resources/Screenshots/{module}_panel.png" for module in MODULES} <= set(screenshots)
    assert all(url.startswith(raw) and (ROOT / url.removeprefix(raw)).is_file() for url in screenshots)


@pytest.mark.parametrize("module", MODULES)
def test_top_level_adds_each_module(module):
    assert re.search(rf"^add_subdirectory\({module}\)$", TOP, re.M)


def test_covidweak_package_is_installed_next_to_the_modules():
    match = re.search(r"install\(\s*DIRECTORY\s+(\S+)\s+DESTINATION\s+(\S+)(.*?)\)", TOP, re.S)
    assert match
    assert match.group(1).endswith("/training/covidweak")
    assert match.group(2) == "${Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR}"
    assert '"__pycache__" EXCLUDE' in match.group(3)


def test_extension_icon_is_128_pixels():
    from PIL import Image

    with Image.open(ROOT / "Resources" / "Icons" / "COVIDWeakSeg-extension.png") as icon:
        assert icon.size == (128, 128)


# ---------------------------------------------------------------- modules


@pytest.mark.parametrize("module", MODULES)
def test_cmake_lists_every_file_and_only_existing_ones(module):
    text = (ROOT / module / "CMakeLists.txt").read_text()
    assert re.search(rf"set\(MODULE_NAME {module}\)", text)
    scripts = cmake_list(text, "MODULE_PYTHON_SCRIPTS", module)
    resources = cmake_list(text, "MODULE_PYTHON_RESOURCES", module)
    python_files, resource_files = module_files(module)
    assert set(scripts) == python_files, "every .py must be listed in MODULE_PYTHON_SCRIPTS, and only those"
    assert set(resources) == resource_files, "every Resources/ file must be listed in MODULE_PYTHON_RESOURCES"
    for required in (f"{module}.py", f"{module}Lib/__init__.py", f"{module}Lib/logic.py", f"{module}Lib/parameters.py"):
        assert required in scripts
    assert {f"Resources/UI/{module}.ui", f"Resources/Icons/{module}.png"} <= set(resources)
    macro = re.search(r"slicerMacroBuildScriptedModule\((.*?)\)", text, re.S).group(1).split()
    assert macro == ["NAME", "${MODULE_NAME}", "SCRIPTS", "${MODULE_PYTHON_SCRIPTS}",
                     "RESOURCES", "${MODULE_PYTHON_RESOURCES}", "WITH_GENERIC_TESTS"]


@pytest.mark.parametrize("module", MODULES)
def test_module_class_metadata(module):
    tree = parse(ROOT / module / f"{module}.py")
    values = parent_assignments(class_def(tree, module))
    for attr in ("title", "categories", "contributors", "helpText", "acknowledgementText"):
        assert attr in values, f"{module}: self.parent.{attr} not set"
    assert ast.literal_eval(values["categories"]) == ["Chest Imaging"]
    assert ast.literal_eval(values["contributors"])
    assert "research use only, not for clinical use" in ast.literal_eval(values["helpText"]).lower()


@pytest.mark.parametrize("module", MODULES)
def test_widget_loads_its_ui_and_uses_only_existing_widgets(module):
    source = (ROOT / module / f"{module}.py").read_text()
    tree = ast.parse(source)
    widget = class_def(tree, f"{module}Widget")
    test = class_def(tree, f"{module}Test")
    assert [b.id for b in test.bases if isinstance(b, ast.Name)] == ["ScriptedLoadableModuleTest"]
    # The shared part of setup() (covidweak.slicer.panel.setup_module_panel) loads UI/<module>.ui.
    assert f'setup_module_panel(self, "{module}", {module}Logic(' in source
    shared = (ROOT / "training" / "covidweak" / "slicer" / "panel.py").read_text()
    assert 'widget.resourcePath(f"UI/{module_name}.ui")' in shared and "slicer.util.loadUI" in shared
    assert "setMRMLScene(slicer.mrmlScene)" in shared
    ui_names = set(re.findall(r'<widget class="[^"]+" name="([^"]+)"', (ROOT / module / "Resources" / "UI" / f"{module}.ui").read_text()))
    used = {node.attr for node in ast.walk(widget)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "ui"}
    used |= set(re.findall(r"widget\.ui\.(\w+)", shared))  # statusLabel, progressBar, cancelButton
    assert used and used <= ui_names, f"{module}.py uses widgets missing from the .ui: {used - ui_names}"
    assert {"statusLabel", "cancelButton", "progressBar"} <= used
    assert len(source.splitlines()) < 200


@pytest.mark.parametrize("module", MODULES)
def test_logic_stays_free_of_gui_imports(module):
    forbidden = {"qt", "ctk", "slicer.ScriptedLoadableModule", "PythonQt"}
    for path in (ROOT / module / f"{module}Lib").glob("*.py"):
        imports = imported_modules(parse(path), top_level_only=False)
        assert not imports & forbidden, f"{path.name} imports {imports & forbidden}"
        assert not any(name.startswith(("qt.", "ctk.")) for name in imports)


@pytest.mark.parametrize("module", MODULES)
def test_self_test_uses_the_logic_pytest_covers(module):
    source = (ROOT / module / f"{module}.py").read_text()
    test = class_def(ast.parse(source), f"{module}Test")
    calls = {node.func.attr for node in ast.walk(test)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
    tests = [ROOT / "Testing" / "test_module_logic.py", *(ROOT / "Testing").glob(f"test_{module.lower()}_*.py")]
    covered = "".join(path.read_text() for path in tests)
    logic_methods = {m for m in calls if re.search(rf"logic\.{m}\(", source)}
    assert logic_methods, f"{module}Test calls no Logic method"
    assert all(f".{m}(" in covered for m in logic_methods)
    assert "generate_study" in source


@pytest.mark.parametrize("module", MODULES)
def test_self_test_sets_up_the_dependencies_before_anything_else(module):
    run_test = next(node for node in ast.walk(class_def(parse(ROOT / module / f"{module}.py"), f"{module}Test"))
                    if isinstance(node, ast.FunctionDef) and node.name == "runTest")
    calls = [node.value.func for node in run_test.body if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)]
    assert calls and getattr(calls[0], "id", None) == "ensure_dependencies", \
        f"{module}Test.runTest must call ensure_dependencies() first"


def test_early_covidweak_modules_need_only_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"covidweak"}
    for name in EARLY_IMPORTED:
        path = ROOT / "training" / "covidweak" / f"{name}.py"
        tree = parse(path)
        top = {m.split(".")[0] for m in imported_modules(tree, top_level_only=True)}
        package = name.split("/")[:-1]
        relative = {"/".join(package[: len(package) - n.level + 1] + n.module.split("."))
                    for n in tree.body if isinstance(n, ast.ImportFrom) and n.level}
        assert top <= allowed, f"{name}.py imports {top - allowed} at load time"
        assert relative <= set(EARLY_IMPORTED), f"{name}.py pulls in {relative - set(EARLY_IMPORTED)} at load time"


@pytest.mark.parametrize("module", MODULES)
def test_module_icon_is_a_png(module):
    from PIL import Image

    with Image.open(ROOT / module / "Resources" / "Icons" / f"{module}.png") as icon:
        assert icon.format == "PNG" and icon.size == (128, 128)


@pytest.mark.parametrize("module", MODULES)
def test_no_file_is_too_long(module):
    for path in (ROOT / module).rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path
