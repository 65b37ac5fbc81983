"""The learner a `rtu-control train` run trains, by kind (``TrainConfig.learner``): ``build_learner``.

* ``streaming``: ``controller.agent.Agent``, the streaming actor-critic (learns every step; config ``agent``);
* ``ppo``: ``controller.ppo.PPOAgent``, PPO whose RTU learns by RTRL (an update every
  ``ppo.rollout_steps`` transitions; config ``ppo``; Box actions only).

A learner object holds the agent and what differs by kind: construction (with the env check), the
warm-up before the first timed tick, a one-line description, the checkpoint's arrays and metadata and
their loading, the finiteness check, the health record, and whether it learns in batches (``batched``:
then ``at_boundary`` says when a batch was just learned and none is half collected).
``learner_of(agent)`` wraps an agent built elsewhere (deploy's), so ``launch.run_checkpoints`` takes both.

Checkpoints of PPO: ``controller.ppo_checkpoint`` stores the filled part of the rollout, so a checkpoint
written mid-rollout resumes exactly. That part is ≈ 103 KB per step at paper size (up to ≈ 211 MB), so
the trainer's periodic checkpoints of a batched learner wait for the next rollout boundary, where the
rollout is empty (≈ 1 MB files); the checkpoints at the end of a run and on SIGINT/SIGTERM are written
where the run stops, with the filled part. The trainer also checks a batched learner's finiteness right
after each update: parameters change only there, and a diverged PPO would act NaN on the next tick.
"""
import math

import numpy as np

from controller.checkpoint import CheckpointError
from controller.config import ConfigError
from controller.ppo_checkpoint import learner_kind
from launch.train_config import TrainError

# streaming agent arrays the finiteness check skips: inputs and draws, not learned state
_NOT_LEARNED = ("noise", "action", "x", "x_next")


def _refuse_kind(where, meta, kind):
    saved = learner_kind(meta)
    if saved != kind:
        raise CheckpointError(f"{where}: holds a {saved} learner, this run's learner is {kind} (set "
                              f"learner: {saved} to use it)")


class StreamingLearner:
    """``controller.agent.Agent`` (``cfg``: the run's TrainConfig, None for an agent built elsewhere)."""

    kind = "streaming"
    batched = False   # learns every step: no boundary to wait for

    def __init__(self, agent, cfg=None):
        self.agent, self.cfg = agent, cfg

    @classmethod
    def build(cls, cfg, env, echo):
        from gymnasium import spaces

        from controller.agent import Agent
        from controller.warmup import describe_kernel_cache

        discrete = isinstance(env.action_space, spaces.Discrete)
        echo("  " + describe_kernel_cache(cfg.agent.dtype, discrete,
                                          "critic_thread" if cfg.critic_thread else "gymnasium"))
        return cls(Agent(env.observation_space, env.action_space, cfg.agent, seed=cfg.seed,
                         critic_thread=cfg.critic_thread), cfg)

    @property
    def cell(self):
        """The recurrent cell's name in the learner's config (e.g. "rtu-linear", "none")."""
        return self.agent.config.cell

    def describe(self):
        c = self.agent.config
        return f"learner: streaming actor-critic, cell {c.cell} ({c.n_units} units), {c.dtype}"

    def warm_up(self, env):
        """Load every compiled kernel on a throwaway agent (the real agent, env and RNGs untouched)."""
        spare = type(self.agent)(env.observation_space, env.action_space, self.cfg.agent, seed=self.cfg.seed,
                                 critic_thread=self.cfg.critic_thread)
        obs = np.zeros(env.observation_space.shape, env.observation_space.dtype)
        for terminated in (False, False, True):
            spare.act(obs)
            spare.learn(0.0, obs, terminated, False)
        spare.close()

    def arrays(self):
        from controller.agent import agent_arrays
        return agent_arrays(self.agent)

    def meta(self):
        from controller.agent import agent_meta
        return agent_meta(self.agent)

    def load(self, path, arrays, meta):
        """Restore the checkpoint at ``path`` (its loaded ``arrays``, ``meta``) in place; its ``extra``."""
        from controller.agent import load_agent
        _refuse_kind(path, meta, self.kind)
        return load_agent(path, self.agent)

    def start_from(self, path):
        """A new run's learner from checkpoint ``path`` (``agent_from``), at the start of an episode."""
        from controller.checkpoint import load_arrays
        try:
            arrays, meta = load_arrays(path)
            self.load(path, arrays, meta)
        except CheckpointError as err:
            raise TrainError(f"agent_from {err}") from None
        self.agent.reset()

    def finite(self):
        """True when every parameter, trace and statistic array is finite."""
        for name, arr in self.arrays().items():
            if name not in _NOT_LEARNED and not np.isfinite(arr).all():
                return False
        return math.isfinite(self.agent.stats.get("last_value", 0.0))

    def health(self):
        from launch.learner_health import LearnerHealth
        return LearnerHealth(self.agent)

    def at_boundary(self):
        """No batch half collected: always (learns every step)."""
        return True

    def close(self):
        self.agent.close()


