"""The learner a run starts from: a checkpoint written by `rtu-control train` or `deploy`.

``deploy --agent SOURCE`` and ``train --set agent_from=SOURCE`` (``agent_from`` in both YAMLs) name
either a checkpoint file (``ckpt-<step>.npz``) or a results folder of ``train`` or ``deploy``, whose
newest checkpoint that loads is used. The checkpoint carries the whole learner (parameters, traces,
normaliser statistics, the RNG) and the ``AgentConfig`` it was built with; that config replaces the
run config's ``agent`` section, and the learner starts a new episode.

For a deploy, before the first command the checkpoint is checked against the robot's task: observation and action
sizes, a continuous action space, and the task it was trained on (``HalfCheetah-P-v5`` from `train`
matches task ``HalfCheetah`` with mask ``P``). A mismatch is a ``ConfigError`` naming the checkpoint,
what it holds and what the task needs.
"""
import re
from pathlib import Path

from controller.config import ConfigError, build_config

# gymnasium ids of the tasks: <name>[-P|-V]-v<k> (the -P / -V ids registered by envs)
_TASK_ID = re.compile(r"^(?P<name>[A-Za-z0-9_]+?)(?:-(?P<mask>P|V))?-v\d+$")


def task_id(task_config):
    """The gymnasium id a deploy task corresponds to: HalfCheetah + P -> "HalfCheetah-P-v5"."""
    mask = "" if task_config.mask == "full" else f"-{task_config.mask}"
    return f"{task_config.name}{mask}-v5"


def parse_task_id(env_id):
    """(task name, mask) of a gymnasium id such as "Hopper-P-v5" -> ("Hopper", "P"); None when the id
    has another form."""
    m = _TASK_ID.match(env_id or "")
    if m is None:
        return None
    return m.group("name"), m.group("mask") or "full"


def resolve_checkpoint(source, key="--agent"):
    """(path, meta) of the checkpoint ``source`` names: the file itself, or the newest checkpoint of a
    results folder that loads (a corrupt one is passed over). ConfigError naming ``key`` and the source
    when there is none."""
    from controller.checkpoint import CheckpointError, load_arrays
    from launch.run_checkpoints import list_checkpoints

    path = Path(source)
    if not path.exists():
        raise ConfigError(f"{key} {source}: no such file or folder (expected a checkpoint ckpt-<step>.npz "
                          f"or a results folder of 'rtu-control train' or 'deploy')")
    candidates = list_checkpoints(path) if path.is_dir() else [path]
    if path.is_dir() and not candidates:
        runs = sorted(str(p) for p in path.iterdir() if p.is_dir() and list_checkpoints(p))
        hint = (f"; it holds the run folders {', '.join(runs[-3:])}: name one" if runs else
                " (expected a results folder of 'rtu-control train' or 'deploy')")
        raise ConfigError(f"{key} {source}: no checkpoints in {path / 'checkpoints'}{hint}")
    errors = []
    for candidate in candidates:
        try:
            _, meta = load_arrays(candidate)
        except CheckpointError as err:
            errors.append(str(err))
            continue
        if meta.get("learner") == "ppo":   # the batch learner's network is not the streaming agent's
            errors.append(f"{candidate}: holds a ppo learner; only streaming agents can be deployed or "
                          f"started from so far (resume a ppo run with 'rtu-control train --resume')")
            continue
        if "config" not in meta or "n_obs" not in meta:
            errors.append(f"{candidate}: not a checkpoint of an agent (no agent config)")
            continue
        return candidate, meta
    raise ConfigError(f"{key} {source}: no usable checkpoint ({' | '.join(errors)})")


def agent_config_of(path, meta):
    """The AgentConfig a checkpoint was written with (fields added later take their defaults)."""
    from controller.agent_checkpoint import saved_config
    from controller.agent_config import AgentConfig
    try:
        return build_config(AgentConfig, saved_config(meta), "agent")
    except ConfigError as err:
        raise ConfigError(f"{path}: its agent config does not load here ({err})") from None


def trained_task(meta):
    """The gymnasium id the checkpoint's learner was trained or deployed on ("" when not recorded)."""
    run = (meta.get("extra") or {}).get("run") or {}
    return str(run.get("env_id", ""))


def check_matches(path, meta, task, task_config):
    """ConfigError unless the checkpoint at ``path`` (its ``meta``) fits the bound ``task``: sizes,
    a continuous action space, and the task it was trained on."""
    problems = []
    if meta.get("discrete"):
        problems.append("its actions are discrete, the robot's are continuous")
    if meta.get("n_obs") != task.obs_dim:
        problems.append(f"observation size {meta.get('n_obs')}, task {task_config.name} (mask "
                        f"{task_config.mask}) gives {task.obs_dim}")
    if meta.get("n_actions") != task.action_dim:
        problems.append(f"action size {meta.get('n_actions')}, the robot takes {task.action_dim}")
    trained = trained_task(meta)
    parsed = parse_task_id(trained)
    if trained and parsed != (task_config.name, task_config.mask):
        hint = (f" (set task.name={parsed[0]} task.mask={parsed[1]} to deploy it on that task)"
                if parsed else "")
        problems.append(f"trained on {trained!r}, this deploy's task is {task_id(task_config)!r}{hint}")
    if problems:
        raise ConfigError(f"agent_from {path}: does not fit this robot: " + "; ".join(problems))


def load_learner(path, meta, obs_space, act_space):
    """A new Agent restored from the checkpoint (its own config and seed), at the start of an episode."""
    from controller.agent import Agent, load_agent
    from controller.checkpoint import CheckpointError

    agent = Agent(obs_space, act_space, agent_config_of(path, meta), seed=int(meta.get("seed", 0)))
    try:
        load_agent(path, agent)
    except CheckpointError as err:
        raise ConfigError(f"agent_from {err}") from None
    agent.reset()
    return agent
