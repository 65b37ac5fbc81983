"""The measurement behind `rtu-control bench --assert`: the agent's per-tick times and a calibration kernel,
interleaved in one process.

The calibration kernel (``calibration_pass``) is a fixed numba loop that is no part of the controller: on
two float32 slabs of 256 x 384 it decays a trace (z <- 0.9 z + x) and takes a matrix-vector product
through tanh, the kind of work an agent tick does (RTRL and eligibility trace updates, dense layers), on
a working set of 768 KiB, the same cache level as the paper-size agent's arrays (1.2 MiB, actor and
critic). One call takes about 20 µs on the 2-core reference machine. It scales with the machine (clock, vector width,
cache, the Python -> numba call) but not with the controller's code, so a regression in the controller
cannot slow the calibration too and hide itself (docs/latency_checks.md, "Calibration").

``measure`` runs ``warmup_ticks`` untimed ticks, then ``repeats`` blocks of ``ticks`` timed ticks. Inside a
block the calibration is interleaved finely: after every ``calibration_every`` ticks (outside the timed
act and learn) a burst of ``CALIBRATION_BURST`` calls runs and all but its first call are timed (the first
reloads the kernel's slabs, which the agent pushed out of the cache); the tick right after a burst is not
counted either (the burst pushed the agent's arrays out). Agent and calibration are thus timed in the same
milliseconds: on a shared machine, whose speed changes with what the other cores do from one scheduler
slice to the next, both see the same mixture of fast and slow moments. Per block: the percentiles of act
and of act + learn (µs) and each divided by the block's calibration median; a figure is the median of its
per-block values (``us``) and of its per-block ratios (``ratio``), so a block hit by a burst of load is
outvoted.
"""
import math
import time

import numpy as np

from controller.buffers import aligned_zeros
from controller.kernels.jit import kernel
from launch.bench import gc_paused
from launch.bench_agent import STREAM, ReplayedStream
from launch.latency_budgets import FIGURES
from launch.runner import Runner

CALIBRATION_SHAPE = (256, 384)
CALIBRATION_ID = "trace-matvec-f32-256x384-v1"   # changes when the kernel or its sizes change
CALIBRATION_BURST = 3                            # calls per burst; the first is not timed


@kernel
def calibration_pass(z, w, x, y):
    """One calibration call: z <- 0.9 z + x row by row and y_i = tanh(sum_j w_ij x_j), float32 (rows, cols)
    slabs z, w, (cols,) x and (rows,) y. z stays bounded (it tends to 10 x), so no denormals appear."""
    rows, cols = z.shape
    decay = np.float32(0.9)
    for i in range(rows):
        s = np.float32(0.0)
        for j in range(cols):
            z[i, j] = decay * z[i, j] + x[j]
            s += w[i, j] * x[j]
        y[i] = np.tanh(s)


class Calibration:
    """The calibration kernel's arrays (fixed contents, seed 0) and one call of it."""

    def __init__(self):
        rng = np.random.default_rng(0)
        rows, cols = CALIBRATION_SHAPE
        # cache-line aligned (controller.buffers): NumPy's placement would vary the time per process
        self.z, self.w = aligned_zeros((rows, cols), np.float32), aligned_zeros((rows, cols), np.float32)
        self.x, self.y = aligned_zeros(cols, np.float32), aligned_zeros(rows, np.float32)
        self.w[:] = rng.standard_normal((rows, cols)) / math.sqrt(cols)
        self.x[:] = rng.standard_normal(cols)

    def __call__(self):
        calibration_pass(self.z, self.w, self.x, self.y)


def make_agent(spec, seed=0):
    """The agent of an ``AgentSpec``: spaces from ``gymnasium.make(env_id)`` (closed at once) or a Box of
    obs_dim observations and a Box of action_dim actions in [-1, 1]."""
    import gymnasium as gym

    from controller.agent import Agent

    if spec.env_id:
        import envs  # noqa: F401  (registers the -P / -V and memory-task ids)

        env = gym.make(spec.env_id, **spec.env_kwargs)
        obs_space, act_space = env.observation_space, env.action_space
        env.close()
    else:
        obs_space = gym.spaces.Box(-np.inf, np.inf, (spec.obs_dim,), np.float64)
        act_space = gym.spaces.Box(-1.0, 1.0, (spec.action_dim,), np.float32)
    return Agent(obs_space, act_space, spec.agent, seed=seed)


