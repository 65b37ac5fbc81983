"""Latency benchmark of the real-time loop against the robot emulator over loopback UDP.

    python -m launch.bench_loop                          # 500 Hz, paper size, 10 s
    python -m launch.bench_loop --rate 1000 --size small
    python -m launch.bench_loop --long                   # 60 s (the documented target run)
    python -m launch.bench_loop --policy agent            # the streaming RTU agent
    python -m launch.bench_loop --policy mypkg.mod:make_policy

The emulator (``python -m hardware.emulator``, HalfCheetah-v5 at the loop's rate) runs in a subprocess;
on machines with 2+ CPUs the emulator is pinned to CPU 0 and the loop to the last CPU. The loop runs the
HalfCheetah task (paper size: full observation, 17 values; small: the -P mask, 8 values) and a policy
that learns every tick within the tick's budget.

The policy is a parameter: ``--policy agent`` (or ``agent-float64``) runs the streaming RTU agent of
controller.agent at a reference size of design.md §4.7 (paper: Dense 64 -> RTU 192 -> Dense 64, actor
and critic; small: 32 -> 32 -> 32); ``--policy module:factory`` calls ``factory(obs_dim, action_dim,
action_low, action_high, size)`` and must return a ``controller.interfaces.Policy``. The default is the
stand-in :class:`controller.fixed_policy.FixedPolicy` busy-waiting ``--act-us`` in act() and
``--learn-us`` in update() (defaults per size: paper 20 / 100 µs, small 5 / 20 µs).

Targets (design.md §5, the SCHED_FIFO row): >= 99.9 % of ticks on time and sense->act p99 <= 200 µs, at
500 Hz with the paper size and at 1 kHz with the small size. Prints a summary, writes JSON
(``--output``), and returns 0 when both targets hold, 1 otherwise.
"""
import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from controller.fixed_policy import FixedPolicy
from controller.loop import ControlLoop, LoopConfig
from controller.realtime import release_memory_lock
from hardware.safety import SafetyConfig
from hardware.tasks import TaskConfig, make_task
from hardware.udp import UdpAdapter, UdpConfig

ROOT = Path(__file__).resolve().parents[1]
STAND_IN_COST_US = {"paper": (20.0, 100.0), "small": (5.0, 20.0)}   # (act, learn)
MASK = {"paper": "full", "small": "P"}
TARGET_ON_TIME = 0.999
TARGET_P99_US = 200.0


AGENT_SIZES = {"paper": dict(encoder_width=64, n_units=192, head_width=64),   # design.md §4.7
               "small": dict(encoder_width=32, n_units=32, head_width=32)}


def make_agent(obs_dim, action_dim, low, high, size, dtype="float32"):
    """The streaming RTU agent (controller.agent) at a design.md §4.7 size, warmed up before timing."""
    from gymnasium import spaces

    from controller.agent import Agent, AgentConfig
    from controller.warmup import warm_up_for_loop
    obs_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float64)
    act_space = spaces.Box(np.asarray(low, np.float32), np.asarray(high, np.float32), (action_dim,),
                           np.float32)
    agent = Agent(obs_space, act_space, AgentConfig(dtype=dtype, **AGENT_SIZES[size]), seed=0)
    warm_up_for_loop(agent.config, obs_space, act_space)   # episode ends too, which the calls below miss
    obs = np.zeros(obs_dim)
    for i in range(200):   # compile and warm every path: act, update, skip, credit, reset
        agent.act(obs)
        (agent.update if i % 3 else agent.skip)(0.0, obs, False, False)
        agent.credit(np.zeros(action_dim))
    agent.reset()
    return agent


def load_policy(spec, obs_dim, action_dim, low, high, size):
    if spec in ("agent", "agent-float32", "agent-float64"):
        return make_agent(obs_dim, action_dim, low, high, size,
                          "float64" if spec.endswith("float64") else "float32")
    module, _, name = spec.partition(":")
    if not name:
        raise SystemExit(f"--policy: expected module:factory, found {spec!r}")
    factory = getattr(importlib.import_module(module), name)
    return factory(obs_dim, action_dim, low, high, size)


