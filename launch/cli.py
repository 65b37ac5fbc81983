"""The `rtu-control` console script: one entry point, one subcommand per job.

    rtu-control bench  [--config FILE] [--set key=value ...]   cell latency benchmark (launch.bench)
    rtu-control bench agent [...]                               agent latency benchmark (launch.bench_agent)
    rtu-control bench learning [...]                            learning curves, seeds x cells (launch.learning)
    rtu-control bench --assert BUDGETS.yaml [--record FILE]     latency budgets check (launch.bench_assert)
    rtu-control warmup                                          compile every kernel for this machine
    rtu-control train  [--config FILE|NAME] [--set key=value ...] [--resume RUN_DIR]
                                                                online learning in simulation (launch.train)
    rtu-control deploy [--config FILE] [--set key=value ...]    the real-time loop on a robot adapter
                                                                (launch.deploy; default the UDP emulator)
    rtu-control sweep [--config FILE] [--workers N] [--backend local|ray] | --report SWEEP_DIR
                                                                many train runs, resumable, one report
                                                                (launch.sweep)
    rtu-control plot RUN_DIR [RUN_DIR ...] [--compare FILE]     plots of training runs (launch.plot);
                                                                of bench learning folders with --compare
    rtu-control emulator [--config FILE] [--set key=value ...]  robot emulator over UDP (hardware.emulator)
    rtu-control --version                                       the installed package's version

Each job reads a YAML config (default: the packaged ``launch/configs/<job>.yaml``) plus dotted
``--set`` overrides, validated once into a frozen dataclass; a bad value exits with status 2 and a
message naming the file, the key, what was expected and what was found. Each subcommand's --help says
what it does, lists its packaged configs and shows examples; ``config_of(args)`` validates a parsed
command line without running it (the examples are tested through it).
"""
import argparse
import os
import sys
import textwrap
from importlib import resources
from pathlib import Path

from controller.config import ConfigError, add_config_arguments, load_config, read_yaml


def packaged_config(name):
    """Path of a YAML file shipped in launch/configs."""
    return resources.files("launch") / "configs" / name


def _add_config_arguments(parser, default_name, example):
    add_config_arguments(parser, f"the packaged configs/{default_name}", example)


_BENCH = {  # target -> (module, config class name, packaged default)
    "cells": ("launch.bench", "BenchConfig", "bench.yaml"),
    "agent": ("launch.bench_agent", "AgentBenchConfig", "bench_agent.yaml"),
    "learning": ("launch.learning", "LearningBenchConfig", "bench_learning.yaml"),
}


def _bench_config(args):
    """(module, path, validated config) of ``rtu-control bench <target>``."""
    import importlib

    module_name, cls_name, default = _BENCH[args.target]
    module = importlib.import_module(module_name)
    path = resolve_config(args.config, "bench") if args.config else packaged_config(default)
    return module, path, load_config(getattr(module, cls_name), path, args.overrides)


def _assert_arguments(args):
    """ConfigError when --assert / --record are combined with what they replace (a target, --config)."""
    if args.record is not None and args.assert_budgets is None:
        raise ConfigError("--record: expected --assert BUDGETS.yaml too (the budgets file names the agent "
                          "and the measurement a baseline records)")
    if args.assert_budgets is not None:
        if args.target != "cells":
            raise ConfigError(f"--assert: expected no target (it measures the budgets file's agent), "
                              f"found {args.target!r}")
        if args.config is not None:
            raise ConfigError("--assert: the budgets file is the config; pass changes with --set, "
                              f"found --config {args.config}")


def _budgets_path(args):
    """The --assert file: an existing path, else a packaged launch/configs/ file of that name
    (``--assert budgets`` -> the packaged example budgets.yaml)."""
    value = args.assert_budgets
    if Path(value).exists():
        return Path(value)
    for name in (value, f"{value}.yaml"):
        if not _looks_like_path(value) and packaged_config(name).is_file():
            return Path(packaged_config(name))
    raise ConfigError(f"--assert {value}: no such file" + ("" if _looks_like_path(value) else
                      f", and no packaged launch/configs/{value}.yaml (packaged: budgets)"))


def _cmd_bench(args):
    _assert_arguments(args)
    if args.assert_budgets is not None:
        from launch.bench_assert import main_assert
        return main_assert(_budgets_path(args), args.overrides, args.record,
                           echo=lambda line: print(line, flush=True))
    bench, path, cfg = _bench_config(args)
    print(f"rtu-control bench {args.target}: config {path}")
    result = bench.run(cfg)
    return result.get("status", 0) if isinstance(result, dict) else 0   # learning: its sweep's status


