"""`rtu-control bench agent`: per-tick latency of the streaming agent (targets, design.md §5: act ≤ 10 µs,
act + learn ≤ 60 µs median and ≤ 200 µs p99 at the paper size in float32).

For each size of design.md §4.7 and dtype it builds the agent (actor and critic, each obs -> Dense ->
LayerNorm -> tanh -> cell -> Dense -> tanh -> head) with a Gaussian policy over a 6-dimensional Box and
times, call by call from Python after a warm-up, on a fixed stream of random observations replayed
through the same tick loop as `train` (``launch.runner.Runner`` on a ``ReplayedStream``):

* ``act``: ``agent.act(obs)``, the action path (forward work only);
* ``act+learn``: ``agent.act(obs)`` plus ``agent.learn(r, next_obs, ...)`` of the same tick, a whole tick
  of learning for both networks (critic on s', δ, RTRL traces and gradients, eligibility traces, ObGD);
  the stream's step between the two is not timed.

The reference in the same process is the same agent without recurrence (``cell: none``, the
feed-forward baseline); the table's last column is the recurrent agent's median over it.

``critic_thread: true`` builds every agent with ``Agent(..., critic_thread=True)`` (the critic's learning
pass on a helper thread, ``controller.critic_thread``). Back to back, the next ``act`` then waits for the
helper's pass, so the thread helps little; ``between_ticks_us`` spins (busy-waits, as ``env.step`` would
keep the core busy) that many microseconds after each ``learn``, outside the timed region, to stand in
for the simulator. Rows then say ``[critic thread]`` and ``[+N us between ticks]``.
"""
import dataclasses
import sys
import time
from typing import Literal

import numpy as np

from controller.config import check, check_output_path
from launch.bench import format_table, gc_paused, machine_info, summarize, write_json
from launch.runner import Runner

AGENT_SIZES = {  # design.md §4.7: (observation size, encoder width, units n, head width)
    "paper": (17, 64, 192, 64),
    "small": (8, 32, 32, 32),
    "large": (64, 128, 512, 128),
}
ACTION_DIM = 6
STREAM = 1024          # observations and rewards drawn once and replayed
_NO_INFO = {}


@dataclasses.dataclass(frozen=True)
class AgentBenchConfig:
    """What `rtu-control bench agent` measures. Every field can be set in YAML or with --set key=value."""
    calls: int = 10_000                 # timed ticks per case (after warm-up)
    warmup_calls: int = 1_000
    sizes: tuple[Literal["paper", "small", "large"], ...] = ("paper", "small", "large")
    dtypes: tuple[Literal["float32", "float64"], ...] = ("float32", "float64")
    cells: tuple[Literal["rtu-linear", "rtu-nonlinear", "lru", "none"], ...] = ("rtu-linear", "none")
    seed: int = 0
    critic_thread: bool = False         # the critic's learning pass on a helper thread (needs 2 CPUs)
    between_ticks_us: float = 0.0       # busy-wait after each learn, untimed (stands in for env.step)
    output: str = "results/bench_agent.json"

    def __post_init__(self):
        check(self.calls >= 100, "calls", "an integer >= 100", self.calls)
        check(self.warmup_calls >= 1, "warmup_calls", "an integer >= 1", self.warmup_calls)
        check(len(self.sizes) > 0, "sizes", "at least one of paper, small, large", self.sizes)
        check(len(self.dtypes) > 0, "dtypes", "at least one of float32, float64", self.dtypes)
        check(len(self.cells) > 0, "cells", "at least one cell kind", self.cells)
        check(isinstance(self.critic_thread, bool), "critic_thread", "true or false", self.critic_thread)
        check(0.0 <= self.between_ticks_us <= 1e5, "between_ticks_us", "a number of microseconds in [0, 1e5]",
              self.between_ticks_us)
        check(self.seed >= 0, "seed", "an integer >= 0", self.seed)
        check(self.output != "", "output", "a file path for the results (JSON)", self.output)
        check_output_path(self.output, "output", "file")


def make_agent(size, dtype, cell, seed, critic_thread=False):
    import gymnasium as gym

    from controller.agent import Agent, AgentConfig

    n_obs, enc, n, head = AGENT_SIZES[size]
    obs_space = gym.spaces.Box(-np.inf, np.inf, (n_obs,), np.float64)
    act_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
    cfg = AgentConfig(cell=cell, n_units=n, encoder_width=enc, head_width=head, dtype=dtype)
    return Agent(obs_space, act_space, cfg, seed=seed, critic_thread=critic_thread)


def spin(microseconds):
    """Busy-wait (keeps the core busy, like a simulator step) for the given time in microseconds."""
    if microseconds <= 0:
        return
    clock = time.perf_counter_ns
    end = clock() + int(microseconds * 1e3)
    while clock() < end:
        pass


