"""The actor's action head as a strategy object of ``controller.agent.Agent``: Gaussian for ``Box``
actions, categorical for ``Discrete`` ones. A head owns the action buffer and what is specific to its
distribution: which noise ``act`` draws, the act and credit kernels it calls, and how an applied action
given by the caller is checked. The kernels themselves are ``controller.kernels.agent_step``'s."""
import numpy as np

from controller.errors import message
from controller.kernels import agent_step
from controller.kernels.agent_step import BOUND_HIGH, BOUND_LOW
from controller.kernels.checks import first_non_finite

F64 = np.dtype(np.float64)


def make_head(action_space):
    """GaussianHead for a 1-D ``Box``, CategoricalHead for ``Discrete``; ValueError otherwise."""
    from gymnasium import spaces

    if isinstance(action_space, spaces.Discrete):
        return CategoricalHead(int(action_space.n))
    if isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        return GaussianHead(action_space.low, action_space.high)
    raise ValueError(message("Agent.action_space", "a 1-D gymnasium Box or Discrete", action_space))


class GaussianHead:
    """a-dimensional Gaussian policy whose samples are clipped to [low, high] (``kernels.heads``).

    ``action``: float64 (a,), the last action (what ``act`` returns); ``bounds``: float64 (2, a), the rows
    ``low`` and ``high`` (may be ±inf). The actor's output has 2a values (means, pre-scales)."""

    discrete = False
    non_finite_output = "policy output"

    def __init__(self, low, high):
        self.bounds = np.zeros((2, np.asarray(low).shape[0]), np.float64)   # agent_step.BOUND_LOW, BOUND_HIGH
        self.low, self.high = self.bounds[BOUND_LOW], self.bounds[BOUND_HIGH]
        self.low[:] = low
        self.high[:] = high
        self.n_actions = int(self.low.shape[0])
        self.n_outputs = 2 * self.n_actions
        self.draws_per_act = self.n_actions
        self.action = np.zeros(self.n_actions, np.float64)

    @staticmethod
    def fill_noise(rng, noise):
        """Refill the pre-drawn noise block: standard normal draws."""
        rng.standard_normal(out=noise)

    def act(self, actor, obs, stats, x, normalize, noise, rng):
        """Normalise obs into x, actor forward, sample into ``action``. Returns (index of the first
        non-finite obs value or -1, whether the policy output was not finite, the action)."""
        bad, flag = agent_step.act_gaussian(actor, obs, stats, x, normalize, True, noise, self.low, self.high,
                                            self.action)
        return bad, flag != 0, self.action

    def applied(self, applied):
        """The action to credit: ``action`` for None, else the caller's (a,) float64 array, checked.
        A float64 C-contiguous (a,) array (what controller.loop passes) is checked without allocating."""
        if applied is None:
            return self.action
        if (type(applied) is np.ndarray and applied.dtype == F64 and applied.ndim == 1
                and applied.shape[0] == self.n_actions and applied.flags.c_contiguous
                and first_non_finite(applied) < 0):
            return applied
        return self._converted(applied)

    def _converted(self, applied):
        """The slow path of ``applied``: convert to a float64 (a,) array or raise naming what was wrong."""
        arr = np.ascontiguousarray(np.asarray(applied, dtype=np.float64).reshape(-1))
        if arr.shape != (self.n_actions,):
            raise ValueError(message("Agent.applied_action", f"shape ({self.n_actions},)", arr.shape))
        bad = first_non_finite(arr)
        if bad >= 0:
            raise ValueError(message("Agent.applied_action", "finite values", f"applied_action[{bad}] = {arr[bad]}"))
        return arr

    def credit(self, actor, x, applied, ent):
        """Actor: RTRL traces and the gradient of log π(applied) + ent H into z_π (``applied``: as for
        ``applied``)."""
        agent_step.actor_credit_gaussian(actor, x, self.applied(applied), self.low, self.high, ent)


class CategoricalHead:
    """Categorical policy over k actions (the actor's k outputs are logits). ``action``: int64 (1,), the
    last action's index."""

    discrete = True
    non_finite_output = "policy logits"
    bounds = None   # agent_step.credit_and_apply's head argument: None selects the categorical head

    def __init__(self, k):
        self.n_actions = int(k)
        self.n_outputs = self.n_actions
        self.draws_per_act = 1
        self.action = np.zeros(1, np.int64)

    @staticmethod
    def fill_noise(rng, noise):
        """Refill the pre-drawn noise block: uniform draws on [0, 1)."""
        rng.random(out=noise)

    def act(self, actor, obs, stats, x, normalize, noise, rng):
        """As GaussianHead.act, with the index drawn by inverse CDF from noise[0]; non-finite logits act
        uniformly at random (drawn from rng). Returns (bad obs index or -1, logits not finite, index)."""
        bad, a = agent_step.act_categorical(actor, obs, stats, x, normalize, True, self.n_actions, float(noise[0]))
        non_finite = a < 0
        if non_finite:
            a = int(rng.integers(self.n_actions))
        self.action[0] = a
        return bad, non_finite, int(a)

    def applied(self, applied):
        """The index to credit: the last action's for None, else the caller's, checked."""
        if applied is None:
            return int(self.action[0])
        idx = int(np.asarray(applied).reshape(-1)[0])
        if not 0 <= idx < self.n_actions:
            raise ValueError(message("Agent.applied_action", f"an index in [0, {self.n_actions})", idx))
        return idx

    def credit(self, actor, x, applied, ent):
        """As GaussianHead.credit for the index ``applied``."""
        agent_step.actor_credit_categorical(actor, x, self.n_actions, self.applied(applied), ent)
