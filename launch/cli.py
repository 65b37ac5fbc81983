"""The `rtu-control` console script: one entry point, one subcommand per job.

    rtu-control bench  [--config FILE] [--set key=value ...]   cell latency benchmark (launch.bench)
    rtu-control bench agent [...]                               agent latency benchmark (launch.bench_agent)
    rtu-control bench learning [...]                            learning curves, seeds x cells (launch.learning)
    rtu-control warmup                                          compile every kernel for this machine
    rtu-control train  [--config FILE|NAME] [--set key=value ...] [--resume RUN_DIR]
                                                                online learning in simulation (launch.train)
    rtu-control deploy [--config FILE] [--set key=value ...]    the real-time loop on a robot adapter
                                                                (hardware.deploy; default the UDP emulator)
    rtu-control plot RUN_DIR [RUN_DIR ...] [--compare FILE]     plots of training runs (launch.plot);
                                                                of bench learning folders with --compare
    rtu-control emulator [--config FILE] [--set key=value ...]  robot emulator over UDP (hardware.emulator)

Each job reads a YAML config (default: the packaged ``launch/configs/<job>.yaml``) plus dotted
``--set`` overrides, validated once into a frozen dataclass; a bad value exits with status 2 and a
message naming the file, the key, what was expected and what was found.
"""
import argparse
import os
import sys
from importlib import resources
from pathlib import Path

from controller.config import ConfigError, load_config


def packaged_config(name):
    """Path of a YAML file shipped in launch/configs."""
    return resources.files("launch") / "configs" / name


def _add_config_arguments(parser, default_name):
    parser.add_argument("--config", default=None,
                        help=f"YAML config file (default: the packaged configs/{default_name})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value, e.g. --set calls=20000 (repeatable)")


def _cmd_bench(args):
    if args.target == "agent":
        from launch import bench_agent as bench
        path = args.config or packaged_config("bench_agent.yaml")
        cfg = load_config(bench.AgentBenchConfig, path, args.overrides)
    elif args.target == "learning":
        from launch import learning as bench
        path = args.config or packaged_config("bench_learning.yaml")
        cfg = load_config(bench.LearningBenchConfig, path, args.overrides)
    else:
        from launch import bench
        path = args.config or packaged_config("bench.yaml")
        cfg = load_config(bench.BenchConfig, path, args.overrides)
    print(f"rtu-control bench {args.target}: config {path}")
    bench.run(cfg)
    return 0


def _cmd_warmup(args):
    from controller.warmup import warm_up_agents, warm_up_cells

    count, seconds = warm_up_cells()
    print(f"compiled {count} cell configurations in {seconds:.1f} s")
    count, seconds = warm_up_agents()
    print(f"compiled {count} agent configurations in {seconds:.1f} s (cached for this machine)")
    return 0


def packaged_names(prefix):
    """Names of the packaged configs of one job: ``train`` -> ["cartpole_p", ...] for the files
    launch/configs/train_<name>.yaml (the job's own <prefix>.yaml is the default, not listed)."""
    files = resources.files("launch") / "configs"
    return sorted(p.name[len(prefix) + 1:-len(".yaml")] for p in files.iterdir()
                  if p.name.startswith(f"{prefix}_") and p.name.endswith(".yaml"))


def _looks_like_path(value):
    return os.sep in value or value.endswith((".yaml", ".yml"))


def resolve_config(value, prefix):
    """A --config value as a path: an existing file, else a packaged configs/ file named value,
    value.yaml or <prefix>_value.yaml (e.g. ``--config hopper_p`` -> configs/train_hopper_p.yaml).
    ConfigError when a path (with a separator or a .yaml suffix) does not exist, or no packaged
    config has that name."""
    if value is None or Path(value).exists():
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


def _cmd_train(args):
    from launch import train

    if args.resume is not None and args.config is not None:
        raise ConfigError("--resume: the run's own config.yaml is used; pass changes with --set")
    path = None
    if args.resume is None:
        path = resolve_config(args.config, "train") if args.config else packaged_config("train.yaml")
    try:
        train.main_train(path, args.overrides, resume=args.resume)
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


def _cmd_deploy(args):
    from hardware import deploy

    argv = ["--config", str(resolve_config(args.config, "deploy") if args.config
                            else packaged_config("deploy_emulator.yaml"))]
    for item in args.overrides:
        argv += ["--set", item]
    return deploy.main(argv)


def _cmd_emulator(args):
    from hardware import emulator

    argv = ["--config", str(resolve_config(args.config, "emulator") if args.config
                            else packaged_config("emulator.yaml"))]
    for item in args.overrides:
        argv += ["--set", item]
    return emulator.main(argv)


def build_parser():
    parser = argparse.ArgumentParser(prog="rtu-control", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("bench", help="per-step latency of the cells (vs NumPy, torch) or of the agent")
    p.add_argument("target", nargs="?", choices=("cells", "agent", "learning"), default="cells",
                   help="cells (default): RTU/LRU cells; agent: the streaming actor-critic per tick; "
                        "learning: seeds x cells learning runs on env ids")
    _add_config_arguments(p, "bench.yaml, bench_agent.yaml or bench_learning.yaml")
    p.set_defaults(func=_cmd_bench)
    p = sub.add_parser("train", help="online learning in simulation, crash-safe checkpoints, results folder")
    _add_config_arguments(p, "train.yaml (or a name: cartpole_p, hopper_p, ... for train_<name>.yaml)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its newest valid checkpoint")
    p.set_defaults(func=_cmd_train)
    p = sub.add_parser("deploy", help="the real-time loop against a hardware adapter chosen in YAML")
    _add_config_arguments(p, "deploy_emulator.yaml")
    p.set_defaults(func=_cmd_deploy)
    p = sub.add_parser("emulator", help="serve a MuJoCo robot over UDP like firmware (for deploy)")
    _add_config_arguments(p, "emulator.yaml")
    p.set_defaults(func=_cmd_emulator)
    p = sub.add_parser("plot", help="learning-curve and latency plots of training runs")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="results folder(s) of rtu-control train, or output folders of rtu-control bench "
                        "learning (with --compare)")
    p.add_argument("--compare", default=None, metavar="FILE",
                   help="also draw the runs' moving averages on one figure, written to FILE (bench learning "
                        "folders: one panel per task, masked and full observation together)")
    p.set_defaults(func=_cmd_plot)
    p = sub.add_parser("warmup", help="compile every kernel for this machine before a run")
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
