"""What `pip install .` installs, read from pyproject.toml and checked without installing.

The worker and the starter must run from a plain install (no dev extra), so nothing installed
may import the ECS emulator or moto (dev-only, run from the repository root), and every
first-party module they import must be installed.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
PACKAGES: list[str] = SETUPTOOLS["packages"]
PY_MODULES: list[str] = SETUPTOOLS["py-modules"]
DEV_ONLY = {"moto", "ecs_emulator"}


def _installed_files() -> list[Path]:
    files = [ROOT / f"{name}.py" for name in PY_MODULES]
    for package in PACKAGES:
        files.extend(sorted((ROOT / package.replace(".", "/")).glob("*.py")))
    return files


def _imported_modules(path: Path) -> set[str]:
    """Absolute module names `path` imports (also through importlib.import_module("...")
    and __import__("...") with a literal name)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            names.add(node.args[0].value)
    return names


def test_the_cli_is_installed_and_the_emulator_is_not() -> None:
    assert "cli" in PACKAGES
    assert {"ecs_canary", "workflows", "activities"} <= set(PACKAGES)
    assert {"worker", "starter"} <= set(PY_MODULES)
    assert not DEV_ONLY & {name.split(".")[0] for name in PACKAGES + PY_MODULES}


def test_moto_is_a_dev_dependency_only() -> None:
    runtime = " ".join(PYPROJECT["project"]["dependencies"]).lower()
    assert "moto" not in runtime
    assert any(d.startswith("moto") for d in PYPROJECT["project"]["optional-dependencies"]["dev"])


def test_every_installed_package_exists_with_its_subpackages() -> None:
    # setuptools installs exactly the listed packages: a subpackage left off the list would
    # be missing from a plain install while every test (run from the repository) still passes.
    for package in PACKAGES:
        directory = ROOT / package.replace(".", "/")
        assert (directory / "__init__.py").is_file(), f"{package} is not a package"
        for sub in directory.rglob("*.py"):
            dotted = ".".join(sub.parent.relative_to(ROOT).parts)
            assert dotted in PACKAGES, f"{sub.relative_to(ROOT)} is in no installed package"
    for module in PY_MODULES:
        assert (ROOT / f"{module}.py").is_file(), module


def test_nothing_installed_imports_dev_only_code() -> None:
    files = _installed_files()
    assert ROOT / "worker.py" in files and ROOT / "starter.py" in files
    offenders = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in files
        for name in _imported_modules(path)
        if name.split(".")[0] in DEV_ONLY
    )
    assert not offenders, f"installed code imports dev-only modules: {offenders}"


def test_every_first_party_import_is_installed() -> None:
    # A top-level package or module of this repository that installed code imports must be
    # installed too, or a plain `pip install .` breaks at import time.
    first_party = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    first_party |= {p.stem for p in ROOT.glob("*.py")}
    installed = {name.split(".")[0] for name in PACKAGES + PY_MODULES}
    missing = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in _installed_files()
        for name in _imported_modules(path)
        if name.split(".")[0] in first_party - installed
    )
    assert not missing, f"installed code imports modules that are not installed: {missing}"
