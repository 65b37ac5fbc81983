"""``PPOConfig``: every hyperparameter of the batch learner ``controller.ppo.PPOAgent`` (PPO whose
recurrent layer learns by RTRL), validated once.

Defaults follow the RTU paper's PPO-RTRL configuration for the MuJoCo "-P" tasks: rollouts of 2048 steps,
4 epochs of 32 shuffled minibatches of single time steps, Adam at 1e-4 (eps 1e-5) after a global
gradient-norm clip of 0.5, γ = 0.99, GAE λ = 0.95, clip 0.2, value coefficient 0.5, no entropy bonus,
encoder 64 -> 192 RTUs -> heads of 64. ``cell: none`` is the feed-forward baseline (the heads read the
encoder's output; no RTU, no traces).
"""
import dataclasses
import math
from typing import Literal

from controller.errors import check

CELLS = ("rtu-linear", "rtu-nonlinear", "none")


def _finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Every hyperparameter of ``PPOAgent`` (defaults: the paper's PPO-RTRL configuration)."""

    rollout_steps: int = 2048
    """transitions stored before each update (one environment, so also the update period in env steps)"""
    epochs: int = 4
    """passes over the rollout per update"""
    minibatches: int = 32
    """minibatches per epoch; each holds rollout_steps / minibatches single time steps, shuffled"""
    lr: float = 1e-4
    """Adam step size"""
    adam_eps: float = 1e-5
    """Adam ε, added to sqrt(v̂)"""
    max_grad_norm: float | None = 0.5
    """the minibatch gradient is scaled down to this global L2 norm; None: no clipping"""
    gamma: float = 0.99
    """discount γ"""
    gae_lambda: float = 0.95
    """GAE λ"""
    clip: float = 0.2
    """PPO ratio clip ε (also the value clip when clip_value_loss)"""
    value_coef: float = 0.5
    """weight of the value loss 0.5 (V - R)^2"""
    entropy_coef: float = 0.0
    """weight of the entropy bonus (subtracted from the loss)"""
    clip_value_loss: bool = True
    """max of the plain and the clipped value loss, V_old + clip(V - V_old, ±clip), as the official code"""
    normalize_advantages: bool = True
    """advantages standardised per minibatch (population std + 1e-8), as the official code"""
    normalize_observations: bool = True
    """observations standardised by a running mean/variance (updated while acting, frozen in updates)"""
    normalize_rewards: bool = True
    """rewards divided by the running std of the discounted return (gymnasium's NormalizeReward)"""
    encoder_width: int = 64
    """Dense + tanh between the normalised observation and the recurrent layer"""
    n_units: int = 192
    """RTU units n (the layer outputs 2n features, ReLU of the real and imaginary parts)"""
    head_width: int = 64
    """hidden Dense + tanh of each head (actor, critic)"""
    cell: Literal["rtu-linear", "rtu-nonlinear", "none"] = "rtu-linear"
    """linear recurrence with ReLU on the output, ReLU inside the recurrence (non-linear RTU), or none:
    feed-forward, the heads read the encoder's output (n_units unused)"""
    log_std_init: float = 0.0
    """initial state-independent log standard deviation of the Gaussian policy"""
    dtype: Literal["float32", "float64"] = "float32"
    """dtype of the network, rollout and optimiser arrays"""

    def __post_init__(self):
        for name in ("rollout_steps", "epochs", "minibatches", "encoder_width", "n_units", "head_width"):
            check(_count(getattr(self, name)), name, "an integer >= 1", getattr(self, name))
        check(self.rollout_steps % self.minibatches == 0, "minibatches",
              f"a divisor of rollout_steps = {self.rollout_steps}", self.minibatches)
        check(_finite(self.lr) and self.lr > 0, "lr", "a finite number > 0", self.lr)
        check(_finite(self.adam_eps) and self.adam_eps > 0, "adam_eps", "a finite number > 0", self.adam_eps)
        check(self.max_grad_norm is None or (_finite(self.max_grad_norm) and self.max_grad_norm > 0),
              "max_grad_norm", "null or a finite number > 0", self.max_grad_norm)
        check(_finite(self.gamma) and 0.0 <= self.gamma <= 1.0, "gamma", "a number in [0, 1]", self.gamma)
        check(_finite(self.gae_lambda) and 0.0 <= self.gae_lambda <= 1.0, "gae_lambda", "a number in [0, 1]",
              self.gae_lambda)
        check(_finite(self.clip) and self.clip > 0, "clip", "a finite number > 0", self.clip)
        for name in ("value_coef", "entropy_coef"):
            check(_finite(getattr(self, name)) and getattr(self, name) >= 0, name, "a finite number >= 0",
                  getattr(self, name))
        for name in ("clip_value_loss", "normalize_advantages", "normalize_observations", "normalize_rewards"):
            check(isinstance(getattr(self, name), bool), name, "true or false", getattr(self, name))
        check(self.cell in CELLS, "cell", f"one of {list(CELLS)}", self.cell)
        check(_finite(self.log_std_init), "log_std_init", "a finite number", self.log_std_init)
        check(self.dtype in ("float32", "float64"), "dtype", "'float32' or 'float64'", self.dtype)

    @property
    def minibatch_size(self):
        """Time steps per minibatch: rollout_steps // minibatches."""
        return self.rollout_steps // self.minibatches

    @property
    def variant(self):
        """RTUCell variant: "linear", "nonlinear", or None without a cell (``cell: none``)."""
        return {"rtu-linear": "linear", "rtu-nonlinear": "nonlinear"}.get(self.cell)
