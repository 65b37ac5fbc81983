"""`rtu-control bench learning`: does the streaming agent learn, and does recurrence help?

A packaged sweep: N seeds x cells (linear RTU, non-linear RTU, LRU, feed-forward "none") on each env id
for a fixed number of steps, each run an ordinary `rtu-control train` run in its own process, run by
``launch.sweep`` on ``workers`` local processes (``sweep_config`` gives the SweepConfig; the packaged
sweep_learning.yaml is the same for the defaults, so ``rtu-control sweep --config learning`` runs the
same trials). The output folder is a sweep folder (trials/<cell>/env_id=<env>/seed=<k>/, report/,
resumable by running the same command again) plus

* ``summary.json``: per run, the mean return of the last ``last_episodes`` episodes, the best such
  window, env steps per second, and the agent's own mean time per step (act + learn) next to the env's
  ``step`` time, both measured in the run; per (env, cell) the mean ± standard error over seeds;
* ``curves.png`` (with matplotlib, ``pip install 'rtu-control[plot]'``): one panel per env, the mean over
  seeds of a moving average of the episode returns;

and the table is printed.
"""
import dataclasses
import json
import math
import os
import sys
import typing
from pathlib import Path
from typing import Literal

import numpy as np

from controller.config import build_config, check, check_output_path
from envs.errors import check_env_id
from launch import results as R
from launch.envcheck import check_env
from launch.sweep_trials import trial_state

CellKind = Literal["rtu-linear", "rtu-nonlinear", "lru", "none"]


@dataclasses.dataclass(frozen=True)
class LearningBenchConfig:
    """What `rtu-control bench learning` runs. Every field can be set in YAML or with --set key=value."""
    env_ids: tuple[str, ...] = ("CartPole-P-v1",)
    cells: tuple[CellKind, ...] = ("rtu-linear", "none")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    steps: int = 300_000                # env steps per run
    last_episodes: int = 20             # final performance = mean return of this many last episodes
    env_kwargs: dict[str, typing.Any] = dataclasses.field(default_factory=dict)
    """keyword arguments for gymnasium.make, e.g. {delay: 10} (--set env_kwargs.delay=10)"""
    workers: int = 2                    # processes running seeds/cells in parallel
    dtype: Literal["float32", "float64"] = "float32"
    n_units: int = 192
    agent: dict[str, typing.Any] = dataclasses.field(default_factory=dict)
    """further AgentConfig fields for every run, e.g. {hidden_activation: leaky_relu} (--set agent.lam=0.9)"""
    output: str = "results/learning"

    def __post_init__(self):
        check(len(self.env_ids) > 0, "env_ids", "at least one gymnasium id", self.env_ids)
        check(len(self.cells) > 0, "cells", "at least one cell kind", self.cells)
        for i, env_id in enumerate(self.env_ids):
            check_env_id(env_id, f"env_ids[{i}]")
        check(len(self.seeds) > 0, "seeds", "at least one integer seed", self.seeds)
        check(all(seed >= 0 for seed in self.seeds), "seeds", "integers >= 0", self.seeds)
        check_output_path(self.output, "output", "folder")
        check(self.steps >= 1, "steps", "an integer >= 1", self.steps)
        check(self.last_episodes >= 1, "last_episodes", "an integer >= 1", self.last_episodes)
        check(self.workers >= 1, "workers", "an integer >= 1", self.workers)
        check(self.n_units >= 1, "n_units", "an integer >= 1", self.n_units)
        self.agent_config("none")  # unknown or invalid agent fields fail here, once, by name

    def agent_config(self, cell):
        """The AgentConfig of one run of this benchmark."""
        from controller.agent import AgentConfig

        return build_config(AgentConfig, {**self.agent, "cell": cell, "dtype": self.dtype,
                                          "n_units": self.n_units}, "agent")


def sweep_config(cfg):
    """The SweepConfig this benchmark runs: variants = cells, grid = env ids x seeds, every trial an
    ordinary train run of ``steps`` steps (the packaged sweep_learning.yaml is this for the defaults)."""
    from launch.sweep_config import ReportConfig, SweepConfig

    train = {"steps": cfg.steps, "env_kwargs": dict(cfg.env_kwargs), "plots": False, "progress": "lines",
             "agent": {**cfg.agent, "dtype": cfg.dtype, "n_units": cfg.n_units}}
    return SweepConfig(name="learning", output=cfg.output, train=train,
                       grid={"env_id": tuple(cfg.env_ids), "seed": tuple(cfg.seeds)},
                       variants={cell: {"agent.cell": cell} for cell in cfg.cells}, workers=cfg.workers,
                       report=ReportConfig(budgets=(cfg.steps,), last_episodes=cfg.last_episodes))


