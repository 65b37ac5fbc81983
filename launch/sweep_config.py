"""What one `rtu-control sweep` runs: ``SweepConfig`` (YAML -> frozen dataclass, validated once) and its
expansion into trials, each an ordinary `rtu-control train` run.

A sweep file::

    name: lam                        # default: the file's name without .yaml
    output: results/sweeps/lam       # default: results/sweeps/<name>
    base_config: cartpole_p          # a train config (file, relative to the sweep file, or packaged name)
    train: {steps: 100000, plots: false}     # train keys set in every trial (nested or dotted)
    grid:                            # every combination of these train keys' values
      env_id: [CartPole-P-v1, CartPole-V-v1]
      seed: [0, 1, 2]
    variants:                        # named sets of train keys, each crossed with the grid
      rtu: {agent.cell: rtu-linear}
      ff: {agent.cell: none}
    report: {budgets: [50000, 100000], last_episodes: 10}

Trials are ``variants x grid`` in that order (a sweep without variants has one, ``base``). A trial's
train config is: the train defaults, then ``base_config``, then ``train``, then its variant, then its
grid values. Every trial's config is validated here, before anything runs, and an error names the sweep
file and the key. A trial's id (also its folder under ``<output>/trials/``) is
``<variant>/<key>=<value>/...`` over the grid keys; its ``group`` (what the report compares) is the
variant plus the grid values other than ``env_id`` and ``seed``.
"""
import dataclasses
import itertools
import os
import re
import typing
from pathlib import Path
from typing import Literal

from controller.config import ConfigError, build_config, check, check_output_path, read_yaml, set_dotted

TASK_KEY, SEED_KEY = "env_id", "seed"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """What the sweep's report aggregates (``launch.sweep_report``)."""
    budgets: tuple[int, ...] = ()   # env steps at which each trial's score is read; () = the trials' steps
    last_episodes: int = 10         # a score = mean return of the last this many episodes by the budget

    def __post_init__(self):
        check(all(b >= 1 for b in self.budgets), "budgets", "integers >= 1 (env steps)", self.budgets)
        check(self.last_episodes >= 1, "last_episodes", "an integer >= 1", self.last_episodes)


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A grid (and a list of named variants) of `rtu-control train` runs. Every field can be set in YAML
    or with --set key=value."""
    name: str = ""                  # "" = the sweep file's name without .yaml
    output: str = ""                # the sweep folder; "" = results/sweeps/<name>
    base_config: str = ""           # a train config: a path (relative to the sweep file) or packaged name
    train: dict[str, typing.Any] = dataclasses.field(default_factory=dict)      # train keys for every trial
    grid: dict[str, tuple[typing.Any, ...]] = dataclasses.field(default_factory=dict)  # key -> values
    variants: dict[str, dict[str, typing.Any]] = dataclasses.field(default_factory=dict)  # name -> keys
    backend: Literal["local", "ray"] = "local"   # local: a process pool here; ray: Ray tasks (pip extra)
    workers: int = 0                # trials at once (local); 0 = the cores this process may use
    ray_address: str = ""           # "" = RAY_ADDRESS, else a new local Ray instance; "auto": a running cluster
    report: ReportConfig = ReportConfig()

    def __post_init__(self):
        check(self.workers >= 0, "workers", "an integer >= 0 (0 = usable cores)", self.workers)
        check_output_path(self.output, "output", "folder")
        check(self.name == "" or _UNSAFE.search(self.name) is None, "name",
              "letters, digits and . _ = + - only (it names a folder)", self.name)
        for key, values in self.grid.items():
            check(len(values) > 0, f"grid.{key}", "a non-empty list of values", values)
            check(len(set(map(repr, values))) == len(values), f"grid.{key}", "distinct values", values)
        for name in self.variants:
            check(name != "" and _UNSAFE.search(name) is None, f"variants.{name}",
                  "a name of letters, digits and . _ = + - only (it names a folder)", name)

    def usable_workers(self):
        """workers, or the number of cores this process may run on when 0."""
        return self.workers or len(os.sched_getaffinity(0))


@dataclasses.dataclass(frozen=True)
class Trial:
    """One trial: ``id`` (its folder under trials/), ``variant``, ``group`` (the report's row label),
    ``task`` (env_id), ``seed``, ``steps``, ``data`` (its full train config as a nested dict: YAML values,
    ``output`` set to its run folder)."""
    id: str
    variant: str
    group: str
    task: str
    seed: int
    steps: int
    data: dict


def load_sweep_config(path, overrides=()):
    """SweepConfig from a YAML file and dotted overrides; ConfigError naming the file and key."""
    from controller.config import load_config
    return load_config(SweepConfig, path, overrides)


def default_name(cfg, path):
    return cfg.name or Path(path).name.removesuffix(".yaml").removesuffix(".yml")


def sweep_dir(cfg, path):
    """The sweep folder: ``output``, else results/sweeps/<name>."""
    return Path(cfg.output) if cfg.output else Path("results") / "sweeps" / default_name(cfg, path)


def _merge(data, updates, where):
    """Apply a mapping of (nested or dotted) train keys onto ``data`` in place."""
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            child = dict(data[key])
            _merge(child, value, f"{where}.{key}")
            data[key] = child
        else:
            set_dotted(data, key.split("."), value, f"{where}.{key}")


def _label(value):
    text = value if isinstance(value, str) else repr(value)
    return _UNSAFE.sub("_", text)


def base_train_data(cfg, sweep_path):
    """The train config mapping every trial starts from (base_config, then ``train``)."""
    data = {}
    if cfg.base_config:
        from launch.cli import resolve_config
        candidate = Path(sweep_path).parent / cfg.base_config
        path = candidate if candidate.is_file() else resolve_config(cfg.base_config, "train")
        data = read_yaml(path)
    _merge(data, cfg.train, "train")
    return data


def expand(cfg, sweep_path, out_dir):
    """The trials of a sweep (list of Trial), each train config validated; ConfigError naming the sweep
    file and the key of the first invalid one."""
    from launch.train_config import TrainConfig

    base = base_train_data(cfg, sweep_path)
    variants = cfg.variants or {"base": {}}
    keys = list(cfg.grid)
    trials = []
    for variant, updates in variants.items():
        for values in itertools.product(*(cfg.grid[k] for k in keys)):
            data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
            _merge(data, updates, f"variants.{variant}")
            for key, value in zip(keys, values):
                set_dotted(data, key.split("."), value, f"grid.{key}")
            parts = [variant] + [f"{k}={_label(v)}" for k, v in zip(keys, values)]
            trial_id = "/".join(parts)
            data["output"] = str(Path(out_dir) / "trials" / trial_id)
            try:
                train = build_config(TrainConfig, data)
            except ConfigError as err:
                raise ConfigError(f"{sweep_path}: trial {trial_id}: {err}") from None
            group = ", ".join([variant] + [f"{k}={v}" for k, v in zip(keys, values)
                                           if k not in (TASK_KEY, SEED_KEY)])
            trials.append(Trial(trial_id, variant, group, train.env_id, train.seed, train.steps, data))
    return trials