def _cmd_warmup(args):
    from controller.kernels import cache_dirs
    from controller.warmup import kernels_cached, warm_up_agents, warm_up_cells

    full = kernels_cached("float32", False) and kernels_cached("float64", True)
    print(f"rtu-control warmup: numba's cache in {cache_dirs()[-1]} "
          + ("holds the kernels: loading them (seconds)" if full else
             "lacks some kernels: compiling them (an empty cache takes minutes)"), flush=True)

    def echo(line):
        print(line, flush=True)

    count, seconds = warm_up_cells(echo=echo)
    print(f"{count} cell configurations ready in {seconds:.1f} s", flush=True)
    count, seconds = warm_up_agents(echo=echo)
    print(f"{count} agent configurations ready in {seconds:.1f} s (cached for this machine)", flush=True)
    return 0


def packaged_names(prefix):
    """Names of the packaged configs of one job: ``train`` -> ["cartpole_p", ...] for the files
    launch/configs/train_<name>.yaml (the job's own <prefix>.yaml is the default, not listed)."""
    files = resources.files("launch") / "configs"
    return sorted(p.name[len(prefix) + 1:-len(".yaml")] for p in files.iterdir()
                  if p.name.startswith(f"{prefix}_") and p.name.endswith(".yaml"))


def _looks_like_path(value):
    return os.sep in value or value.endswith((".yaml", ".yml"))


def _check_not_empty(path):
    """ConfigError when a --config file holds no settings (an empty file is more likely a mistake than
    a request for the defaults, which leaving out --config gives)."""
    if Path(path).is_file() and not read_yaml(path):
        raise ConfigError(f"{path}: no settings (an empty YAML file); expected a mapping of config keys "
                          f"(leave out --config for the defaults)")


def resolve_config(value, prefix):
    """A --config value as a path: an existing file, else a packaged configs/ file named value,
    value.yaml or <prefix>_value.yaml (e.g. ``--config hopper_p`` -> configs/train_hopper_p.yaml).
    ConfigError when a path (with a separator or a .yaml suffix) does not exist, or no packaged
    config has that name."""
    if value is None:
        return value
    if Path(value).exists():
        _check_not_empty(value)
        return value
    if _looks_like_path(value):
        raise ConfigError(f"--config {value}: no such file")
    for name in (value, f"{value}.yaml", f"{prefix}_{value}", f"{prefix}_{value}.yaml"):
        candidate = packaged_config(name)
        if candidate.is_file():
            return candidate
    names = ", ".join(packaged_names(prefix)) or "none"
    raise ConfigError(f"--config {value}: no such file, and no packaged launch/configs/{prefix}_{value}.yaml "
                      f"(packaged names: {names})")


def _train_path(args):
    """The YAML file of ``rtu-control train`` (None with --resume: the run's own config.yaml is used)."""
    if args.resume is not None:
        if args.config is not None:
            raise ConfigError("--resume: the run's own config.yaml is used; pass changes with --set")
        return None
    return resolve_config(args.config, "train") if args.config else packaged_config("train.yaml")


def _cmd_train(args):
    from launch import train

    path = _train_path(args)
    try:
        # flushed: the kernel message must show before a compile of minutes, also through a pipe
        train.main_train(path, args.overrides, resume=args.resume, echo=lambda line: print(line, flush=True))
    except train.TrainError as err:
        print(f"rtu-control train: error: {err}", file=sys.stderr)
        return 2
    return 0


def _cmd_plot(args):
    from launch.plot import main_plot

    try:
        main_plot(args.run_dirs, compare=args.compare)
    except (FileNotFoundError, ValueError) as err:
        print(f"rtu-control plot: error: {err}", file=sys.stderr)
        return 2
    return 0


def _deploy_path(args):
    return resolve_config(args.config, "deploy") if args.config else packaged_config("deploy_emulator.yaml")


def _emulator_path(args):
    return resolve_config(args.config, "emulator") if args.config else packaged_config("emulator.yaml")


def _cmd_deploy(args):
    from launch import deploy

    return deploy.run(config_of(args), resume=args.resume)


def _cmd_emulator(args):
    from hardware import emulator

    return emulator.run(config_of(args))


def config_of(args):
    """The validated config object a parsed command line would run with (ConfigError when invalid),
    without running anything; None for ``plot``, ``warmup`` and ``sweep --report``, which take no config."""
    if args.command == "train":
        from launch.train import load_train_config
        path = _train_path(args)
        if path is None:
            path = Path(args.resume) / "config.yaml"
        return load_train_config(path, args.overrides)
    if args.command == "deploy":
        from launch.deploy import load_deploy_config, load_resume_config
        overrides = list(args.overrides) + ([f"agent_from={args.agent}"] if args.agent else [])
        if args.resume is not None:
            if args.config is not None or args.agent:
                raise ConfigError("--resume: the run's own config.yaml and checkpoints are used; pass "
                                  "changes with --set (not --config or --agent)")
            return load_resume_config(args.resume, overrides)
        return load_deploy_config(_deploy_path(args), overrides)
    if args.command == "emulator":
        from hardware.emulator import EmulatorConfig
        return load_config(EmulatorConfig, _emulator_path(args), args.overrides)
    if args.command == "sweep":
        from launch.sweep_cli import sweep_config_path, sweep_overrides
        from launch.sweep_config import load_sweep_config
        path = sweep_config_path(args)
        return None if path is None else load_sweep_config(path, sweep_overrides(args))
    if args.command == "bench":
        _assert_arguments(args)
        if args.assert_budgets is not None:
            from launch.latency_budgets import load_budgets
            return load_budgets(_budgets_path(args), args.overrides)[0]
        return _bench_config(args)[2]
    return None


