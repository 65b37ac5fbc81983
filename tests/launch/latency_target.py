"""Study script (not a test): does `rtu-control bench --assert` fail a build that is 2x slower and pass one
that is not, try after try, on a loaded machine? (issue 22, item 2; results in docs/latency_checks.md)

    python tests/launch/latency_target.py BUDGETS.yaml --tries 20 [--factor 2] [--output FILE.json]
                                          [--set KEY=VALUE ...]   (passed on to every check)

Each try is a fresh process running the check of BUDGETS.yaml, as a CI job would: normal and slowed
tries alternate (normal, slow, normal, ...), so a change of the machine's load hits both alike. The slowed
build is the same agent wrapped by ``SlowedAgent``: after each real act and learn call it busy-waits
until ``factor`` times that call's duration has passed since it began, so both take ``factor`` times
as long (plus the wrapper's own Python call, a fraction of a microsecond). Prints one line per try and the pass / fail counts; writes them to --output.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class SlowedAgent:
    """``agent`` with act and learn each taking ``factor`` times as long: a "slower build" for the check.
    Each call busy-waits (keeps the core busy, as slower code would) until ``factor`` times the real
    call's duration has passed since the call began."""

    def __init__(self, agent, factor=2.0):
        self.agent, self.factor = agent, factor

    def act(self, obs):
        clock = time.perf_counter_ns
        t0 = clock()
        action = self.agent.act(obs)
        end = t0 + int(self.factor * (clock() - t0))
        while clock() < end:
            pass
        return action

    def learn(self, reward, obs, terminated, truncated):
        clock = time.perf_counter_ns
        t0 = clock()
        self.agent.learn(reward, obs, terminated, truncated)
        end = t0 + int(self.factor * (clock() - t0))
        while clock() < end:
            pass


def one_try(budgets, kind, factor, output, overrides):
    """Child process: the check of ``budgets`` on the normal or the slowed build; its exit status."""
    from launch.bench_assert import main_assert

    wrap = (lambda agent: SlowedAgent(agent, factor)) if kind == "slow" else None
    return main_assert(Path(budgets), [*overrides, f"output={output}"], wrap_agent=wrap, echo=lambda line: None)


def study(budgets, tries, factor, output, overrides):
    """Parent: ``tries`` normal and ``tries`` slowed checks, alternating, each in its own process."""
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(tries):
            for kind in ("normal", "slow"):
                out = Path(tmp) / f"{kind}-{k}.json"
                t0 = time.monotonic()
                sets = [a for item in overrides for a in ("--set", item)]
                status = subprocess.run([sys.executable, __file__, str(budgets), "--one", kind, *sets,
                                         "--factor", str(factor), "--child-output", str(out)], check=False).returncode
                seconds = time.monotonic() - t0
                result = json.loads(out.read_text()) if out.is_file() else {}
                ratios = {r["figure"] + " " + r["limit"]: r["measured"] for r in result.get("rows", [])}
                cal_us = result.get("measured", {}).get("calibration_us", float("nan"))
                tick_us = result.get("measured", {}).get("figures", {}).get("act_learn_p50", {}).get("us")
                load = result.get("machine", {}).get("load_average", [float("nan")])[0]
                records.append({"try": k, "build": kind, "status": status, "seconds": seconds,
                                "measured": ratios, "load_1min": load, "calibration_us": cal_us,
                                "act_learn_p50_us": tick_us})
                shown = "  ".join(f"{name} {value:.3f}" for name, value in ratios.items())
                print(f"try {k:2d} {kind:<6} exit {status}  {seconds:4.1f} s  load {load:.2f}  cal {cal_us:.2f} µs"
                      f"  act+learn p50 {tick_us or float('nan'):.1f} µs  {shown}", flush=True)
    normal = [r["status"] for r in records if r["build"] == "normal"]
    slow = [r["status"] for r in records if r["build"] == "slow"]
    summary = {"normal_passed": normal.count(0), "slow_failed": slow.count(1), "tries": tries,
               "factor": factor, "budgets": str(budgets), "overrides": overrides,
               "load_average_at_end": os.getloadavg()}
    print(f"normal build passed {summary['normal_passed']}/{tries}; {factor:g}x slower build failed "
          f"{summary['slow_failed']}/{tries}")
    if output:
        Path(output).write_text(json.dumps({"summary": summary, "tries": records}, indent=2))
    return 0 if summary["normal_passed"] == tries and summary["slow_failed"] == tries else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("budgets")
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--factor", type=float, default=2.0)
    parser.add_argument("--output", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--one", choices=("normal", "slow"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-output", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        return one_try(args.budgets, args.one, args.factor, args.child_output, args.overrides)
    return study(args.budgets, args.tries, args.factor, args.output, args.overrides)


if __name__ == "__main__":
    sys.exit(main())
