"""What a train run reports about its loop: the latency histograms (in checkpoints and ``latency.json``),
``summary.json``'s content and the summary printed at the end."""
import math

import numpy as np

from launch import results as R


class TickLatency:
    """Preallocated log-bin histograms (``controller.loop.LogHistogram``, nanoseconds) of one loop's
    ticks: ``act``, ``learn``, ``tick`` (act + learn) and ``env`` (``env.step``)."""

    NAMES = ("act", "learn", "tick", "env")

    def __init__(self):
        from controller.loop import LogHistogram

        self.act, self.learn, self.tick, self.env = (LogHistogram() for _ in self.NAMES)

    def histograms(self):
        """(name, LogHistogram) pairs in NAMES order."""
        return tuple(zip(self.NAMES, (self.act, self.learn, self.tick, self.env)))

    def record(self, act_ns, env_ns, learn_ns):
        """Count one tick's durations (int nanoseconds); allocates nothing beyond Python ints."""
        self.act.record(act_ns)
        self.learn.record(learn_ns)
        self.tick.record(act_ns + learn_ns)
        self.env.record(env_ns)

    def state(self):
        """(arrays, meta) for a checkpoint: "run.hist_<name>" int64 (640,) copies of the bin counts and
        {name: {count, total, max, min}} (ints, min None when empty)."""
        arrays, meta = {}, {}
        for name, h in self.histograms():
            arrays[f"run.hist_{name}"] = h.counts.copy()
            meta[name] = {"count": h.count, "total": h.total, "max": h.max, "min": h.min}
        return arrays, meta

    def restore(self, arrays, meta):
        """Overwrite the histograms, in place, with a ``state()``; a name missing from ``meta`` (an
        older checkpoint without the env.step histogram) keeps its histogram as it is."""
        for name, h in self.histograms():
            if name not in meta:
                continue
            h.counts[...] = arrays[f"run.hist_{name}"]
            h.count, h.total, h.max, h.min = (meta[name][k] for k in ("count", "total", "max", "min"))

    def p99_us(self):
        """The act + learn 99th percentile in microseconds (0 before the first tick)."""
        return self.tick.quantile(0.99) / 1e3

    def latency_json(self, budget_us, pace):
        """The content of ``latency.json``: per histogram count, mean, p50, p90, p99, p999, max (µs) and
        its non-empty bins; act + learn also counts the ticks over ``budget_us``."""
        out = {"units": "microseconds", "budget_us": budget_us, "pace": pace}
        over_from = min(int(math.ceil(math.log2(budget_us * 1e3) * self.tick.PER_OCTAVE)), self.tick.BINS)
        for name, h in (("act", self.act), ("learn", self.learn), ("act_learn", self.tick),
                        ("env_step", self.env)):
            summary = h.summary_us()
            summary["p90"] = h.quantile(0.90) / 1e3
            summary["p999"] = h.quantile(0.999) / 1e3
            summary["over_budget"] = int(h.counts[over_from:].sum()) if name == "act_learn" else None
            out[name] = summary
            out[name + "_histogram"] = R.histogram_record(h)
        return out


def run_summary(cfg, stats, lat, episodes, run):
    """The content of ``summary.json``. cfg: the TrainConfig; stats: the agent's counters (updates,
    skipped, refused, non_finite_inputs); lat: ``latency_json``'s dict; episodes: monitor.csv's rows
    (return, length, seconds); run: steps, episodes, stop_reason, recent_return (float, NaN when none),
    wall_s, rollbacks, late_ticks, checkpoint (file name or None), env_state."""
    first = float(np.mean([r for r, _, _ in episodes[:10]])) if episodes else float("nan")
    return {"env_id": cfg.env_id, "learner": cfg.learner, "cell": cfg.cell, "seed": cfg.seed,
            "steps": run["steps"], "target_steps": cfg.steps, "episodes": run["episodes"],
            "stop_reason": run["stop_reason"], "recent_return": R.finite_or_none(run["recent_return"]),
            "first_returns": R.finite_or_none(first), "wall_s": run["wall_s"],
            **{k: stats[k] for k in ("updates", "skipped", "refused", "non_finite_inputs")},
            "rollbacks": run["rollbacks"], "late_ticks": run["late_ticks"], "act_learn_us": lat["act_learn"],
            "env_step_us": lat["env_step"], "critic_thread": cfg.critic_thread, "checkpoint": run["checkpoint"],
            "env_state": run["env_state"]}


def format_summary(summary, run_dir):
    """The lines `rtu-control train` prints at the end of a run (summary: the summary.json dict)."""
    lat = summary["act_learn_us"]
    first, last = summary["first_returns"], summary["recent_return"]

    def fmt(v):
        return "n/a" if v is None else f"{v:.1f}"

    learner = "" if summary.get("learner", "streaming") == "streaming" else f"{summary['learner']} "
    lines = [f"{summary['env_id']} {learner}{summary['cell']} seed {summary['seed']}: {summary['steps']} steps, "
             f"{summary['episodes']} episodes in {summary['wall_s']:.1f} s ({summary['stop_reason']})",
             f"  return: first 10 episodes {fmt(first)} -> last 10 episodes {fmt(last)}",
             f"  act+learn: p50 {lat['p50']:.0f} us, p99 {lat['p99']:.0f} us, max {lat['max']:.0f} us "
             f"(env.step p50 {summary['env_step_us']['p50']:.0f} us"
             f"{'; critic on a helper thread' if summary['critic_thread'] else ''}); "
             f"updates {summary['updates']}, refused {summary['refused']}, rollbacks {summary['rollbacks']}",
             f"  results in {run_dir}"]
    if summary["stop_reason"] != "steps reached":
        lines.append(f"  continue with: rtu-control train --resume {run_dir}")
    return "\n".join(lines)
