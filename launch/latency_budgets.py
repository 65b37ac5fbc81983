"""A latency budgets file (`rtu-control bench --assert BUDGETS.yaml`): YAML -> frozen dataclasses, validated
once, and the baseline files that ``--record`` writes. docs/latency_checks.md describes the format.

A budgets file names the agent to measure (an ``agent:`` block as in train.yaml with ``obs_dim`` /
``action_dim`` or an ``env_id`` for the spaces, or ``train_config:``, a train YAML or a results folder,
whose agent and env_id are taken), the size of the measurement (``ticks``, ``repeats``, ...) and, under
``budgets:``, one entry per figure (``act_p50`` ... ``act_learn_p99``, times of one tick in µs) with one
or more limits, all of which must hold:

* ``max_us``: the figure in µs;
* ``max_ratio``: the figure over the calibration kernel's median timed in the same process
  (``launch.latency_measure``), a number without unit that a slower machine leaves about unchanged;
* ``max_vs_baseline``: that calibrated ratio over the same ratio in a recorded ``baseline`` file.

Every problem is a ``ConfigError`` naming the file, the key and the value (exit status 2).
"""
import dataclasses
import json
import math
from pathlib import Path

from controller.agent_config import AgentConfig
from controller.config import ConfigError, apply_overrides, build_config, check, read_yaml, to_dict

STATS = ("p50", "p90", "p99")
FIGURES = tuple(f"{what}_{stat}" for what in ("act", "act_learn") for stat in STATS)
LIMITS = ("max_us", "max_ratio", "max_vs_baseline")
BASELINE_KIND = "rtu-control latency baseline"
BASELINE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Limits:
    """The limits of one figure; each one set must hold. None: not checked."""
    max_us: float | None = None             # the figure's time, µs
    max_ratio: float | None = None          # figure / calibration kernel median (both in the same run)
    max_vs_baseline: float | None = None    # (figure / calibration) over the baseline's own such ratio

    def __post_init__(self):
        for name in LIMITS:
            value = getattr(self, name)
            check(value is None or (value > 0 and math.isfinite(value)), name, "null or a finite number > 0",
                  value)

    def items(self):
        """[(limit name, value)] of the limits that are set, in LIMITS order."""
        return [(name, getattr(self, name)) for name in LIMITS if getattr(self, name) is not None]


@dataclasses.dataclass(frozen=True)
class BudgetsConfig:
    """What `rtu-control bench --assert` measures and the budgets it checks."""
    agent: AgentConfig = AgentConfig()      # the learner (as train.yaml's agent:), unless train_config
    train_config: str = ""                  # a train YAML or results folder: its agent and env_id
    env_id: str = ""                        # spaces from gymnasium.make(env_id); "": obs_dim / action_dim
    obs_dim: int = 17                       # observation size (a Box), when no env_id
    action_dim: int = 6                     # Box action in [-1, 1]^action_dim, when no env_id
    seed: int = 0                           # agent's initialisation and the replayed observations
    ticks: int = 2000                       # timed act + learn ticks per repeat
    warmup_ticks: int = 500                 # untimed ticks before the first repeat
    repeats: int = 5                        # timed blocks; figures are medians over them
    calibration_every: int = 20             # ticks between two bursts of the calibration kernel
    budgets: dict[str, Limits] = dataclasses.field(default_factory=dict)  # figure -> limits
    baseline: str = ""                      # baseline JSON for max_vs_baseline (``--record`` writes one)
    output: str = "results/bench_assert.json"   # the measurement, table and verdict, JSON

    def __post_init__(self):
        check(self.ticks >= 100, "ticks", "an integer >= 100", self.ticks)
        check(self.warmup_ticks >= 1, "warmup_ticks", "an integer >= 1", self.warmup_ticks)
        check(self.repeats >= 1, "repeats", "an integer >= 1", self.repeats)
        check(5 <= self.calibration_every <= self.ticks // 10, "calibration_every",
              f"an integer in [5, ticks / 10 = {self.ticks // 10}]", self.calibration_every)
        check(self.obs_dim >= 1, "obs_dim", "an integer >= 1", self.obs_dim)
        check(self.action_dim >= 1, "action_dim", "an integer >= 1", self.action_dim)
        check(self.seed >= 0, "seed", "an integer >= 0", self.seed)
        check(len(self.budgets) > 0, "budgets", f"a mapping of figures ({', '.join(FIGURES)}) to limits",
              self.budgets)
        for figure, limits in self.budgets.items():
            check(figure in FIGURES, f"budgets.{figure}", f"a figure among {', '.join(FIGURES)}", figure)
            check(limits.items(), f"budgets.{figure}", f"at least one of {', '.join(LIMITS)}", {})
        uses_baseline = [f for f, lim in self.budgets.items() if lim.max_vs_baseline is not None]
        check(self.baseline or not uses_baseline, "baseline",
              f"a baseline file (budgets.{uses_baseline[0] if uses_baseline else ''}.max_vs_baseline needs one; "
              f"'rtu-control bench --assert FILE --record BASELINE' writes it)", self.baseline)
        check(self.output != "", "output", "a file path for the results (JSON)", self.output)


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """The agent a budgets file names, resolved: its config and spaces (env_id "" : a Box of obs_dim
    observations and a Box of action_dim actions in [-1, 1])."""
    agent: AgentConfig
    env_id: str
    env_kwargs: dict
    obs_dim: int
    action_dim: int
    source: str                             # where the agent came from, for the report

    def identity(self):
        """What a baseline must have been recorded for: a JSON-able dict."""
        return {"agent": to_dict(self.agent), "env_id": self.env_id, "env_kwargs": self.env_kwargs,
                "obs_dim": self.obs_dim if not self.env_id else None,
                "action_dim": self.action_dim if not self.env_id else None}


