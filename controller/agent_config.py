"""``AgentConfig``: every hyperparameter of the streaming agent (``controller.agent``), validated once."""
import dataclasses
import math
from typing import Literal

from controller.config import check
from controller.kernels.dense import HIDDEN_ACTIVATIONS

LAM_GROUPS = ("lam_policy_dense", "lam_policy_cell", "lam_value_dense", "lam_value_cell")


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Every hyperparameter of the streaming agent (defaults: design.md §3.5)."""

    cell: Literal["rtu-linear", "rtu-nonlinear", "lru", "none"] = "rtu-linear"
    """recurrent cell of both networks; "none" is the same agent without recurrence (feed-forward)"""
    n_units: int = 192
    """RTU / LRU units n (the cell outputs 2n features)"""
    encoder_width: int = 64
    """Dense layer before the cell (LayerNorm, hidden_activation)"""
    head_width: int = 64
    """Dense layer after the cell"""
    hidden_activation: Literal["tanh", "leaky_relu"] = "leaky_relu"
    """activation of both dense hidden layers (encoder and head); leaky ReLU rather than the tanh of
    design.md §3.5's first network, for the reason in design.md §5 (docs/agent.md, "Architecture")"""
    head_layernorm: bool = True
    """LayerNorm (no affine) after the head's hidden Dense, as after the encoder's (reference code)"""
    input_skip: bool = False
    """the head's Dense also reads the cell's input (the encoder output), as the LRU's D x term: the head
    sees the observation's features directly; no effect with cell "none" (docs/agent.md, "Learner options")"""
    rtu_activation: Literal["tanh", "relu", "identity"] = "tanh"
    rtu_r_min: float = 0.0
    """the RTU's initial |λ| = r: r² is drawn uniform on [rtu_r_min², rtu_r_max²] (RTUCell's r_min;
    both networks; no effect with cell "lru" or "none")"""
    rtu_r_max: float = 1.0
    """upper end of the RTU's initial r (RTUCell's r_max)"""
    rtu_max_phase: float = 6.28
    """the RTU's initial phases θ are drawn uniform on (0, rtu_max_phase) radians (RTUCell's max_phase)"""
    alpha: float = 1.0
    """ObGD step size α"""
    gamma: float = 0.99
    """discount γ"""
    lam: float = 0.8
    """trace decay λ of every parameter group whose own λ below is null"""
    lam_policy_dense: float | None = None
    """λ of the actor's dense layers (encoder and head): its traces decay by γ·λ; null: lam"""
    lam_policy_cell: float | None = None
    """λ of the actor's recurrent cell parameters; null: lam (no effect with cell "none")"""
    lam_value_dense: float | None = None
    """λ of the critic's dense layers; null: lam"""
    lam_value_cell: float | None = None
    """λ of the critic's recurrent cell parameters; null: lam (no effect with cell "none")"""
    kappa_policy: float | None = None
    """ObGD κ of the actor; None: 1.5 with a recurrent cell, 3.0 without"""
    kappa_value: float | None = None
    """ObGD κ of the critic; None: 1.0 with a recurrent cell, 2.0 without"""
    obgd_scope: Literal["network", "group"] = "network"
    """what one ObGD bound covers: "network" (design.md §3.5: the whole network's ||z||₁) or "group" (the
    dense layers and the recurrent cell each bounded by their own ||z||₁, so the cell is not slowed by
    the dense layers' larger traces; docs/agent.md, "ObGD scope")"""
    entropy_coef: float = 0.01
    """c_ent"""
    sparsity: float = 0.9
    """fraction of each dense unit's incoming weights zeroed at init"""
    normalize_observations: bool = True
    scale_rewards: bool = True
    dtype: Literal["float32", "float64"] = "float32"

    def __post_init__(self):
        check(self.n_units >= 1, "n_units", "an integer >= 1", self.n_units)
        check(self.encoder_width >= 1, "encoder_width", "an integer >= 1", self.encoder_width)
        check(self.head_width >= 1, "head_width", "an integer >= 1", self.head_width)
        check(0.0 < self.rtu_r_max <= 1.0, "rtu_r_max", "a number in (0, 1]", self.rtu_r_max)
        check(0.0 <= self.rtu_r_min < self.rtu_r_max, "rtu_r_min", f"a number in [0, rtu_r_max = {self.rtu_r_max})",
              self.rtu_r_min)
        check(self.rtu_max_phase > 0 and math.isfinite(self.rtu_max_phase), "rtu_max_phase",
              "a finite number > 0 (radians)", self.rtu_max_phase)
        check(self.alpha > 0 and math.isfinite(self.alpha), "alpha", "a finite number > 0", self.alpha)
        check(0.0 <= self.gamma <= 1.0, "gamma", "a number in [0, 1]", self.gamma)
        check(0.0 <= self.lam <= 1.0, "lam", "a number in [0, 1]", self.lam)
        for name in LAM_GROUPS:
            v = getattr(self, name)
            check(v is None or 0.0 <= v <= 1.0, name, "null or a number in [0, 1]", v)
        for name in ("kappa_policy", "kappa_value"):
            v = getattr(self, name)
            check(v is None or (v > 0 and math.isfinite(v)), name, "null or a finite number > 0", v)
        check(self.entropy_coef >= 0 and math.isfinite(self.entropy_coef), "entropy_coef",
              "a finite number >= 0", self.entropy_coef)
        check(self.hidden_activation in HIDDEN_ACTIVATIONS, "hidden_activation",
              f"one of {list(HIDDEN_ACTIVATIONS)}", self.hidden_activation)
        check(0.0 <= self.sparsity < 1.0, "sparsity", "a number in [0, 1)", self.sparsity)
        check(self.obgd_scope in ("network", "group"), "obgd_scope", "'network' or 'group'", self.obgd_scope)
        check(isinstance(self.input_skip, bool), "input_skip", "true or false", self.input_skip)

    @property
    def recurrent(self):
        return self.cell != "none"

    @property
    def trace_decays(self):
        """γ·λ of each parameter group, λ of a group being lam unless set:
        ((actor dense layers, actor cell), (critic dense layers, critic cell))."""
        def decay(lam):
            return self.gamma * (self.lam if lam is None else lam)

        return ((decay(self.lam_policy_dense), decay(self.lam_policy_cell)),
                (decay(self.lam_value_dense), decay(self.lam_value_cell)))

    @property
    def kappas(self):
        """(κ_policy, κ_value) with the cell-dependent defaults resolved."""
        kp = self.kappa_policy if self.kappa_policy is not None else (1.5 if self.recurrent else 3.0)
        kv = self.kappa_value if self.kappa_value is not None else (1.0 if self.recurrent else 2.0)
        return kp, kv