class _Block:
    """One timed block: the runner's ``on_tick`` hook stores act and learn times (ns), its ``after_tick``
    hook runs a calibration burst every ``every`` ticks and stores the burst's timed calls (ns)."""

    def __init__(self, ticks, every, calibration):
        self.act, self.learn = np.empty(ticks), np.empty(ticks)
        self.counted = np.ones(ticks, bool)
        self.cal = np.empty((ticks // every + 1) * (CALIBRATION_BURST - 1))
        self.filled = self.cal_filled = 0
        self.every, self.calibration = every, calibration

    def on_tick(self, act_ns, env_ns, learn_ns):
        self.act[self.filled] = act_ns
        self.learn[self.filled] = learn_ns
        self.filled += 1

    def after_tick(self):
        if self.filled % self.every or self.filled == len(self.act):
            return
        clock, calibration, cal = time.perf_counter_ns, self.calibration, self.cal
        calibration()                                   # reloads the slabs: not counted
        for _ in range(CALIBRATION_BURST - 1):
            t0 = clock()
            calibration()
            cal[self.cal_filled] = clock() - t0
            self.cal_filled += 1
        self.counted[self.filled] = False               # the next tick starts with a cold cache

    def figures(self):
        """({figure: µs}, calibration median µs) of this block: p50 / p90 / p99 of act and of act + learn
        over the counted ticks."""
        keep = self.counted[:self.filled]
        act = self.act[:self.filled][keep] / 1e3
        tick = act + self.learn[:self.filled][keep] / 1e3
        out = {}
        for what, values in (("act", act), ("act_learn", tick)):
            for stat, q in (("p50", 50), ("p90", 90), ("p99", 99)):
                out[f"{what}_{stat}"] = float(np.percentile(values, q))
        return out, float(np.median(self.cal[:self.cal_filled])) / 1e3


def measure(cfg, spec, wrap_agent=None):
    """Measure the agent of ``spec`` as the module docstring says, sizes from ``cfg`` (BudgetsConfig).

    ``wrap_agent`` (optional) maps the agent to the object whose act / learn are timed (a test or a
    study makes a deliberately slower build with it). Returns {"figures": {figure: {"us", "ratio",
    "blocks_us", "blocks_ratio"}}, "calibration_us": median of the blocks' calibration medians,
    "calibration_blocks_us": [...], "ticks", "repeats"}; times in µs, ratios without unit."""
    agent = make_agent(spec, cfg.seed)
    try:
        timed = wrap_agent(agent) if wrap_agent is not None else agent
        rng = np.random.default_rng(cfg.seed)
        stream = ReplayedStream(rng.standard_normal((STREAM, agent.n_obs)), rng.standard_normal(STREAM))
        runner = Runner(timed, stream, stream.reset()[0])
        calibration = Calibration()
        calibration()                                   # compiles or loads the kernel
        runner.run(cfg.warmup_ticks)
        blocks, cal = [], []
        for _ in range(cfg.repeats):
            block = _Block(cfg.ticks, cfg.calibration_every, calibration)
            with gc_paused():
                runner.run(runner.step + cfg.ticks, on_tick=block.on_tick, after_tick=block.after_tick)
            figures, cal_us = block.figures()
            blocks.append(figures)
            cal.append(cal_us)
        if agent.stats["refused"] or not np.all(np.isfinite(agent.actor.P)):
            raise RuntimeError(f"bench --assert: the agent refused updates or diverged: {agent.stats}")
    finally:
        agent.close()
    figures = {}
    for name in FIGURES:
        us = [b[name] for b in blocks]
        ratios = [b[name] / c for b, c in zip(blocks, cal)]
        figures[name] = {"us": float(np.median(us)), "ratio": float(np.median(ratios)),
                         "blocks_us": us, "blocks_ratio": ratios}
    return {"figures": figures, "calibration_us": float(np.median(cal)), "calibration_blocks_us": cal,
            "ticks": cfg.ticks, "repeats": cfg.repeats}