class PPOLearner(StreamingLearner):
    """``controller.ppo.PPOAgent``; the kind-specific methods of ``StreamingLearner`` replaced."""

    kind = "ppo"
    batched = True
    _blas_threads = None   # OpenBLAS threads before the run pinned them, restored by close()

    @classmethod
    def build(cls, cfg, env, echo):
        from gymnasium import spaces

        from controller.ppo import PPOAgent

        if not isinstance(env.action_space, spaces.Box):
            raise ConfigError(f"learner: ppo takes continuous (Box) actions, {cfg.env_id!r} has "
                              f"{env.action_space}; use learner: streaming")
        learner = cls(PPOAgent(env.observation_space, env.action_space, cfg.ppo, seed=cfg.seed), cfg)
        learner._blas_threads = pin_blas_threads(1)
        return learner

    def describe(self):
        c = self.agent.config
        units = f" ({c.n_units} units)" if c.variant else ""
        blas = "" if self._blas_threads is None else "; OpenBLAS pinned to 1 thread"
        return (f"learner: ppo, cell {c.cell}{units}, rollouts of {c.rollout_steps} steps, {c.epochs} epochs x "
                f"{c.minibatches} minibatches, {c.dtype}{blas}")

    def warm_up(self, env):
        """Compile the RTU's step on a spare cell of the same shape and dtype (no second rollout; the real
        agent, env and RNGs untouched). The update is NumPy only: nothing to compile."""
        from controller.cells import RTUCell

        c = self.agent.config
        if c.variant:
            spare = RTUCell(c.encoder_width, c.n_units, variant=c.variant, activation="relu",
                            dtype=np.dtype(c.dtype))
            spare.step(np.zeros(c.encoder_width, c.dtype))

    def arrays(self):
        from controller.ppo_checkpoint import ppo_arrays
        return ppo_arrays(self.agent)

    def meta(self):
        from controller.ppo_checkpoint import ppo_meta
        return ppo_meta(self.agent)

    def load(self, path, arrays, meta):
        from controller.ppo_checkpoint import load_ppo
        _refuse_kind(path, meta, self.kind)
        return load_ppo(arrays, meta, self.agent, str(path))

    def start_from(self, path):
        raise TrainError(f"agent_from {path}: starting a ppo learner from a checkpoint is not supported")

    def finite(self):
        from controller.ppo_checkpoint import learned_arrays
        return all(np.isfinite(arr).all() for arr in learned_arrays(self.agent).values())

    def health(self):
        from launch.learner_health import PPOHealth
        return PPOHealth(self.agent)

    def at_boundary(self):
        """At rollout position 0: right after an update (or before the first step)."""
        return self.agent._t == 0

    def close(self):
        self.agent.close()
        if self._blas_threads is not None:
            pin_blas_threads(self._blas_threads)
            self._blas_threads = None


LEARNERS = {"streaming": StreamingLearner, "ppo": PPOLearner}


def build_learner(cfg, env, echo=print):
    """The learner ``cfg.learner`` names, for ``env``'s spaces (ConfigError naming ``learner`` when the
    env does not fit it)."""
    return LEARNERS[cfg.learner].build(cfg, env, echo)


def learner_of(agent):
    """``agent`` itself when it is a learner object, else a learner wrapping it (by its type)."""
    if isinstance(agent, StreamingLearner):
        return agent
    from controller.ppo import PPOAgent
    return (PPOLearner if isinstance(agent, PPOAgent) else StreamingLearner)(agent)


def pin_blas_threads(n):
    """Set the thread count of the OpenBLAS numpy loaded, through its C API (as threadpoolctl does,
    which is not installed): OPENBLAS_NUM_THREADS is read only when the library loads, and numpy is
    imported before a run's config is known. Returns the previous count, None when no OpenBLAS is
    found (another BLAS, or no /proc: nothing changed)."""
    import ctypes

    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_{}_num_threads64_", "openblas_{}_num_threads64_", "openblas_{}_num_threads"):
            get, set_ = getattr(lib, name.format("get"), None), getattr(lib, name.format("set"), None)
            if get is not None and set_ is not None:
                old = int(get())
                set_(ctypes.c_int(int(n)))
                return old
    return None