def start_emulator(rate, env_id, stats_path, cpu, emulator_spin=0.0002):
    cmd = [sys.executable, "-m", "hardware.emulator", "--set", f"rate_hz={rate}", "--set", "port=0",
           "--set", f"env_id={env_id}", "--set", f"stats_path={stats_path}",
           "--set", "command_timeout=0.05", "--set", f"spin={emulator_spin}"]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    line = proc.stdout.readline()
    if "udp://" not in line:
        proc.kill()
        raise SystemExit(f"emulator did not start: expected its banner, found {line!r}")
    port = int(line.rsplit(":", 1)[1])
    if cpu is not None:
        try:
            os.sched_setaffinity(proc.pid, {cpu})
        except OSError:
            pass
    return proc, port


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m launch.bench_loop", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="loop and robot rate, Hz")
    parser.add_argument("--size", choices=("paper", "small"), default="paper")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured duration (default 10)")
    parser.add_argument("--long", action="store_true", help="measure 60 s (overrides --seconds)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before")
    parser.add_argument("--policy", default="",
                        help="agent | agent-float64 (controller.agent at the size) | module:factory "
                             "(default: the stand-in FixedPolicy)")
    parser.add_argument("--act-us", type=float, default=None)
    parser.add_argument("--learn-us", type=float, default=None)
    parser.add_argument("--env-id", default="HalfCheetah-v5")
    parser.add_argument("--no-pin", action="store_true", help="do not pin loop and emulator to CPUs")
    parser.add_argument("--sched-fifo", action="store_true",
                        help="SCHED_FIFO for the loop (priority 80) and the emulator (70), if allowed")
    parser.add_argument("--mlockall", action="store_true")
    parser.add_argument("--spin", type=float, default=0.0002,
                        help="loop.spin: seconds spun (polling the socket) before each release")
    parser.add_argument("--output", default="results/bench_loop.json")
    args = parser.parse_args(argv)

    # the loop pins, may raise the calling thread's scheduling and may lock the process's memory; main()
    # hands all three back when it ends (it is also called in-process, e.g. by the tests, whose later work
    # must not stay on one CPU or keep every page it touches locked)
    affinity, policy0, param0 = os.sched_getaffinity(0), os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        return _run(args, affinity, list(sys.argv[1:] if argv is None else argv))
    finally:
        os.sched_setaffinity(0, affinity)
        try:
            os.sched_setscheduler(0, policy0, param0)
        except OSError:
            pass
        if args.mlockall:
            release_memory_lock()


