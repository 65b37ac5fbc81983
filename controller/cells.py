"""Recurrent cells that learn with exact RTRL: RTUCell (design.md §3.1-3.3) and LRUCell (§3.4).

A cell owns its packed arrays (``controller.kernels.layout``) and calls one fused numba kernel per
method. Two doors:

* checked (``step``, ``grad``, ``step_grad``, ``forward``, ``traces_grad``): validate shape, dtype,
  contiguity and finiteness of every input, then call the kernel;
* unchecked (the same names with ``_unchecked``): call the kernel directly, for the real-time loop,
  whose inputs were validated once upstream. A wrong shape there is undefined behaviour.

Returned arrays are views into the cell's buffers, overwritten by the next call: copy them to keep them.
Nothing is allocated per call; every kernel compiles on first use (``controller.warmup`` compiles them all
ahead of a run).
"""
import numpy as np

from controller.buffers import aligned_zeros
from controller.errors import ConfigError, check, message
from controller.kernels import layout
from controller.kernels import lru as lru_k
from controller.kernels import rtu as rtu_k
from controller.validation import as_float_dtype, check_vector, choice, positive_int

_INIT_EPS = 1e-3  # init draws u ~ U(eps, 1 - eps): keeps r away from 0 and 1 (design.md §6 item 3)


def ring_init(rng, n, r_min, r_max, max_phase):
    """(nu_log, theta_log), each (n,) float64: r^2 uniform on [r_min^2, r_max^2], phase U(0, max_phase).

    design.md §3.1: nu_log = log(-1/2 log(u (r_max^2 - r_min^2) + r_min^2)), theta_log = log(max_phase u').
    """
    u = rng.uniform(_INIT_EPS, 1.0 - _INIT_EPS, size=n)
    nu_log = np.log(-0.5 * np.log(u * (r_max ** 2 - r_min ** 2) + r_min ** 2))
    theta_log = np.log(max_phase * rng.uniform(_INIT_EPS, 1.0 - _INIT_EPS, size=n))
    return nu_log, theta_log


_PAGE = 4096


def slab_array(slabs, d, n, dtype):
    """Zeroed (slabs, d + pad, n) array for a cell's (d, n) slabs; the kernels use rows 0..d-1.

    When the slab size is a multiple of the 4 KiB page (paper size: 64 x 192 x 4 B = 12 pages), the
    same element of different slabs shares its low 12 address bits, and the loads and stores that the
    trace sweep interleaves across slabs alias in the CPU's store-forwarding check (4K aliasing), which
    stalls the sweep. ``pad`` (0..15 extra rows) is chosen so that the offsets between slabs
    are spread over the page. The array starts on a cache line (``controller.buffers``), so every row
    does too when a row is a whole number of cache lines (n a multiple of 16 in float32, 8 in float64).
    """
    row = n * np.dtype(dtype).itemsize
    best_pad, best_score = 0, -1
    for pad in range(16):
        stride = (d + pad) * row
        score = min(min(s * stride % _PAGE, _PAGE - s * stride % _PAGE) for s in range(1, slabs))
        if score > best_score:
            best_pad, best_score = pad, score
        if score >= 256:
            break
    return aligned_zeros((slabs, d + best_pad, n), dtype)


def _check_ring(r_min, r_max, max_phase, owner):
    if not (0.0 <= r_min < r_max <= 1.0):
        raise ConfigError(message(f"{owner}.r_min, r_max", "0 <= r_min < r_max <= 1",
                                  f"r_min={r_min}, r_max={r_max}"))
    check(max_phase > 0.0, f"{owner}.max_phase", "a number > 0 (radians)", max_phase)


