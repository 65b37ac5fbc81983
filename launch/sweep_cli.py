"""The `rtu-control sweep` subcommand's arguments and handler (the command itself: ``launch.sweep``)."""
import sys


def add_sweep_parser(sub, describe, add_config_arguments, packaged):
    p = sub.add_parser("sweep", help="many train runs from one file (local pool or Ray), resumable, with a report",
                       **describe(
        "Expand a sweep file (a grid and named variants over any train key) into trials, each an ordinary "
        "'rtu-control train' run in its own process and results folder, and run those not done yet: on a "
        "local pool (--workers, default the usable cores) or on Ray (--backend ray). Re-running the same "
        "command skips done trials, resumes interrupted ones and retries failed ones. At the end, or with "
        "--report SWEEP_DIR alone, writes the report: per task x variant at each budget, mean ± standard "
        "error and the interquartile mean with a bootstrap 95 % interval, learning curves with bands "
        "(docs/sweeps.md). Exit status: 0 when every trial is done, 1 when one failed or the sweep was "
        "stopped, 2 for bad input.",
        ["rtu-control sweep",
         "rtu-control sweep --workers 1 --set output=results/sweeps/demo1",
         "rtu-control sweep --backend ray --set ray_address=auto",
         "rtu-control sweep --report results/sweeps/demo --set report.budgets=[10000,20000]"],
        "Packaged sweeps: sweep.yaml (the default: 2 variants x 2 CartPole tasks x 3 seeds of 20,000 steps)"
        + (f"; --config NAME for launch/configs/sweep_<NAME>.yaml: {', '.join(packaged)}" if packaged else "")
        + "."))
    add_config_arguments(p, "the packaged configs/sweep.yaml", "workers=2")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="trials at once on the local backend (default: the sweep file's workers, 0 = the usable cores)")
    p.add_argument("--backend", choices=("local", "ray"), default=None,
                   help="local (default): processes on this machine; ray: Ray tasks (pip install 'rtu-control[sweep]')")
    p.add_argument("--report", default=None, metavar="SWEEP_DIR",
                   help="only write the report of an existing sweep folder (report.* keys via --set)")
    p.set_defaults(func=cmd_sweep)
    return p


def sweep_overrides(args):
    """--set values plus --workers / --backend as overrides."""
    extra = ([f"workers={args.workers}"] if args.workers is not None else []) + \
        ([f"backend={args.backend}"] if args.backend else [])
    return list(args.overrides) + extra


def sweep_config_path(args):
    """The sweep file of a parsed command line (a path, or a packaged launch/configs/<name>.yaml)."""
    from controller.config import ConfigError
    from launch.cli import resolve_config
    if args.report is not None:
        if args.config is not None or args.workers is not None or args.backend:
            raise ConfigError("--report: it reads the sweep folder; give only report.* keys with --set")
        return None
    if args.config is None:
        from launch.cli import packaged_config
        return packaged_config("sweep.yaml")
    return resolve_config(args.config, "sweep")


def cmd_sweep(args):
    from launch import sweep
    path = sweep_config_path(args)
    if path is None:
        try:
            return sweep.main_report(args.report, args.overrides)
        except (FileNotFoundError, ValueError) as err:
            print(f"rtu-control sweep: error: {err}", file=sys.stderr)
            return 2
    try:
        return sweep.main_sweep(path, sweep_overrides(args), echo=lambda line: print(line, flush=True))
    except RuntimeError as err:     # the Ray backend without Ray
        print(f"rtu-control sweep: error: {err}", file=sys.stderr)
        return 2
