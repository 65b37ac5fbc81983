"""``import envs``: light (no torch/matplotlib/ray/popgym, no MuJoCo until an env is made), idempotent,
and every listed id is registered."""
import importlib
import json
import subprocess
import sys

import gymnasium as gym

import envs

CODE = r"""
import json, sys, time
t = time.perf_counter()
import envs
dt = time.perf_counter() - t
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "matplotlib", "ray", "popgym"))
print(json.dumps({"heavy": heavy, "seconds": dt, "n": len(envs.ALL_IDS)}))
"""


def test_import_is_light_and_fast():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["heavy"] == []
    assert res["seconds"] < 5.0
    assert res["n"] == len(envs.ALL_IDS)


def test_all_ids_listed_once_and_registered():
    assert len(set(envs.ALL_IDS)) == len(envs.ALL_IDS) == 18 + 7 + 4 + 5
    assert set(envs.MASKED_IDS) | set(envs.DIAGNOSTIC_IDS) | set(envs.NONSTATIONARY_IDS) | set(envs.POPGYM_IDS) \
        == set(envs.ALL_IDS)
    for env_id in envs.ALL_IDS:
        assert env_id in gym.registry


def test_reimport_and_reload_are_harmless():
    before = {k: gym.registry[k].entry_point for k in envs.ALL_IDS}
    importlib.reload(envs)
    assert envs.register_all() == envs.ALL_IDS
    assert {k: gym.registry[k].entry_point for k in envs.ALL_IDS} == before