class _Cell:
    """What RTUCell and LRUCell share: the checked door (validate every input, then call the method's
    ``_unchecked`` twin) and the views of the input-major slabs. A subclass sets ``n_in``, ``n_out``,
    ``dtype`` and ``mat``, and defines the ``*_unchecked`` methods."""

    def _slab(self, index):
        """Slab `index` of mat without the padding rows: (d, n) view."""
        return self.mat[index, :self.n_in]

    def _check_x(self, x):
        check_vector(x, self.n_in, self.dtype, "x", type(self).__name__)

    def _check_dy(self, dy):
        check_vector(dy, self.n_out, self.dtype, "dy", type(self).__name__)

    def step(self, x):
        """Forward + RTRL trace update. x: (n_in,) of the cell's dtype. Returns y: (n_out,) view."""
        self._check_x(x)
        return self.step_unchecked(x)

    def grad(self, dy, with_input_grad=False):
        """Gradient dict (views) for dL/dy_t = dy: (n_out,). Fills ``dx`` if with_input_grad."""
        self._check_dy(dy)
        return self.grad_unchecked(dy, with_input_grad)

    def step_grad(self, x, dy, with_input_grad=False):
        """``step(x)`` then ``grad(dy)`` in one fused pass, for a dy known before y_t is seen.

        Returns (y, grads), both views.
        """
        self._check_x(x)
        self._check_dy(dy)
        return self.step_grad_unchecked(x, dy, with_input_grad)

    def forward(self, x):
        """Forward only (the action path): advance the state, return y; traces wait for traces_grad."""
        self._check_x(x)
        return self.forward_unchecked(x)

    def traces_grad(self, x, dy, with_input_grad=False):
        """After ``forward(x)``: RTRL trace update for that step, then the gradient for dy (views).

        ``forward(x)`` + ``traces_grad(x, dy)`` equals ``step(x)`` + ``grad(dy)``; x must be the same.
        """
        self._check_x(x)
        self._check_dy(dy)
        return self.traces_grad_unchecked(x, dy, with_input_grad)


