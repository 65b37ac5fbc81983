"""A stand-in policy for tests and benchmarks: a fixed linear controller with emulated costs."""
import numpy as np

from controller.clock import NS, MonotonicClock


class FixedPolicy:
    """A stand-in policy implementing the Policy protocol: action = clip(gain @ obs + bias, low, high).

    obs_dim, action_dim: ints; ``gain`` float64 (action_dim, obs_dim) (default zeros); ``bias``
    (action_dim,); ``act_cost`` / ``learn_cost`` / ``skip_cost``: seconds of busy-waiting on ``clock``
    per call (emulates forward / learning cost; on a FakeClock it advances the fake time). ``discrete``:
    act returns a length-1 array holding the index argmax(gain @ obs + bias). Counts every call
    (``acts``, ``updates``, ``skips``, ``credits``, ``resets``); ``log`` (a list, when ``record=True``)
    keeps ("act"|"update"|"skip"|"credit"|"reset", args) tuples for protocol tests (allocates).
    """

    def __init__(self, obs_dim, action_dim, gain=None, bias=None, low=-1.0, high=1.0, act_cost=0.0,
                 learn_cost=0.0, skip_cost=0.0, clock=None, discrete=False, record=False):
        self.obs_dim = int(obs_dim)
        self.action_dim = int(action_dim)
        self.gain = np.zeros((action_dim, obs_dim)) if gain is None else np.array(gain, dtype=np.float64)
        self.bias = np.zeros(action_dim) if bias is None else np.array(bias, dtype=np.float64)
        if self.gain.shape != (action_dim, obs_dim):
            raise ValueError(f"gain: expected shape ({action_dim}, {obs_dim}), found {self.gain.shape}")
        self.low, self.high = low, high
        self.clock = clock if clock is not None else MonotonicClock()
        self.act_cost_ns = int(act_cost * NS)
        self.learn_cost_ns = int(learn_cost * NS)
        self.skip_cost_ns = int(skip_cost * NS)
        self.discrete = discrete
        self._z = np.zeros(action_dim)
        self._a = np.zeros(1 if discrete else action_dim)
        self.applied = np.zeros(1 if discrete else action_dim)
        self.acts = self.updates = self.skips = self.credits = self.resets = 0
        self.record = record
        self.log = []

    def act(self, obs):
        self.acts += 1
        np.matmul(self.gain, obs, out=self._z)
        self._z += self.bias
        if self.discrete:
            self._a[0] = float(np.argmax(self._z))
        else:
            np.clip(self._z, self.low, self.high, out=self._a)
        if self.act_cost_ns:
            self.clock.spin(self.act_cost_ns)
        if self.record:
            self.log.append(("act", obs.copy()))
        return self._a

    def update(self, reward, obs, terminated, truncated):
        self.updates += 1
        self._learn("update", self.learn_cost_ns, reward, obs, terminated, truncated)

    def skip(self, reward, obs, terminated, truncated):
        self.skips += 1
        self._learn("skip", self.skip_cost_ns, reward, obs, terminated, truncated)

    def _learn(self, kind, cost_ns, reward, obs, terminated, truncated):
        if cost_ns:
            self.clock.spin(cost_ns)
        if self.record:
            self.log.append((kind, (reward, obs.copy(), terminated, truncated)))

    def credit(self, applied_action):
        self.credits += 1
        self.applied[:] = applied_action
        if self.record:
            self.log.append(("credit", applied_action.copy()))

    def reset(self):
        self.resets += 1
        if self.record:
            self.log.append(("reset", None))


__all__ = ["FixedPolicy"]
