"""Imports point one way (design.md §2.2, §4.8): ``controller/`` imports none of ``envs``,
``hardware`` and ``launch``, ``envs/`` neither ``hardware`` nor ``launch``, ``hardware/`` does not import
``launch`` (every import statement, those inside functions included, read with ast); and the real-time
packages never import torch, matplotlib or ray (checked in a fresh interpreter that imports every module
of controller, envs and hardware)."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"controller": ("envs", "hardware", "launch"), "envs": ("hardware", "launch"),
             "hardware": ("launch",)}

CODE = r"""
import importlib, json, pkgutil, sys
import controller, envs, hardware
for pkg in (controller, envs, hardware):
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(info.name)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "matplotlib", "ray"))
print(json.dumps(heavy))
"""


def imported_modules(source, module):
    """(line, absolute module name) of every import statement in ``source``, the module ``module``
    (dotted) being the one that holds it (for relative imports)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = module.split(".")[:-node.level] if node.level else []
            base = ".".join(parts + ([node.module] if node.module else []))
            if base:
                found.append((node.lineno, base))
            else:   # "from .. import name" at the top: the names are the modules
                found += [(node.lineno, alias.name) for alias in node.names]
    return found


def violations(package, forbidden, root=ROOT):
    """'file:line imports name' for each import in ``package`` of a package in ``forbidden``."""
    out = []
    for path in sorted((root / package).rglob("*.py")):
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        for line, name in imported_modules(path.read_text(), module):
            if name.split(".")[0] in forbidden:
                out.append(f"{path.relative_to(root)}:{line} imports {name}")
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_down(package):
    assert violations(package, FORBIDDEN[package]) == []


def test_the_import_check_sees_imports_inside_functions_and_relative_ones(tmp_path):
    pkg = tmp_path / "controller"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "inner.py").write_text("import numpy\n\ndef run():\n    from hardware.base import State\n")
    (pkg / "rel.py").write_text("from .. import launch\nfrom ..launch import cli\n")
    found = violations("controller", ("hardware", "launch"), root=tmp_path)
    assert found == ["controller/inner.py:4 imports hardware.base", "controller/rel.py:1 imports launch",
                     "controller/rel.py:2 imports launch"]


def test_realtime_packages_import_no_torch_matplotlib_ray():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
