"""The learner's health over a training run, for the periodic metrics records (continual learning).

``LearnerHealth(agent, sample_every)``: ``sample()`` (every ``sample_every`` env steps, from train's
after-tick hook) notes which hidden units of both networks were active (activation > 0) at that step;
``record()`` returns, and starts a new window:

* ``dormant``: per network, the fraction of hidden units (encoder and head hidden layer) that were not
  active at any sampled step of the window (Dohare et al. 2024 count a unit dormant when it is almost
  never active; with leaky ReLU "active" is a positive pre-activation);
* ``weight_norm``: per network, the L2 norm of the dense parameters and of the cell's parameters;
* ``trace_l1``: per network, [||z||_1 of the dense layers, of the cell] after the last accumulation;
* ``step``: per network, the effective step sizes of the last update [dense, cell] (ObGD's bounded step).

Reading only: the agent's state and results are unchanged. Cost: one NumPy comparison over the hidden
units per sample (a few µs every ``sample_every`` steps), nothing per tick otherwise.

``PPOHealth(agent)`` is the PPO learner's (``controller.ppo.PPOAgent``) record, read at each record only:
``weight_norm`` per part (encoder, cell, actor, critic), ``log_std_mean`` and the last update's
``approx_kl``, ``clip_fraction``, ``explained_variance``, ``grad_norm`` (before clipping) and
``update_seconds`` (None before the first update).
"""
import math

import numpy as np

from controller.kernels import dense
from controller.kernels.netstate import SC_CELL_STEP, SC_STEP


class LearnerHealth:
    def __init__(self, agent, sample_every=10):
        self.agent = agent
        self.sample_every = int(sample_every)
        self._views = {}
        for name in ("actor", "critic"):
            net = getattr(agent, name)
            lay = net.lay
            enc = net.A[lay[dense.LAY_A_ENC]:lay[dense.LAY_A_ENC] + lay[dense.LAY_H]]
            hid = net.A[lay[dense.LAY_A_HID]:lay[dense.LAY_A_HID] + lay[dense.LAY_H2]]
            self._views[name] = (enc, hid)
        self._active = {name: np.zeros(enc.size + hid.size, bool) for name, (enc, hid) in self._views.items()}
        self._samples = 0

    def sample(self):
        """Note the active hidden units of both networks now."""
        for name, (enc, hid) in self._views.items():
            active = self._active[name]
            active[:enc.size] |= enc > 0
            active[enc.size:] |= hid > 0
        self._samples += 1

    def record(self):
        """The window's figures (JSON-able dict); the window restarts."""
        agent = self.agent
        agent.sync()
        out = {"samples": self._samples, "dormant": {}, "weight_norm": {}, "trace_l1": {}, "step": {}}
        for name in ("actor", "critic"):
            net = getattr(agent, name)
            if self._samples:
                out["dormant"][name] = round(float(1.0 - self._active[name].mean()), 4)
            cell = sum(float(np.square(p, dtype=np.float64).sum()) for p, _, _ in net.parameter_groups()[1:])
            out["weight_norm"][name] = [round(float(np.linalg.norm(net.P.astype(np.float64))), 4),
                                        round(cell ** 0.5, 4)]
            out["trace_l1"][name] = [round(float(v), 6) for v in net.zl1]
            sc = net._sc     # the NetState's scratch scalars (the same array the kernels write)
            out["step"][name] = [abs(float(sc[SC_STEP])), abs(float(sc[SC_CELL_STEP]))]
            self._active[name][:] = False
        self._samples = 0
        return out


# parameters of each part of the PPO network (controller.ppo.PPOAgent.params; no "cell" with cell: none)
_PPO_PARTS = {"encoder": ("enc_w", "enc_b"), "cell": ("nu_log", "theta_log", "w1", "w2"),
              "actor": ("actor_w1", "actor_b1", "actor_w2", "actor_b2"),
              "critic": ("critic_w1", "critic_b1", "critic_w2", "critic_b2")}


class PPOHealth:
    """The PPO learner's figures for the periodic records (module docstring); same interface as
    ``LearnerHealth``, with nothing to sample between records."""

    sample_every = 1 << 62   # never: the record reads the parameters and the last update's statistics

    def __init__(self, agent):
        self.agent = agent

    def sample(self):
        """Nothing to note between records."""

    def record(self):
        """The figures now (JSON-able dict; floats, None where not yet defined)."""
        p, s = self.agent.params, self.agent.stats
        norms = {part: round(math.sqrt(sum(float(np.square(p[k], dtype=np.float64).sum()) for k in keys)), 4)
                 for part, keys in _PPO_PARTS.items() if keys[0] in p}

        def last(key):
            value = float(s[key])
            return round(value, 6) if math.isfinite(value) else None

        return {"weight_norm": norms, "log_std_mean": round(float(np.mean(p["log_std"], dtype=np.float64)), 6),
                "approx_kl": last("approx_kl"), "clip_fraction": last("clip_fraction"),
                "explained_variance": last("explained_variance"), "grad_norm": last("grad_norm"),
                "update_seconds": last("update_seconds"), "rollouts": int(s["rollouts"])}