def relative_to(path, folder):
    """``path`` as given when absolute, else under ``folder`` (the budgets file's folder)."""
    p = Path(path)
    return p if p.is_absolute() else Path(folder) / p


def load_budgets(path, overrides=()):
    """(BudgetsConfig, AgentSpec) of a budgets file and dotted ``--set`` overrides. Relative paths written
    in the file (train_config, baseline) are taken from the file's folder, those given as overrides from
    the working directory. ConfigError naming the file and the key for every problem (unknown figure, no
    limit, a non-positive limit, agent and train_config both given, a train_config that does not load)."""
    path = Path(path)
    data = read_yaml(path)
    for key in ("train_config", "baseline"):        # paths in the file: relative to the file's folder
        if isinstance(data.get(key), str) and data[key]:
            data[key] = str(relative_to(data[key], path.parent))
    data = apply_overrides(data, overrides)         # paths given with --set: as given (working directory)
    if not data:
        raise ConfigError(f"{path}: no settings (an empty YAML file); expected at least budgets:")
    try:
        cfg = build_config(BudgetsConfig, data)
        if cfg.train_config and ("agent" in data or cfg.env_id):
            raise ConfigError("train_config: expected either train_config or agent / env_id, found both "
                              f"(train_config {cfg.train_config!r} names its own agent and env_id)")
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    if not cfg.train_config:
        source = f"{path} (agent:)" if "agent" in data else f"{path} (default agent)"
        return cfg, AgentSpec(cfg.agent, cfg.env_id, {}, cfg.obs_dim, cfg.action_dim, source)
    from launch.train_config import load_train_config

    train_path = Path(cfg.train_config)
    if train_path.is_dir():
        train_path = train_path / "config.yaml"
    if not train_path.is_file():
        raise ConfigError(f"{path}: train_config: expected a train YAML or a results folder with config.yaml, "
                          f"found {cfg.train_config!r} (no such file: {train_path})")
    train = load_train_config(train_path)
    return cfg, AgentSpec(train.agent, train.env_id, dict(train.env_kwargs), cfg.obs_dim, cfg.action_dim,
                          str(train_path))


# ----------------------------------------------------------------------------- baselines
def baseline_record(spec, measured, calibration_id, machine):
    """The JSON object ``--record`` writes: what was measured (figures in µs and as calibrated ratios),
    the calibration kernel's id and median, the agent's identity and the machine."""
    return {"kind": BASELINE_KIND, "version": BASELINE_VERSION, "calibration_kernel": calibration_id,
            "calibration_us": measured["calibration_us"], "identity": spec.identity(), "machine": machine,
            "figures": {name: {"us": f["us"], "ratio": f["ratio"]} for name, f in measured["figures"].items()}}


