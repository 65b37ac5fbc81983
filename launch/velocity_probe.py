"""Offline diagnostic: how much of the masked velocities can the history of a `-P` observation give back?

    python -m launch.velocity_probe --env HalfCheetah [--train-steps 1000000 --record-steps 50000
        --seed 0 --output results/velocity_probe]

It answers two questions behind the streaming-agent issue's masked/full gap (docs/benchmarks.md):

1. *Is the information there?* A feed-forward agent learns on the full observation (`<Name>-v5`) for
   ``train_steps``; the next ``record_steps`` (learning goes on) are recorded: the observation, the
   simulator's own ``data.qvel`` at that observation, and the episode index. Decoders are then fitted on
   the first 80 % of the recorded episodes and scored (R², per qvel entry) on the rest, from a window of
   the last k `-P` observations (the full observation through ``envs.masks.mask_indices(layout, "P")``):
   ridge regression (linear) and a two-layer MLP (torch, offline only). ``qvel[0]`` is the forward speed,
   the main term of the reward, and is not a difference of observed positions (the x position is
   excluded from the observation).
2. *Does the RTU carry it before any learning?* The same sequence, normalised, is run through a freshly
   initialised network of the agent (`controller.networks.Network`, cell ``none`` and ``rtu-linear``,
   float64, state reset at episode starts), and a ridge regression is fitted from the cell's output
   (the features the agent's head sees) to qvel.

Writes ``<output>/<Name>-seed<k>.npz`` (the recorded arrays) and ``<Name>-seed<k>.json`` (every score),
and prints a table. torch is needed for the MLP rows only (``pip install -e '.[test]'``); without it
they are skipped with a message. Not part of the real-time path.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

WINDOWS = (1, 2, 4, 16, 64)
TEST_FRACTION = 0.2


# ----------------------------------------------------------------------------- data
def record(name, train_steps, record_steps, seed, echo=print):
    """Train the feed-forward agent on ``<name>-v5`` and record the next ``record_steps`` transitions.

    Returns a dict of arrays: ``obs`` (T, full obs dim) float64, ``masked`` (T, -P obs dim) float64,
    ``qvel`` (T, nv) float64 (``data.qvel`` when ``obs`` was observed), ``episode`` (T,) int64,
    ``joint_dofs`` (int64: the qvel entries of the joints, i.e. not of the free/root joints named
    ``root*``) and ``train_return`` (mean of the last 10 episodes before recording; NaN if fewer ended).
    """
    import gymnasium as gym

    import envs  # noqa: F401  (registers the -P ids)
    from controller.agent import Agent, AgentConfig
    from envs.masks import mask_indices, observation_layout

    base_id = f"{name}-v5"
    env = gym.make(base_id)
    keep = mask_indices(observation_layout(base_id, env), "P")
    agent = Agent(env.observation_space, env.action_space, AgentConfig(cell="none"), seed=seed)
    model, data = env.unwrapped.model, env.unwrapped.data
    joint_dofs = np.array([d for d in range(model.nv)
                           if not model.joint(model.dof_jntid[d]).name.startswith("root")], np.int64)
    obs, _ = env.reset(seed=seed)
    total = train_steps + record_steps
    rows_obs = np.zeros((record_steps, obs.shape[0]))
    rows_qvel = np.zeros((record_steps, data.qvel.shape[0]))
    rows_ep = np.zeros(record_steps, np.int64)
    episode, ret, returns = 0, 0.0, []
    t0 = time.monotonic()
    for step in range(total):
        i = step - train_steps
        if i >= 0:
            rows_obs[i], rows_qvel[i], rows_ep[i] = obs, data.qvel, episode
        action = agent.act(obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        agent.learn(reward, obs, terminated, truncated)
        ret += float(reward)
        if terminated or truncated:
            if i < 0:
                returns.append(ret)
            episode, ret = episode + 1, 0.0
            obs, _ = env.reset()
        if (step + 1) % 200_000 == 0:
            echo(f"  {base_id}: {step + 1} / {total} steps, {time.monotonic() - t0:.0f} s")
    env.close()
    train_return = float(np.mean(returns[-10:])) if returns else float("nan")
    return {"obs": rows_obs, "masked": rows_obs[:, keep], "qvel": rows_qvel, "episode": rows_ep,
            "joint_dofs": joint_dofs, "train_return": np.array(train_return)}



def history_rows(episode, k):
    """Indices t (int64, ascending) whose last k steps t-k+1..t lie in one episode. episode: (T,)
    non-decreasing ints."""
    t = np.arange(len(episode))
    return t[(t >= k - 1) & (episode[np.maximum(t - k + 1, 0)] == episode)]


def windows(x, rows, k):
    """(R, k n) windows [x_t, x_{t-1}, ..., x_{t-k+1}] of x (T, n) at the given rows (each with at least
    k steps of its episode, see history_rows)."""
    return np.concatenate([x[rows - j] for j in range(k)], axis=1)


def split_by_episode(episode, rows, test_fraction=TEST_FRACTION):
    """Boolean (train, test) masks over ``rows``: test = the episodes from the one holding the row at
    (1 - test_fraction) of ``rows`` on (whole episodes, so no window is in both)."""
    first_test = episode[rows[int((1.0 - test_fraction) * len(rows))]] if len(rows) else episode[0]
    test = episode[rows] >= first_test
    if test.all() or not test.any():
        raise ValueError("velocity_probe: the scored steps lie in a single episode; record more steps")
    return ~test, test


# ----------------------------------------------------------------------------- decoders
def r2(pred, y):
    """Coefficient of determination per column: 1 - SSE / SST, (n,) float64 (NaN for a constant column)."""
    sst = ((y - y.mean(0)) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sst > 0, 1.0 - ((pred - y) ** 2).sum(0) / sst, np.nan)


def ridge_predict(x_train, y_train, x_test, lam=1e-3):
    """Ridge regression on standardised features plus a bias column (penalty lam * n_train on every
    weight); x_*: (n, f), y_train: (n, q); returns the predictions for x_test, (n_test, q)."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-8
    a = np.c_[(x_train - mu) / sd, np.ones(len(x_train))]
    b = np.c_[(x_test - mu) / sd, np.ones(len(x_test))]
    w = np.linalg.solve(a.T @ a + lam * len(a) * np.eye(a.shape[1]), a.T @ y_train)
    return b @ w


