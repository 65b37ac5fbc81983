"""`rtu-control bench learning`: does the streaming agent learn, and does recurrence help?

Runs N seeds x cells (linear RTU, non-linear RTU, LRU, feed-forward "none") on each env id for a fixed
number of steps, single process per run (runs are spread over ``workers`` processes). Each run drives
the gymnasium env in the act-then-learn order of ``controller.agent`` (``launch.runner.Runner``) and
records

* ``curves/<env>/<cell>/seed<k>.jsonl``: one line per episode: step, episode return, length, wall time;
* its summary: mean return of the last ``last_episodes`` episodes, env steps per second, and the agent's
  own time per step (act + learn) next to the env's ``step`` time, both measured in the run;

then writes ``summary.json``, prints a table (mean ± standard error over seeds of the final returns)
and, when matplotlib is installed (``pip install 'rtu-control[plot]'``), ``curves.png`` with one panel
per env (mean over seeds of a moving average of the episode returns).
"""
import dataclasses
import json
import math
import os
import sys
import time
import typing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np

from controller.config import build_config, check, check_output_path
from envs.errors import check_env_id
from launch.envcheck import check_env
from launch.runner import Runner

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


def run_one(env_id, cell, seed, cfg, out_dir):
    """One learning run; returns its summary dict and writes its per-episode JSONL curve."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the -P/-V and diagnostic ids)
    from controller.agent import Agent

    env = gym.make(env_id, **cfg.env_kwargs)
    agent = Agent(env.observation_space, env.action_space, cfg.agent_config(cell), seed=seed)
    path = Path(out_dir) / "curves" / env_id / cell / f"seed{seed}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    runner = Runner(agent, env, obs, clock=clock)
    returns = []
    start = clock()
    with open(path, "w") as f:
        def write_episode(ret, length, terminated):
            returns.append(ret)
            f.write(json.dumps({"step": runner.step, "return": ret, "length": length,
                                "wall_s": round(clock() - start, 3)}) + "\n")

        runner.run(cfg.steps, on_episode=write_episode)
    t_agent, t_env = runner.act_time + runner.learn_time, runner.env_time
    wall = clock() - start
    env.close()
    last = returns[-cfg.last_episodes:]
    w = cfg.last_episodes
    if len(returns) >= w:
        windows = np.convolve(returns, np.ones(w) / w, mode="valid")
        best = float(windows.max())
    else:
        best = float(np.mean(returns)) if returns else float("nan")
    return {"env_id": env_id, "cell": cell, "seed": seed, "steps": cfg.steps, "episodes": len(returns),
            "final_return": float(np.mean(last)) if last else float("nan"),
            "best_window_return": best,
            "steps_per_s": cfg.steps / wall, "agent_us_per_step": 1e6 * t_agent / cfg.steps,
            "env_us_per_step": 1e6 * t_env / cfg.steps, "refused": agent.stats["refused"],
            "non_finite_inputs": agent.stats["non_finite_inputs"], "curve": str(path)}


def _summarise(runs, cfg):
    table = []
    for env_id in cfg.env_ids:
        for cell in cfg.cells:
            rs = [r for r in runs if r["env_id"] == env_id and r["cell"] == cell]
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
    """Run every (env, cell, seed); write curves, summary.json, curves.png; print the table."""
    for i, env_id in enumerate(cfg.env_ids):   # before anything is written or a worker starts
        check_env(env_id, cfg.env_kwargs, key=f"env_ids[{i}]")
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(e, c, s) for e in cfg.env_ids for c in cfg.cells for s in cfg.seeds]
    echo(f"  {len(jobs)} runs of {cfg.steps} steps on {cfg.workers} worker(s) -> {out}")
    runs = []
    if cfg.workers == 1:
        for job in jobs:
            runs.append(run_one(*job, cfg, out))
            echo(f"  done {job}: final {runs[-1]['final_return']:.2f}")
    else:
        with ProcessPoolExecutor(max_workers=cfg.workers) as pool:
            futures = {pool.submit(run_one, *job, cfg, out): job for job in jobs}
            for fut in futures:
                runs.append(fut.result())
                echo(f"  done {futures[fut]}: final {runs[-1]['final_return']:.2f}")
    table = _summarise(runs, cfg)
    result = {"config": dataclasses.asdict(cfg), "runs": runs, "summary": table,
              "command": " ".join(["rtu-control"] + sys.argv[1:]) if sys.argv else "rtu-control bench learning",
              "cpu_count": os.cpu_count()}
    (out / "summary.json").write_text(json.dumps(result, indent=2))
    echo("")
    echo(format_summary(table, cfg.last_episodes))
    png = plot_curves(runs, cfg, out / "curves.png")
    echo(f"\nwrote {out / 'summary.json'}" + (f" and {png}" if png else " (no plot: matplotlib not installed)"))
    return result