def _run(args, affinity, argv):
    """The benchmark of main() (argv: its arguments, recorded in the JSON); returns the exit status."""
    seconds = 60.0 if args.long else args.seconds
    ncpu = len(affinity)
    pin = (not args.no_pin) and ncpu >= 2
    cpus = sorted(affinity)
    stats_path = tempfile.mktemp(prefix="rtu-emulator-", suffix=".json")
    safety = SafetyConfig(stale_timeout=0.02, command_timeout=0.1)
    probe = UdpAdapter(UdpConfig(env_id=args.env_id), safety)   # channel tables only: sizes the policy
    task = make_task(TaskConfig(name="HalfCheetah", mask=MASK[args.size], max_episode_steps=0,
                                reset="none"))
    task.bind(probe)
    act_us, learn_us = STAND_IN_COST_US[args.size]
    act_us = act_us if args.act_us is None else args.act_us
    learn_us = learn_us if args.learn_us is None else args.learn_us
    if args.policy:
        policy = load_policy(args.policy, task.obs_dim, task.action_dim, task.action_low,
                             task.action_high, args.size)
        policy_name = args.policy
    else:
        rng = np.random.default_rng(0)
        policy = FixedPolicy(task.obs_dim, task.action_dim,
                             gain=0.1 * rng.standard_normal((task.action_dim, task.obs_dim)),
                             low=task.action_low, high=task.action_high,
                             act_cost=act_us * 1e-6, learn_cost=learn_us * 1e-6)
        policy_name = f"FixedPolicy(act {act_us:g} us, learn {learn_us:g} us)"
    proc, port = start_emulator(args.rate, args.env_id, stats_path, cpus[0] if pin else None)
    if args.sched_fifo:
        try:
            os.sched_setscheduler(proc.pid, os.SCHED_FIFO, os.sched_param(70))
        except OSError as err:
            print(f"bench_loop: emulator stays SCHED_OTHER ({err})")
    adapter = UdpAdapter(UdpConfig(port=port, env_id=args.env_id, max_age=0.02), safety)
    common = dict(rate_hz=args.rate, sched_fifo=args.sched_fifo, mlockall=args.mlockall, spin=args.spin,
                  cpu_affinity=(cpus[-1],) if pin else (), gc_freeze=True, handle_signals=True)
    print(f"bench_loop: {args.rate:g} Hz, size {args.size} (obs {task.obs_dim}, actions "
          f"{task.action_dim}), policy {policy_name}, {seconds:g} s measured after {args.warmup:g} s "
          f"warm-up; emulator pid {proc.pid} on udp://127.0.0.1:{port}; pinned: {pin}", flush=True)
    try:
        adapter.configure()
        if args.warmup > 0:
            ControlLoop(adapter, task, policy, LoopConfig(duration=args.warmup, **common)).run()
        adapter.decoder.reset_counters()          # count the measured run only
        loop = ControlLoop(adapter, task, policy, LoopConfig(duration=seconds, **common))
        t0 = time.monotonic()
        out = loop.run()
        wall = time.monotonic() - t0
    finally:
        adapter.shutdown()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
    emulator = {}
    try:
        emulator = json.loads(Path(stats_path).read_text())
        os.unlink(stats_path)
    except (OSError, ValueError):
        pass
    sa, lt, jt = out["sense_act_us"], out["learn_us"], out["jitter_us"]
    on_time = out["on_time_fraction"]
    ok = on_time >= TARGET_ON_TIME and sa["p99"] <= TARGET_P99_US
    print(f"  ticks {out['ticks']} in {wall:.2f} s, on time {100 * on_time:.3f} % "
          f"(deadline misses {out['deadline_misses']}, dropped releases {out['missed_releases']}, "
          f"overruns {out['overruns']})")
    print(f"  sense->act  p50 {sa['p50']:.1f}  p99 {sa['p99']:.1f}  max {sa['max']:.1f} us")
    print(f"  learn       p50 {lt['p50']:.1f}  p99 {lt['p99']:.1f}  max {lt['max']:.1f} us; "
          f"updates {out['updates']}, skipped {out['skipped_updates']}")
    print(f"  jitter      p50 {jt['p50']:.1f}  p99 {jt['p99']:.1f}  max {jt['max']:.1f} us")
    print(f"  reads: held {out['held_reads']}, unusable {out['unusable_reads']}; "
          f"rejected by host {adapter.decoder.counters()}")
    if emulator:
        print(f"  emulator: {emulator.get('ticks')} ticks, deadline misses "
              f"{emulator.get('deadline_misses')}, "
              f"watchdog trips {emulator.get('watchdog_trips')}")
    print(f"  realtime options: {out['realtime']}")
    print(f"  targets (>= {100 * TARGET_ON_TIME:.1f} % on time, p99 <= {TARGET_P99_US:g} us): "
          f"{'PASS' if ok else 'FAIL'}")
    if args.output:
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"rate_hz": args.rate, "size": args.size, "seconds": seconds, "policy": policy_name,
                  "pinned": pin, "loop": out, "emulator": emulator, "pass": ok,
                  "argv": argv}
        path.write_text(json.dumps(record, indent=1, default=float))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
