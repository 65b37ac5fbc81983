"""Run the PPO-RTRL learner (controller.ppo.PPOAgent) on a gymnasium id.

    python -m launch.ppo_run --env HalfCheetah-P-v5 --steps 100000 --seed 0 [--out FILE.jsonl]

Prints the mean return of every ``--print-every`` episodes and, at the end, the env steps/s while
collecting rollouts (act + env.step only) and the update seconds per rollout. ``--out`` writes one JSON
line per episode: {"episode", "step", "return", "length"}.
"""
import os

# one BLAS thread: the update's matrices are small, and OpenBLAS threads spin against the env on a busy machine
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m launch.ppo_run", description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="HalfCheetah-P-v5", help="gymnasium id (the -P/-V ids need `import envs`)")
    ap.add_argument("--steps", type=int, default=100_000, help="environment steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cell", default="rtu-linear", choices=("rtu-linear", "rtu-nonlinear"))
    ap.add_argument("--print-every", type=int, default=10, help="episodes per printed line")
    ap.add_argument("--out", default=None, help="JSONL file of episode returns")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import gymnasium as gym

    import envs  # noqa: F401  (registers the -P / -V ids)
    from controller.ppo import PPOAgent
    from controller.ppo_config import PPOConfig

    env = gym.make(args.env)
    agent = PPOAgent(env.observation_space, env.action_space, PPOConfig(cell=args.cell), seed=args.seed)
    obs, _ = env.reset(seed=args.seed)
    ret, length, returns = 0.0, 0, []
    rollout_time = update_time = learn_time = 0.0
    clock = time.perf_counter
    start = clock()
    with open(args.out, "w") if args.out else contextlib.nullcontext() as out:
        for step in range(1, args.steps + 1):
            t0 = clock()
            action = agent.act(obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            t1 = clock()
            rollouts = agent.stats["rollouts"]
            agent.learn(reward, obs, terminated, truncated)
            t2 = clock()
            rollout_time += t1 - t0
            if agent.stats["rollouts"] != rollouts:   # this learn() ran an update
                update_time += agent.stats["update_seconds"]
                learn_time += t2 - t1 - agent.stats["update_seconds"]
            else:
                learn_time += t2 - t1
            ret += float(reward)
            length += 1
            if terminated or truncated:
                returns.append(ret)
                if out:
                    out.write(json.dumps({"episode": len(returns), "step": step, "return": ret,
                                          "length": length}) + "\n")
                    out.flush()
                if len(returns) % args.print_every == 0:
                    s = agent.stats
                    print(f"step {step:8d}  episodes {len(returns):5d}  mean return (last {args.print_every}) "
                          f"{np.mean(returns[-args.print_every:]):9.2f}  kl {s['approx_kl']:.4f}  "
                          f"clip {s['clip_fraction']:.3f}  grad_norm {s['grad_norm']:.3f}  "
                          f"ev {s['explained_variance']:.3f}", flush=True)
                obs, _ = env.reset()
                ret, length = 0.0, 0
    agent.close()
    env.close()
    n_rollouts = max(agent.stats["rollouts"], 1)
    print(f"done: {args.steps} steps in {clock() - start:.1f} s, {agent.stats['rollouts']} updates, "
          f"{len(returns)} episodes")
    print(f"rollout (act + env.step): {args.steps / rollout_time:.0f} steps/s; learn() storing: "
          f"{learn_time / args.steps * 1e6:.1f} us/step; update: {update_time / n_rollouts:.2f} s per rollout "
          f"of {agent.config.rollout_steps} steps")
    if returns:
        k = min(10, len(returns))
        print(f"returns: first {k} episodes {np.mean(returns[:k]):.2f}, last {k} {np.mean(returns[-k:]):.2f}")


if __name__ == "__main__":
    main()
