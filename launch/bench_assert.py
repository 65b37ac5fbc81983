"""`rtu-control bench --assert BUDGETS.yaml [--record BASELINE.json]`: latency regression check.

Measures the budgets file's agent (``launch.latency_measure``: act and act + learn per tick, interleaved
with a calibration kernel), checks every budget (``launch.latency_budgets``), prints a table (figure,
limit, budget, measured, ratio = measured / budget, µs, result) and writes everything to the file's
``output`` (JSON). Exit status: 0 when every budget holds, 1 when one is exceeded, 2 for bad input (the
budgets file, the baseline). ``--record FILE`` also writes a baseline for budgets of kind
``max_vs_baseline``, which are skipped in that run. docs/latency_checks.md is the user's page.
"""
import dataclasses
import os
import sys
import time

from controller.config import ConfigError, check_output_path, to_dict
from launch.bench import machine_info, write_json
from launch.latency_budgets import baseline_record, evaluate, format_rows, load_budgets, read_baseline


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of one check: ``status`` 0 (every budget holds) or 1 (one is exceeded), ``table``
    (text), ``rows`` (one dict per figure and limit) and ``result`` (everything written to JSON)."""
    status: int
    table: str
    rows: list
    result: dict


def check_budgets(path, overrides=(), record=None, wrap_agent=None, echo=print):
    """Measure and check the budgets file at ``path`` (with dotted ``--set`` overrides); ``record``: also
    write a baseline there. ``wrap_agent``: see ``latency_measure.measure``. Returns a ``Verdict``;
    raises ConfigError for bad input (before measuring when it can: the baseline is read first)."""
    from launch.latency_measure import CALIBRATION_ID, measure

    cfg, spec = load_budgets(path, overrides)
    check_output_path(cfg.output, f"{path}: output", "file")
    if record is not None:
        check_output_path(str(record), "--record", "file")
    needs = [f for f, lim in cfg.budgets.items() if lim.max_vs_baseline is not None]
    baseline = (read_baseline(cfg.baseline, spec, CALIBRATION_ID, needs, where=f"{path}: baseline")
                if needs and record is None else None)
    spaces = (f"spaces of {spec.env_id}" if spec.env_id else
              f"{spec.obs_dim} observations, {spec.action_dim} actions")
    echo(f"rtu-control bench --assert {path}: agent {spec.agent.cell} n={spec.agent.n_units} "
         f"{spec.agent.dtype} ({spaces}) from {spec.source}; {cfg.repeats} x {cfg.ticks} ticks")
    measured = measure(cfg, spec, wrap_agent)
    machine = {**machine_info(), "load_average": list(os.getloadavg())}
    rows = evaluate(cfg, measured, baseline, recording=record is not None)
    status = 1 if any(r["result"] == "FAIL" for r in rows) else 0
    table = format_rows(rows)
    result = {"budgets_file": str(path), "overrides": list(overrides), "status": status, "rows": rows,
              "measured": measured, "calibration_kernel": CALIBRATION_ID, "agent": spec.identity(),
              "agent_source": spec.source, "config": to_dict(cfg), "machine": machine,
              "baseline": cfg.baseline if baseline is not None else None,
              "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_json(cfg.output, result)
    if record is not None:
        write_json(record, baseline_record(spec, measured, CALIBRATION_ID, machine))
    return Verdict(status, table, rows, result)


def report(verdict, record=None, echo=print):
    """Print the table, the calibration and load figures, where the JSON went and the verdict."""
    m, r = verdict.result["measured"], verdict.result
    echo("")
    echo(verdict.table)
    echo(f"(ratio = measured / budget; calibration kernel {r['calibration_kernel']}: "
         f"{m['calibration_us']:.2f} µs median; load average {r['machine']['load_average'][0]:.2f} "
         f"on {r['machine']['cores']} CPUs)")
    echo(f"wrote {r['config']['output']}" + (f" and baseline {record}" if record is not None else ""))
    failed = [f"{x['figure']} {x['limit']}" for x in verdict.rows if x["result"] == "FAIL"]
    echo(f"FAIL: budget exceeded: {', '.join(failed)}" if failed else "pass: every budget holds")


def main_assert(path, overrides=(), record=None, wrap_agent=None, echo=print):
    """The exit status of ``rtu-control bench --assert path``: 0 pass, 1 a budget exceeded, 2 bad input
    (message on stderr)."""
    try:
        verdict = check_budgets(path, overrides, record, wrap_agent, echo)
    except ConfigError as err:
        print(f"rtu-control bench --assert: error: {err}", file=sys.stderr)
        return 2
    report(verdict, record, echo)
    return verdict.status