def mlp_predict(x_train, y_train, x_test, epochs=60, width=256, seed=0):
    """Two hidden ReLU layers, Adam 1e-3, batches of 256, standardised inputs and targets (torch, CPU,
    one thread); returns the predictions for x_test."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-8
    ym, ys = y_train.mean(0), y_train.std(0) + 1e-8
    x = torch.tensor((x_train - mu) / sd, dtype=torch.float32)
    y = torch.tensor((y_train - ym) / ys, dtype=torch.float32)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], width), torch.nn.ReLU(),
                              torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, y.shape[1]))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 256):
            batch = perm[i:i + 256]
            opt.zero_grad()
            ((net(x[batch]) - y[batch]) ** 2).mean().backward()
            opt.step()
    with torch.no_grad():
        return net(torch.tensor((x_test - mu) / sd, dtype=torch.float32)).numpy() * ys + ym


def cell_features(masked, episode, cell, seed, n_units=192):
    """Output of a freshly initialised agent network's cell (what its head sees) over the sequence.

    masked: (T, d) -P observations, standardised here over the whole recording; the cell's state is reset
    where an episode starts. Returns (T, m) float64: m = 2 n_units for an RTU, the encoder width for
    ``none``."""
    from controller.networks import Network

    x = (masked - masked.mean(0)) / (masked.std(0) + 1e-8)
    net = Network(masked.shape[1], 1, cell, n_units=n_units, dtype=np.float64, seed=seed)
    out = np.zeros((len(x), net.m))
    for t in range(len(x)):
        if t == 0 or episode[t] != episode[t - 1]:
            net.reset_state()
        net.forward(np.ascontiguousarray(x[t]))
        out[t] = net.y
    return out


def score(pred, y, joint_dofs):
    """{"vx": R² of qvel[0] (forward speed), "all": mean R² over qvel, "joints": mean R² over
    qvel[joint_dofs], "per_qvel": every R²}."""
    s = r2(pred, y)
    return {"vx": float(s[0]), "all": float(np.nanmean(s)), "joints": float(np.nanmean(s[joint_dofs])),
            "per_qvel": [float(v) for v in s]}


def probe(data, seed=0, window_sizes=WINDOWS, mlp_epochs=60, echo=print):
    """All decoder scores for one recording (see the module docstring). Returns a list of rows
    {"features", "decoder", "k", "vx", "all", "joints", "per_qvel"}."""
    masked, qvel, episode, joint_dofs = data["masked"], data["qvel"], data["episode"], data["joint_dofs"]
    # every decoder is scored on the same steps: those with max(window_sizes) steps of their episode
    # behind them (a window or a cell state never reaches into another episode)
    rows = history_rows(episode, max(window_sizes))
    train, test = split_by_episode(episode, rows)
    y = qvel[rows]
    rows_out = []
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
        echo("  torch is not installed: MLP rows skipped (pip install -e '.[test]')")
    for k in window_sizes:
        w = windows(masked, rows, k)
        for decoder in ("ridge", "mlp"):
            if decoder == "mlp" and not have_torch:
                continue
            fit = ridge_predict if decoder == "ridge" else (
                lambda a, b, c: mlp_predict(a, b, c, epochs=mlp_epochs, seed=seed))
            row = {"features": f"-P observation, last {k}", "decoder": decoder, "k": k,
                   **score(fit(w[train], y[train], w[test]), y[test], joint_dofs)}
            rows_out.append(row)
            echo(format_row(row))
    for cell in ("none", "rtu-linear"):
        feats = cell_features(masked, episode, cell, seed)[rows]
        row = {"features": f"fresh {cell} network's cell output ({feats.shape[1]})", "decoder": "ridge",
               "k": None, **score(ridge_predict(feats[train], y[train], feats[test]), y[test], joint_dofs)}
        rows_out.append(row)
        echo(format_row(row))
    return rows_out


def format_row(row):
    return f"  {row['features'] + ' ' + row['decoder']:52s} {row['vx']:7.3f} {row['joints']:8.3f} {row['all']:7.3f}"


# ----------------------------------------------------------------------------- CLI
def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m launch.velocity_probe", description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="HalfCheetah", help="MuJoCo base name: HalfCheetah, Hopper, Walker2d, Ant")
    parser.add_argument("--train-steps", type=int, default=1_000_000)
    parser.add_argument("--record-steps", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mlp-epochs", type=int, default=60)
    parser.add_argument("--output", default="results/velocity_probe")
    args = parser.parse_args(argv)
    from envs.masks import MUJOCO_BASES

    if args.env not in MUJOCO_BASES:
        parser.error(f"--env: one of {list(MUJOCO_BASES)}, got {args.env!r}")
    if args.train_steps < 0 or args.record_steps < 100:
        parser.error("--train-steps must be >= 0 and --record-steps >= 100")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{args.env}-seed{args.seed}"
    print(f"velocity_probe: {args.env}-v5, feed-forward agent on the full observation, {args.train_steps} "
          f"training steps, then {args.record_steps} recorded")
    data = record(args.env, args.train_steps, args.record_steps, args.seed)
    np.savez(stem.with_suffix(".npz"), **data)
    print(f"  return before recording (last 10 episodes): {float(data['train_return']):.1f}; "
          f"{int(data['episode'][-1] - data['episode'][0]) + 1} episodes recorded")
    print(f"  {'features / decoder':52s} {'R2 vx':>7s} {'R2 joints':>8s} {'R2 all':>7s}")
    rows = probe(data, seed=args.seed, mlp_epochs=args.mlp_epochs)
    stem.with_suffix(".json").write_text(json.dumps(
        {"env": args.env, "seed": args.seed, "train_steps": args.train_steps, "record_steps": args.record_steps,
         "train_return": float(data["train_return"]), "test_fraction": TEST_FRACTION, "rows": rows,
         "argv": list(sys.argv[1:] if argv is None else argv)}, indent=1))
    print(f"  -> {stem.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