def read_baseline(path, spec, calibration_id, figures, where="baseline"):
    """The baseline file at ``path`` checked against this run: written by ``--record``, with the same
    calibration kernel, for the same agent and spaces, holding every figure in ``figures``. Returns the
    dict; ConfigError naming the file and what differs otherwise (``where``: the key that named the
    file, for a file that cannot be read)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"{where}: expected a baseline file, found {str(path)!r} ({err.strerror}); record "
                          f"one with 'rtu-control bench --assert BUDGETS.yaml --record {path}'") from None
    except ValueError as err:
        raise ConfigError(f"{path}: expected a baseline JSON file, found invalid JSON ({err})") from None
    if not isinstance(data, dict) or data.get("kind") != BASELINE_KIND:
        raise ConfigError(f"{path}: expected a baseline written by --record, found no kind {BASELINE_KIND!r}")
    if data.get("version") != BASELINE_VERSION:
        raise ConfigError(f"{path}: version: expected {BASELINE_VERSION}, found {data.get('version')!r}")
    if data.get("calibration_kernel") != calibration_id:
        raise ConfigError(f"{path}: calibration_kernel: expected {calibration_id!r} (this version's), found "
                          f"{data.get('calibration_kernel')!r}: record the baseline again")
    if data.get("identity") != spec.identity():
        theirs, ours = data.get("identity") or {}, spec.identity()
        diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        if "agent" in diff:
            a, b = theirs.get("agent") or {}, ours["agent"]
            diff = [f"agent.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)] + \
                   [k for k in diff if k != "agent"]
        raise ConfigError(f"{path}: identity: expected a baseline of this budgets file's agent, found one "
                          f"that differs in {', '.join(diff)}")
    missing = [f for f in figures if f not in data.get("figures", {})]
    if missing:
        raise ConfigError(f"{path}: figures: expected {', '.join(missing)}, found none recorded")
    return data


# ----------------------------------------------------------------------------- verdict
def evaluate(cfg, measured, baseline=None, recording=False):
    """One row per (figure, limit): figure, limit, budget, measured (µs, a ratio to the calibration, or a
    ratio to the baseline's), ratio = measured / budget, result "pass" / "FAIL" (ratio > 1), or
    "skipped" for max_vs_baseline while recording a baseline."""
    rows = []
    for figure, limits in cfg.budgets.items():
        f = measured["figures"][figure]
        for limit, budget in limits.items():
            if limit == "max_us":
                value = f["us"]
            elif limit == "max_ratio":
                value = f["ratio"]
            elif recording:
                rows.append({"figure": figure, "limit": limit, "budget": budget, "measured": None,
                             "us": f["us"], "ratio": None, "result": "skipped"})
                continue
            else:
                value = f["ratio"] / baseline["figures"][figure]["ratio"]
            ratio = value / budget
            rows.append({"figure": figure, "limit": limit, "budget": budget, "measured": value, "us": f["us"],
                         "ratio": ratio, "result": "pass" if ratio <= 1.0 else "FAIL"})
    return rows


_UNIT = {"max_us": " µs", "max_ratio": "× cal", "max_vs_baseline": "× base"}


def format_rows(rows):
    """The verdict as a text table: figure, limit, budget, measured, ratio (measured / budget), µs, result."""
    head = f"{'figure':<15}{'limit':<16}{'budget':>14} {'measured':>14} {'ratio':>8} {'µs':>9}  result"
    lines = [head, "-" * len(head)]
    for r in rows:
        unit = _UNIT[r["limit"]]
        budget = f"{r['budget']:.4g}{unit}"
        measured = "" if r["measured"] is None else f"{r['measured']:.4g}{unit}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}" if r["ratio"] < 1e4 else f"{r['ratio']:.2e}"
        lines.append(f"{r['figure']:<15}{r['limit']:<16}{budget:>14} {measured:>14} {ratio:>8} {r['us']:>9.1f}"
                     f"  {r['result']}")
    return "\n".join(lines)
