"""The real-time packages never import torch, matplotlib or ray (DESIGN §2): checked in a fresh
interpreter that imports every module of controller, envs and hardware."""
import json
import subprocess
import sys

CODE = r"""
import importlib, json, pkgutil, sys
import controller, envs, hardware
for pkg in (controller, envs, hardware):
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(info.name)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "matplotlib", "ray"))
print(json.dumps(heavy))
"""


def test_realtime_packages_import_no_torch_matplotlib_ray():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