def installed_version():
    """The installed rtu-control's version (package metadata), or a note when it is not installed."""
    from importlib import metadata
    try:
        return metadata.version("rtu-control")
    except metadata.PackageNotFoundError:
        return "(not installed: no package metadata)"


def _describe(text, examples=(), configs=""):
    """A subcommand's help body: what it does (wrapped), its packaged configs, then runnable examples."""
    parts = [textwrap.fill(text, 90)]
    if configs:
        parts.append(textwrap.fill(configs, 90))
    description = "\n\n".join(parts)
    epilog = ("examples:\n" + "\n".join(f"  {line}" for line in examples)) if examples else None
    return {"description": description, "epilog": epilog,
            "formatter_class": argparse.RawDescriptionHelpFormatter}


def build_parser():
    train_names = ", ".join(packaged_names("train"))
    parser = argparse.ArgumentParser(
        prog="rtu-control", **_describe(
            "Real-time control that keeps learning: train the streaming RTU actor-critic in simulation, "
            "deploy it in a fixed-rate loop against a robot (or the UDP robot emulator), benchmark it, "
            "plot results. 'rtu-control <command> --help' tells what each command does and which "
            "packaged configs it has.",
            ["rtu-control warmup", "rtu-control train --config cartpole_p",
             "rtu-control emulator                      # in one terminal",
             "rtu-control deploy                        # in another"]))
    parser.add_argument("--version", action="version", version=f"rtu-control {installed_version()}",
                        help="print the installed package's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("bench", help="latency of the cells (vs NumPy, torch) or of the agent; learning "
                                     "curves over seeds x cells", **_describe(
        "Benchmarks. cells (default): per-step latency of the RTU / LRU cells' step and gradient against "
        "a NumPy twin and torch GRU; agent: act + learn of the streaming actor-critic per tick; learning: "
        "learning runs over env ids x cells x seeds, summarised with their curves. Each writes its "
        "results under results/ (the config's output). --assert BUDGETS.yaml: a latency regression check "
        "of an agent (act, act + learn per tick against budgets in µs, relative to a calibration kernel "
        "timed in the same run, or to a recorded baseline): exit 0 when every budget holds, 1 when one is "
        "exceeded, 2 for bad input (docs/latency_checks.md).",
        ["rtu-control bench --set calls=2000 --set sizes=[small]",
         "rtu-control bench agent --set sizes=[paper] --set dtypes=[float32]",
         "rtu-control bench learning --set seeds=[0,1] --set steps=100000",
         "rtu-control bench --assert budgets                # exit 1 when a latency budget is exceeded",
         "rtu-control bench --assert budgets --record baseline.json --set repeats=9"],
        "Packaged configs: bench.yaml (cells), bench_agent.yaml (agent, --config agent), "
        "bench_learning.yaml (learning, --config learning); each holds its target's defaults. "
        "budgets.yaml: an example budgets file for --assert (--assert budgets)."))
    p.add_argument("target", nargs="?", choices=("cells", "agent", "learning"), default="cells",
                   help="cells (default): RTU/LRU cells; agent: the streaming actor-critic per tick; "
                        "learning: seeds x cells learning runs on env ids")
    _add_config_arguments(p, "bench.yaml, bench_agent.yaml or bench_learning.yaml", "cells=[lru]")
    p.add_argument("--assert", dest="assert_budgets", default=None, metavar="BUDGETS.yaml",
                   help="latency regression check: measure the agent the file names, print a table, exit 1 "
                        "when a budget is exceeded (docs/latency_checks.md; packaged example: budgets.yaml)")
    p.add_argument("--record", default=None, metavar="FILE",
                   help="with --assert: also write a baseline (figures, calibration, machine) to FILE, "
                        "for budgets of kind max_vs_baseline")
    p.set_defaults(func=_cmd_bench)
    p = sub.add_parser("train", help="online learning in simulation, crash-safe checkpoints, results folder",
                       **_describe(
        "Train the streaming recurrent actor-critic online on a gymnasium task, one transition at a time "
        "(act, env.step, learn), with crash-safe checkpoints and exact resume. Writes a results folder "
        "(summary.json, metrics.jsonl, monitor.csv, plots, checkpoints/) and prints its name.",
        ["rtu-control train --config cartpole_p",
         "rtu-control train --config halfcheetah_p --set steps=1000000",
         "rtu-control train --set agent.cell=none --set seed=1"],
        f"Packaged configs (--config NAME, launch/configs/train_<NAME>.yaml): {train_names}; the default "
        f"is train.yaml (HalfCheetah-P-v5, 300,000 steps)."))
    _add_config_arguments(p, "train.yaml (or a name: cartpole_p, hopper_p, ... for train_<name>.yaml)",
                          "steps=100000")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its newest valid checkpoint")
    p.set_defaults(func=_cmd_train)
    p = sub.add_parser("deploy", help="the real-time loop against a hardware adapter chosen in YAML", **_describe(
        "Run the fixed-rate real-time control loop against a robot adapter chosen in YAML (udp: the "
        "robot emulator or a robot speaking the protocol; sim: MuJoCo in-process; mock), with the safety "
        "filter between the policy and every write; the agent acts and learns on every tick. The default "
        "config talks to 'rtu-control emulator' on 127.0.0.1:47800: start that first. Exit status: 0 "
        "when the run ends (done, or SIGINT/SIGTERM), 1 when it stops on a fault (named on stderr), 2 for "
        "bad input.",
        ["rtu-control deploy --set loop.duration=30",
         "rtu-control deploy --set adapter=sim --set loop.duration=5",
         "rtu-control deploy --set policy.kind=fixed --set loop.rate_hz=200",
         "rtu-control deploy --config halfcheetah_p --agent results/train/RUN_DIR --set learn=false"],
        "Packaged configs: deploy_emulator.yaml (the default, --config emulator), deploy_halfcheetah_p.yaml "
        "(--config halfcheetah_p: a HalfCheetah-P agent from train at the env's 20 Hz, against "
        "'rtu-control emulator --config halfcheetah')."))
    _add_config_arguments(p, "deploy_emulator.yaml", "loop.duration=30")
    p.add_argument("--agent", default=None, metavar="SOURCE",
                   help="start from a trained agent: a checkpoint file, or a results folder of 'rtu-control "
                        "train' or 'deploy' (its newest checkpoint); same as --set agent_from=SOURCE")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the deploy run in RUN_DIR from its newest checkpoint (a new episode)")
    p.set_defaults(func=_cmd_deploy)
    p = sub.add_parser("emulator", help="serve a MuJoCo robot over UDP like firmware (for deploy)", **_describe(
        "Serve a MuJoCo robot over UDP at a fixed rate as robot firmware would, for 'rtu-control deploy': "
        "sensor messages out, validated commands in, its own safe command when commands stop. Runs until "
        "SIGINT/SIGTERM (or duration).",
        ["rtu-control emulator", "rtu-control emulator --set rate_hz=1000 --set duration=60",
         "rtu-control emulator --config halfcheetah"],
        "Packaged configs: emulator.yaml (the default: HalfCheetah-v5 at 500 Hz on 127.0.0.1:47800), "
        "emulator_halfcheetah.yaml (--config halfcheetah: HalfCheetah-v5 at gymnasium's own 20 Hz, 5 "
        "physics steps of 10 ms per tick, the dynamics 'train' learns on)."))
    _add_config_arguments(p, "emulator.yaml", "rate_hz=1000")
    p.set_defaults(func=_cmd_emulator)
    from launch.sweep_cli import add_sweep_parser
    add_sweep_parser(sub, _describe, add_config_arguments, packaged_names("sweep"))
    p = sub.add_parser("plot", help="learning-curve and latency plots of training runs", **_describe(
        "Draw learning_curve.png and latency.png into each results folder of 'rtu-control train' (for a "
        "folder of 'rtu-control sweep': its report, as 'sweep --report'); with "
        "--compare FILE also one figure of the runs' moving averages, or, for output folders of "
        "'rtu-control bench learning', one panel per task (masked and full observation together). "
        "Needs matplotlib."))
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="results folder(s) of rtu-control train, or output folders of rtu-control bench "
                        "learning (with --compare)")
    p.add_argument("--compare", default=None, metavar="FILE",
                   help="also draw the runs' moving averages on one figure, written to FILE (bench learning "
                        "folders: one panel per task, masked and full observation together)")
    p.set_defaults(func=_cmd_plot)
    p = sub.add_parser("warmup", help="compile every kernel for this machine before a run", **_describe(
        "Compile every numba kernel (the cells, and the agent for each cell kind, dtype and action kind) "
        "into numba's on-disk cache for this machine, so that later runs start without compiling. "
        "Prints one line per configuration with its time.",
        ["rtu-control warmup"]))
    p.set_defaults(func=_cmd_warmup)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as err:
        print(f"rtu-control {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rtu-control {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