class ReplayedStream:
    """Stands in for the env in this benchmark: ``observations`` (float64 (STREAM, n_obs)) and ``rewards``
    (float64 (STREAM,)), drawn once, replayed in a cycle from row 1; no episode ends. ``step(action)``
    returns (the next row, this row's reward, False, False, {}) and allocates only that tuple."""

    def __init__(self, observations, rewards):
        self.rows, self.rewards = list(observations), list(rewards)   # row views and scalars, made once
        self.k = 1

    def reset(self, seed=None):
        return self.rows[self.k], {}

    def step(self, action):
        k = self.k
        self.k = following = (k + 1) % STREAM
        return self.rows[following], self.rewards[k], False, False, _NO_INFO


class TickTimes:
    """Per-tick durations filled by the runner's ``on_tick`` hook: ``ns`` float64 (calls,) in
    nanoseconds of the act (``act``) or of act + learn (``act_learn``); ``us()`` the same in µs."""

    def __init__(self, calls):
        self.ns = np.empty(calls)
        self.filled = 0

    def act(self, act_ns, env_ns, learn_ns):
        self.ns[self.filled] = act_ns
        self.filled += 1

    def act_learn(self, act_ns, env_ns, learn_ns):
        self.ns[self.filled] = act_ns + learn_ns
        self.filled += 1

    def us(self):
        return self.ns[:self.filled] / 1e3


def bench_agent(size, dtype, cell, cfg):
    """{"act": summary, "act+learn": summary, "critic_thread": bool} for one agent configuration (times in
    microseconds; ``critic_thread``: whether the agent really ran its critic on a helper thread).

    The agent runs on a ``ReplayedStream`` in ``launch.runner.Runner``: ``warmup_calls`` ticks, then
    ``calls`` ticks timing the act, then ``calls`` ticks timing act + learn (garbage collector paused).
    ``between_ticks_us`` > 0 spins that long after every tick, untimed."""
    agent = make_agent(size, dtype, cell, cfg.seed, cfg.critic_thread)
    try:
        rng = np.random.default_rng(cfg.seed)
        stream = ReplayedStream(rng.standard_normal((STREAM, agent.n_obs)), rng.standard_normal(STREAM))
        runner = Runner(agent, stream, stream.reset()[0])
        pause = (lambda: spin(cfg.between_ticks_us)) if cfg.between_ticks_us > 0 else None
        out = {"critic_thread": agent.uses_critic_thread}
        runner.run(cfg.warmup_calls, after_tick=pause)
        act_times, tick_times = TickTimes(cfg.calls), TickTimes(cfg.calls)
        runner.run(runner.step + cfg.calls, on_tick=act_times.act, after_tick=pause)
        with gc_paused():
            runner.run(runner.step + cfg.calls, on_tick=tick_times.act_learn, after_tick=pause)
        out["act"] = summarize(act_times.us())
        out["act+learn"] = summarize(tick_times.us())
        agent.sync()
        if agent.stats["refused"] or not np.all(np.isfinite(agent.actor.P)):
            raise RuntimeError(f"bench agent: the agent refused updates or diverged: {agent.stats}")
        return out
    finally:
        agent.close()


def run(cfg, echo=print):
    """Run the agent benchmark; returns the result dict (also written to cfg.output)."""
    rows = []
    for size in cfg.sizes:
        for dtype in cfg.dtypes:
            medians = {}
            results = {}
            threaded = {}
            for cell in cfg.cells:
                echo(f"  timing agent {cell:<14} {size:<6} {dtype} ...")
                results[cell] = bench_agent(size, dtype, cell, cfg)
                threaded[cell] = results[cell].pop("critic_thread")
                medians[cell] = {m: s["median_us"] for m, s in results[cell].items()}
            for cell, res in results.items():
                suffix = (" [critic thread]" if threaded[cell] else "") + (
                    f" [+{cfg.between_ticks_us:g} us between ticks]" if cfg.between_ticks_us > 0 else "")
                for mode, s in res.items():
                    ref = medians.get("none", {}).get(mode)
                    ratio = s["median_us"] / ref if ref and cell != "none" else None
                    n_obs, enc, n, head = AGENT_SIZES[size]
                    rows.append({"case": f"agent {cell} {mode}{suffix}", "size": size, "dtype": dtype,
                                 "obs": n_obs, "encoder": enc, "n": n, "head": head, **s,
                                 "speedup": ratio})
    result = {"config": dataclasses.asdict(cfg), "machine": machine_info(), "rows": rows,
              "command": " ".join(["rtu-control"] + sys.argv[1:]) if sys.argv else "rtu-control bench agent"}
    echo("")
    echo(format_table(rows).replace("× numpy", "× ff").replace("  × ff", "   × ff"))
    echo("(last column: median of the recurrent agent / median of the feed-forward agent, same size)")
    path = write_json(cfg.output, result)
    echo(f"\nwrote {path}")
    return result