class RTUCell(_Cell):
    """One Recurrent Trace Unit layer with exact RTRL.

    RTUCell(n_in, n_hidden, variant="linear"|"nonlinear", activation="tanh"|"relu"|"identity",
    dtype=np.float64, seed=0, *, official_theta_grad=False, r_min=0.0, r_max=1.0, max_phase=6.28)

    * ``params``: dict of the live parameter arrays ``nu_log`` (n,), ``theta_log`` (n,), ``w1`` (n, d),
      ``w2`` (n, d); writing into them changes the cell (the coefficients follow automatically).
    * ``step(x)``: x (d,) -> y (2n,) = [real part of units 0..n-1, imaginary part of units 0..n-1];
      advances state and RTRL traces.
    * ``grad(dy)``: dict with the keys of ``params``: the gradient at the current step of a loss whose
      derivative wrt y_t is dy (2n,), through the whole history. ``with_input_grad=True`` also fills
      ``dx`` (d,) with the one-step gradient wrt the input.
    * ``reset()``: zero state and traces (start of an episode).
    * ``official_theta_grad=True`` reproduces the official JAX code's theta derivative (no factor theta).
    """

    def __init__(self, n_in, n_hidden, variant="linear", activation="tanh", dtype=np.float64, seed=0,
                 *, official_theta_grad=False, r_min=0.0, r_max=1.0, max_phase=6.28):
        owner = "RTUCell"
        self.n_in = positive_int(n_in, f"{owner}.n_in")
        self.n_hidden = positive_int(n_hidden, f"{owner}.n_hidden")
        self.variant = variant
        self.activation = activation
        self._variant = choice(variant, layout.VARIANTS, f"{owner}.variant")
        self._act = choice(activation, layout.ACTIVATIONS, f"{owner}.activation")
        self.dtype = as_float_dtype(dtype, owner)
        self.official_theta_grad = bool(official_theta_grad)
        self._official = int(self.official_theta_grad)
        _check_ring(r_min, r_max, max_phase, owner)
        n, d = self.n_hidden, self.n_in
        self.n_out = 2 * n
        slabs = layout.RTU_MAT_SLABS_LINEAR if self._variant == layout.VARIANT_LINEAR else layout.RTU_MAT_SLABS_NONLINEAR
        self.vec = aligned_zeros((layout.RTU_VEC_ROWS, n), self.dtype)
        self.mat = slab_array(slabs, d, n, self.dtype)  # input-major: public (n, d) arrays are slab.T
        self.dx = aligned_zeros(d, self.dtype)  # own cache lines: the critic thread writes it

        rng = np.random.default_rng(seed)
        nu_log, theta_log = ring_init(rng, n, r_min, r_max, max_phase)
        self.vec[layout.RTU_NU] = nu_log
        self.vec[layout.RTU_TH] = theta_log
        self._slab(layout.RTU_W1).T[...] = rng.normal(0.0, 1.0 / np.sqrt(d), size=(n, d))  # LeCun normal
        self._slab(layout.RTU_W2).T[...] = rng.normal(0.0, 1.0 / np.sqrt(d), size=(n, d))
        self.vec[layout.RTU_SRC_NU:layout.RTU_SRC_TH + 1] = np.nan  # coefficients stale until computed

        self.params = {"nu_log": self.vec[layout.RTU_NU], "theta_log": self.vec[layout.RTU_TH],
                       "w1": self._slab(layout.RTU_W1).T, "w2": self._slab(layout.RTU_W2).T}
        self.grads = {"nu_log": self.vec[layout.RTU_GR_NU], "theta_log": self.vec[layout.RTU_GR_TH],
                      "w1": self._slab(layout.RTU_GW1).T, "w2": self._slab(layout.RTU_GW2).T}
        self.y = self.vec[layout.RTU_Y1:layout.RTU_Y2 + 1].reshape(-1)
        assert np.shares_memory(self.y, self.vec)  # rows Y1, Y2 adjacent: y is a view of length 2n
        self.state = self.vec[layout.RTU_C1:layout.RTU_C2 + 1]
        self.refresh_coefficients()

    # ------------------------------------------------------------------ lifecycle
    def reset(self):
        """Zero the state c, the saved forward values and every RTRL trace (new episode)."""
        self.vec[layout.RTU_C1:layout.RTU_C2 + 1] = 0.0
        self.vec[layout.RTU_Y1:layout.RTU_U2 + 1] = 0.0
        self.vec[layout.RTU_S1_NU:layout.RTU_S2_TH + 1] = 0.0
        self.vec[layout.RTU_GR_NU:] = 0.0
        self.mat[layout.RTU_S1_W1:] = 0.0

    def reset_traces(self):
        """Zero the RTRL traces only, keeping the state: truncates the gradient history here (used when
        a learning step was skipped and the traces could not follow the forward)."""
        self.vec[layout.RTU_S1_NU:layout.RTU_S2_TH + 1] = 0.0
        self.mat[layout.RTU_S1_W1:] = 0.0

    def refresh_coefficients(self):
        """Recompute g, phi, eta and their derivatives for units whose nu_log/theta_log changed.

        Kernels also do this lazily, so calling it is optional; a learner calls it right after a
        parameter update so that the next forward (the action path) finds them ready.
        """
        rtu_k.rtu_refresh_coefficients(self.vec, self._official)

    @property
    def traces(self):
        """The RTRL traces as a dict of views: S1_/S2_ + nu_log, theta_log, w1 (and w2 if non-linear).

        For the linear RTU the w2 traces are not stored: S1_w2 = -S2_w1 and S2_w2 = S1_w1.
        """
        out = {"S1_nu_log": self.vec[layout.RTU_S1_NU], "S2_nu_log": self.vec[layout.RTU_S2_NU],
               "S1_theta_log": self.vec[layout.RTU_S1_TH], "S2_theta_log": self.vec[layout.RTU_S2_TH],
               "S1_w1": self._slab(layout.RTU_S1_W1).T, "S2_w1": self._slab(layout.RTU_S2_W1).T}
        if self._variant == layout.VARIANT_NONLINEAR:
            out["S1_w2"] = self._slab(layout.RTU_S1_W2).T
            out["S2_w2"] = self._slab(layout.RTU_S2_W2).T
        return out

    # ------------------------------------------------------------------ unchecked door (real-time)
    def step_unchecked(self, x):
        rtu_k.rtu_step(x, self.vec, self.mat, self._variant, self._act, self._official)
        return self.y

    def grad_unchecked(self, dy, with_input_grad=False):
        rtu_k.rtu_grad(dy, self.vec, self.mat, self.dx, self._variant, self._act, with_input_grad)
        return self.grads

    def step_grad_unchecked(self, x, dy, with_input_grad=False):
        rtu_k.rtu_step_grad(x, dy, self.vec, self.mat, self.dx, self._variant, self._act,
                            self._official, with_input_grad)
        return self.y, self.grads

    def forward_unchecked(self, x):
        rtu_k.rtu_forward(x, self.vec, self.mat, self._variant, self._act, self._official)
        return self.y

    def traces_grad_unchecked(self, x, dy, with_input_grad=False):
        rtu_k.rtu_traces_grad(x, dy, self.vec, self.mat, self.dx, self._variant, self._act,
                              with_input_grad)
        return self.grads

    def __repr__(self):
        return (f"RTUCell(n_in={self.n_in}, n_hidden={self.n_hidden}, variant={self.variant!r}, "
                f"activation={self.activation!r}, dtype={self.dtype.name})")


