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
"""
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
