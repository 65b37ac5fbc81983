"""The `rtu-control` console script: one entry point, one subcommand per job.

    rtu-control bench  [--config FILE] [--set key=value ...]   cell latency benchmark (launch.bench)
    rtu-control bench agent [...]                               agent latency benchmark (launch.bench_agent)
    rtu-control bench learning [...]                            learning curves, seeds x cells (launch.learning)
    rtu-control warmup                                          compile every kernel for this machine

Each job reads a YAML config (default: the packaged ``launch/configs/<job>.yaml``) plus dotted
``--set`` overrides, validated once into a frozen dataclass; a bad value exits with status 2 and a
message naming the file, the key, what was expected and what was found.
"""
import argparse
import sys
from importlib import resources

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


def build_parser():
    parser = argparse.ArgumentParser(prog="rtu-control", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("bench", help="per-step latency of the cells (vs NumPy, torch) or of the agent")
    p.add_argument("target", nargs="?", choices=("cells", "agent", "learning"), default="cells",
                   help="cells (default): RTU/LRU cells; agent: the streaming actor-critic per tick; "
                        "learning: seeds x cells learning runs on env ids")
    _add_config_arguments(p, "bench.yaml, bench_agent.yaml or bench_learning.yaml")
    p.set_defaults(func=_cmd_bench)
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