class LRUCell(_Cell):
    """Online LRU (complex diagonal recurrence) with exact RTRL: the baseline of design.md §3.4.

    LRUCell(n_in, n_hidden, n_out=None, dtype=np.float64, seed=0, *, r_min=0.0, r_max=1.0,
    max_phase=6.28); n_out defaults to n_hidden.

    * ``params``: ``nu_log`` (n,), ``theta_log`` (n,), ``gamma_log`` (n,), ``B_re``, ``B_im`` (n, d),
      ``C_re``, ``C_im`` (m, n); live views, writing into them changes the cell.
    * ``step(x)``: x (d,) -> y = Re(C h) (m,); advances state and traces.
    * ``grad(dy)``: gradients (same keys) for dL/dy_t = dy: (m,). nu_log, theta_log, gamma_log and B
      through the whole history (RTRL); C one-step, which is exact because y_t depends on C only through
      h_t. ``with_input_grad=True`` also fills ``dx`` (d,).
    * ``reset()``: zero state and traces.
    """

    def __init__(self, n_in, n_hidden, n_out=None, dtype=np.float64, seed=0, *, r_min=0.0, r_max=1.0,
                 max_phase=6.28):
        owner = "LRUCell"
        self.n_in = positive_int(n_in, f"{owner}.n_in")
        self.n_hidden = positive_int(n_hidden, f"{owner}.n_hidden")
        self.n_out = positive_int(self.n_hidden if n_out is None else n_out, f"{owner}.n_out")
        self.dtype = as_float_dtype(dtype, owner)
        _check_ring(r_min, r_max, max_phase, owner)
        n, d, m = self.n_hidden, self.n_in, self.n_out
        self.vec = aligned_zeros((layout.LRU_VEC_ROWS, n), self.dtype)
        self.mat = slab_array(layout.LRU_MAT_SLABS, d, n, self.dtype)  # input-major: public (n, d) = slab.T
        self.cmat = aligned_zeros((layout.LRU_CMAT_SLABS, m, n), self.dtype)
        self.y = np.zeros(m, self.dtype)
        self.dx = aligned_zeros(d, self.dtype)  # own cache lines: the critic thread writes it

        rng = np.random.default_rng(seed)
        nu_log, theta_log = ring_init(rng, n, r_min, r_max, max_phase)
        self.vec[layout.LRU_NU] = nu_log
        self.vec[layout.LRU_TH] = theta_log
        self.vec[layout.LRU_GLOG] = 0.5 * np.log(-np.expm1(-2.0 * np.exp(nu_log)))  # log sqrt(1 - |lambda|^2)
        self._slab(layout.LRU_B_RE).T[...] = rng.normal(0.0, np.sqrt(0.5 / d), size=(n, d))
        self._slab(layout.LRU_B_IM).T[...] = rng.normal(0.0, np.sqrt(0.5 / d), size=(n, d))
        self.cmat[layout.LRU_C_RE] = rng.normal(0.0, np.sqrt(0.5 / n), size=(m, n))
        self.cmat[layout.LRU_C_IM] = rng.normal(0.0, np.sqrt(0.5 / n), size=(m, n))
        self.vec[layout.LRU_SRC_NU:layout.LRU_SRC_GLOG + 1] = np.nan

        self.params = {"nu_log": self.vec[layout.LRU_NU], "theta_log": self.vec[layout.LRU_TH],
                       "gamma_log": self.vec[layout.LRU_GLOG],
                       "B_re": self._slab(layout.LRU_B_RE).T, "B_im": self._slab(layout.LRU_B_IM).T,
                       "C_re": self.cmat[layout.LRU_C_RE], "C_im": self.cmat[layout.LRU_C_IM]}
        self.grads = {"nu_log": self.vec[layout.LRU_GR_NU], "theta_log": self.vec[layout.LRU_GR_TH],
                      "gamma_log": self.vec[layout.LRU_GR_GLOG],
                      "B_re": self._slab(layout.LRU_GB_RE).T, "B_im": self._slab(layout.LRU_GB_IM).T,
                      "C_re": self.cmat[layout.LRU_GC_RE], "C_im": self.cmat[layout.LRU_GC_IM]}
        self.state = self.vec[layout.LRU_H_RE:layout.LRU_H_IM + 1]
        self.refresh_coefficients()

    def reset(self):
        """Zero the state h, the saved forward values, the output and every RTRL trace."""
        self.vec[layout.LRU_H_RE:layout.LRU_E_G_IM + 1] = 0.0
        self.mat[layout.LRU_EB_RE:layout.LRU_EB_IM + 1] = 0.0
        self.y[:] = 0.0

    def reset_traces(self):
        """Zero the RTRL traces only, keeping the state (see RTUCell.reset_traces)."""
        self.vec[layout.LRU_E_LAM_RE:layout.LRU_E_G_IM + 1] = 0.0
        self.mat[layout.LRU_EB_RE:layout.LRU_EB_IM + 1] = 0.0

    def refresh_coefficients(self):
        """Recompute lambda and gamma for units whose parameters changed (optional; kernels do it lazily)."""
        lru_k.lru_refresh_coefficients(self.vec)

    @property
    def traces(self):
        """RTRL traces as views: complex dh/dlambda, dh/dgamma (n,) and dh/dB (n, d), as re/im pairs."""
        return {"e_lambda_re": self.vec[layout.LRU_E_LAM_RE], "e_lambda_im": self.vec[layout.LRU_E_LAM_IM],
                "e_gamma_re": self.vec[layout.LRU_E_G_RE], "e_gamma_im": self.vec[layout.LRU_E_G_IM],
                "e_B_re": self._slab(layout.LRU_EB_RE).T, "e_B_im": self._slab(layout.LRU_EB_IM).T}

    def step_unchecked(self, x):
        lru_k.lru_step(x, self.vec, self.mat, self.cmat, self.y)
        return self.y

    def grad_unchecked(self, dy, with_input_grad=False):
        lru_k.lru_grad(dy, self.vec, self.mat, self.cmat, self.dx, with_input_grad)
        return self.grads

    def step_grad_unchecked(self, x, dy, with_input_grad=False):
        lru_k.lru_step_grad(x, dy, self.vec, self.mat, self.cmat, self.y, self.dx, with_input_grad)
        return self.y, self.grads

    def forward_unchecked(self, x):
        lru_k.lru_forward(x, self.vec, self.mat, self.cmat, self.y)
        return self.y

    def traces_grad_unchecked(self, x, dy, with_input_grad=False):
        lru_k.lru_traces_grad(x, dy, self.vec, self.mat, self.cmat, self.dx, with_input_grad)
        return self.grads

    def __repr__(self):
        return (f"LRUCell(n_in={self.n_in}, n_hidden={self.n_hidden}, n_out={self.n_out}, "
                f"dtype={self.dtype.name})")