def run_summary(out, trial, last_episodes):
    """One finished trial as a run of this benchmark: final return (mean of the last ``last_episodes``
    episodes), best window, speed (env steps per second over the run's wall time) and the agent's and
    the env's mean time per step, from its results folder."""
    run_dir = Path(out) / trial["run_dir"]
    summary = json.loads((run_dir / R.SUMMARY).read_text())
    returns = [float(e["return"]) for e in R.read_metrics(run_dir, "episode")]
    w = last_episodes
    if len(returns) >= w:
        best = float(np.convolve(returns, np.ones(w) / w, mode="valid").max())
    else:
        best = float(np.mean(returns)) if returns else float("nan")
    last = returns[-w:]
    return {"env_id": trial["task"], "cell": trial["variant"], "seed": trial["seed"], "steps": summary["steps"],
            "episodes": len(returns), "final_return": float(np.mean(last)) if last else float("nan"),
            "best_window_return": best, "steps_per_s": summary["steps"] / max(summary["wall_s"], 1e-9),
            "agent_us_per_step": summary["act_learn_us"]["mean"], "env_us_per_step": summary["env_step_us"]["mean"],
            "refused": summary["refused"], "non_finite_inputs": summary["non_finite_inputs"],
            "curve": str(run_dir / R.METRICS)}


def _summarise(runs, cfg):
    table = []
    for env_id in cfg.env_ids:
        for cell in cfg.cells:
            rs = [r for r in runs if r["env_id"] == env_id and r["cell"] == cell]
            if not rs:      # every seed failed: the sweep's status names them
                continue
            finals = np.array([r["final_return"] for r in rs])
            best = np.array([r["best_window_return"] for r in rs])
            se = float(finals.std(ddof=1) / math.sqrt(len(finals))) if len(finals) > 1 else float("nan")
            table.append({"env_id": env_id, "cell": cell, "seeds": len(rs),
                          "mean_final_return": float(finals.mean()), "stderr": se,
                          "per_seed": [float(v) for v in finals],
                          "best_window_per_seed": [float(v) for v in best],
                          "steps_per_s": float(np.mean([r["steps_per_s"] for r in rs])),
                          "agent_us_per_step": float(np.mean([r["agent_us_per_step"] for r in rs])),
                          "env_us_per_step": float(np.mean([r["env_us_per_step"] for r in rs]))})
    return table


def format_summary(table, last_episodes):
    head = (f"{'env':<26}{'cell':<15}{'seeds':>6}{f'final (last {last_episodes} ep.)':>26}"
            f"{'steps/s':>10}{'agent µs':>10}{'env µs':>9}  final per seed (best {last_episodes}-episode mean)")
    lines = [head, "-" * len(head)]
    for r in table:
        final = f"{r['mean_final_return']:.1f} ± {r['stderr']:.1f}"
        fmt = lambda v: f"{v:.0f}" if abs(v) >= 10 else f"{v:.2f}"  # noqa: E731
        seeds = " ".join(fmt(v) for v in r["per_seed"]) + "  (best window: " + \
            " ".join(fmt(v) for v in r["best_window_per_seed"]) + ")"
        lines.append(f"{r['env_id']:<26}{r['cell']:<15}{r['seeds']:>6}{final:>26}{r['steps_per_s']:>10.0f}"
                     f"{r['agent_us_per_step']:>10.1f}{r['env_us_per_step']:>9.1f}  {seeds}")
    return "\n".join(lines)


def plot_curves(runs, cfg, path, window=20):
    """One panel per env id of cfg: each (env, cell)'s mean over seeds of the moving average of episode
    returns vs env steps, ± one standard error (``launch.plot.plot_seed_curves``); None without
    matplotlib (no message: the summary table is the result)."""
    from launch.plot import plot_seed_curves

    return plot_seed_curves(runs, path, window, panel_of=lambda env_id: env_id, echo=lambda *_: None)


def run(cfg, echo=print):
    """Run every (env, cell, seed) as a sweep (``launch.sweep``: resumable, one train process per run);
    write summary.json and curves.png; print the table. Returns the result dict (``status``: the
    sweep's exit status)."""
    from launch.sweep import run_sweep

    for i, env_id in enumerate(cfg.env_ids):   # before anything is written or a worker starts
        check_env(env_id, cfg.env_kwargs, key=f"env_ids[{i}]")
    out = Path(cfg.output)
    status = run_sweep(sweep_config(cfg), "bench learning", echo=echo)
    manifest = json.loads((out / "trials.json").read_text())
    runs = [run_summary(out, t, cfg.last_episodes) for t in manifest["trials"]
            if trial_state(out / t["run_dir"]) == "done"]
    table = _summarise(runs, cfg)
    result = {"config": dataclasses.asdict(cfg), "runs": runs, "summary": table, "status": status,
              "command": " ".join(["rtu-control"] + sys.argv[1:]) if sys.argv else "rtu-control bench learning",
              "cpu_count": os.cpu_count()}
    (out / "summary.json").write_text(json.dumps(result, indent=2))
    echo("")
    echo(format_summary(table, cfg.last_episodes))
    png = plot_curves(runs, cfg, out / "curves.png")
    echo(f"\nwrote {out / 'summary.json'}" + (f" and {png}" if png else " (no plot: matplotlib not installed)"))
    return result
