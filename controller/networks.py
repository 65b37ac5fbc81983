"""One network of the streaming agent: encoder -> recurrent cell -> head (design.md §3.5).

``Network`` owns every array of one network, allocated once: the flat dense parameters ``P``, their
one-step gradients ``G`` and eligibility traces ``Z`` (layout: ``controller.kernels.dense``), the
activations ``A``, the recurrent cell (an ``RTUCell``, an ``LRUCell`` or none) with its own parameters,
RTRL traces and gradients, and eligibility traces for the cell's parameters. Its methods are thin
sequences of kernel calls with no allocation:

* ``forward(x)``: x (d,) normalised observation -> ``out`` (k,) view; advances the cell state. The
  cell's RTRL traces wait for ``backward`` (the action path does forward work only).
* ``backward(x)``: after ``forward(x)`` and with dL/dout written into ``dout``: RTRL trace update of the
  cell, then the gradient of every parameter: one-step for encoder and head, full history for the cell
  (design.md §3.3). Gradients are overwritten.
* ``accumulate()``: z <- decay z + g for every parameter, with the decay of its group (``trace_decay``:
  the dense layers', ``cell_trace_decay``: the cell's, fixed at construction); returns ||z||_1 and
  records the dense layers' and the cell's shares in ``zl1`` (2,).
* ``apply(step, cell_step=None)``: w <- w + step z for every parameter (step = alpha_eff * delta; the
  cell's parameters take cell_step if given: the per-group ObGD bound), then the cell's per-unit
  coefficients are refreshed so the next forward finds them ready.
* ``apply_accumulate(step, cell_step=None)``: ``apply`` then ``accumulate`` in one pass.
* ``reset_state()`` / ``reset_traces()``: new episode.

``fused_traces=True`` (RTU cells; both of the agent's networks) keeps the cell's eligibility traces in
its gradient rows/slabs and never materialises a gradient: ``backward_accumulate`` adds each gradient
straight into the traces (the actor), and after ``forward_backward`` the gradient is computed inside the
next ``accumulate`` / ``apply_accumulate`` pass (the critic, whose gradient waits for δ). Both save a
write and a read of every gradient and shrink the working set (docs/benchmarks.md, agent section).
"""
import math

import numpy as np

from controller.buffers import aligned_zeros
from controller.cells import LRUCell, RTUCell
from controller.kernels import dense, layout, network_step
from controller.kernels.netstate import (
    CODE_ACTIVATION, CODE_CELL, CODE_FUSED_TRACES, CODE_VARIANT, CODES, DECAY_CELL, DECAY_DENSE, FIELDS,
    KIND_LRU, KIND_NONE, KIND_RTU, SC_SIZE, NetState,
)

CELL_KINDS = ("rtu-linear", "rtu-nonlinear", "lru", "none")


def sparse_init(rng, weight, sparsity):
    """Sparse init of streaming deep RL: for each output unit (row of weight (out, in)) zero
    ceil(sparsity * in) randomly chosen incoming weights and draw the rest from U(+-1/sqrt(in)). In place."""
    n_out, n_in = weight.shape
    bound = 1.0 / math.sqrt(n_in)
    weight[...] = rng.uniform(-bound, bound, size=weight.shape)
    n_zero = int(math.ceil(sparsity * n_in))
    n_zero = min(n_zero, n_in - 1)  # keep at least one input per unit
    for i in range(n_out):
        weight[i, rng.permutation(n_in)[:n_zero]] = 0.0


class Network:
    """encoder (Dense H, LayerNorm, f) -> cell -> Dense H2, [LayerNorm], f -> Dense k. See module docstring.

    Network(n_obs, n_out, cell="rtu-linear", *, encoder_width=64, n_units=192, head_width=64,
    rtu_activation="tanh", sparsity=0.9, dtype=np.float32, seed=0, fused_traces=False,
    hidden_activation="leaky_relu", head_layernorm=True, trace_decay=0.0, cell_trace_decay=None,
    rtu_r_min=0.0, rtu_r_max=1.0, rtu_max_phase=6.28, input_skip=False)

    hidden_activation: f of both dense hidden layers, "tanh" or "leaky_relu" (slope 0.01);
    head_layernorm: a LayerNorm (no affine) after the head's hidden Dense;
    trace_decay: the eligibility-trace decay (γλ, in [0, 1]) of the encoder and head parameters;
    cell_trace_decay: the cell's (None: trace_decay). Fixed for the network's life (a helper thread's
    ``private_state`` holds a copy);
    rtu_r_min, rtu_r_max, rtu_max_phase: the RTU's initial ranges (``RTUCell``'s r_min, r_max, max_phase:
    r² uniform on [r_min², r_max²], phase uniform on (0, max_phase)); the LRU keeps its own defaults;
    input_skip: the head's Dense reads [cell output, cell input] (m + H values: the LRU's D x term) and the
    encoder gets its one-step gradient through both; no effect without a cell (the head reads the encoder
    output already).

    Cell output sizes m: RTU 2 * n_units (real and imaginary halves), LRU 2 * n_units (Re(C h) with
    C of 2 n_units rows, the same feature count), none: the encoder output (H).
    """

    def __init__(self, n_obs, n_out, cell="rtu-linear", *, encoder_width=64, n_units=192, head_width=64,
                 rtu_activation="tanh", sparsity=0.9, dtype=np.float32, seed=0, fused_traces=False,
                 hidden_activation="leaky_relu", head_layernorm=True, trace_decay=0.0, cell_trace_decay=None,
                 rtu_r_min=0.0, rtu_r_max=1.0, rtu_max_phase=6.28, input_skip=False):
        if cell not in CELL_KINDS:
            raise ValueError(f"Network: cell must be one of {list(CELL_KINDS)}, got {cell!r}")
        cell_trace_decay = trace_decay if cell_trace_decay is None else cell_trace_decay
        for name, value in (("trace_decay", trace_decay), ("cell_trace_decay", cell_trace_decay)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Network: {name} must be in [0, 1], got {value!r}")
        if hidden_activation not in dense.HIDDEN_ACTIVATIONS:
            raise ValueError(f"Network: hidden_activation must be one of {list(dense.HIDDEN_ACTIVATIONS)}, "
                             f"got {hidden_activation!r}")
        self.hidden_activation = hidden_activation
        self.head_layernorm = bool(head_layernorm)
        self.dtype = np.dtype(dtype)
        self.cell_kind = cell
        # fused_traces (RTU cells only): the eligibility traces of the cell's parameters live in the
        # cell's gradient rows/slabs and the dense ones in Z, and ``backward_accumulate`` adds each
        # gradient straight into them (no gradient is materialised). Used by the agent's actor.
        self.fused_traces = bool(fused_traces) and cell in ("rtu-linear", "rtu-nonlinear")
        rng = np.random.default_rng(seed)
        d, h, h2, k = int(n_obs), int(encoder_width), int(head_width), int(n_out)
        cell_seed = int(rng.integers(2**31))
        if cell in ("rtu-linear", "rtu-nonlinear"):
            variant = "linear" if cell == "rtu-linear" else "nonlinear"
            self.cell = RTUCell(h, n_units, variant=variant, activation=rtu_activation, dtype=self.dtype,
                                seed=cell_seed, r_min=rtu_r_min, r_max=rtu_r_max, max_phase=rtu_max_phase)
            m = 2 * n_units
        elif cell == "lru":
            self.cell = LRUCell(h, n_units, n_out=2 * n_units, dtype=self.dtype, seed=cell_seed)
            m = 2 * n_units
        else:
            self.cell = None
            m = h
        self.n_obs, self.n_out, self.m = d, k, m
        self.input_skip = bool(input_skip) and self.cell is not None
        hin = m + h if self.input_skip else m   # the head's input size

        lay = np.zeros(dense.LAY_SIZE, np.int64)
        lay[dense.LAY_D], lay[dense.LAY_H], lay[dense.LAY_M], lay[dense.LAY_H2], lay[dense.LAY_K] = d, h, m, h2, k
        lay[dense.LAY_HIN], lay[dense.LAY_SKIP] = hin, int(self.input_skip)
        lay[dense.LAY_ACT] = dense.HIDDEN_ACTIVATIONS[hidden_activation]
        lay[dense.LAY_HEAD_LN] = int(self.head_layernorm)
        off = 0
        for slot, size in ((dense.LAY_P_WE, h * d), (dense.LAY_P_BE, h), (dense.LAY_P_WH, h2 * hin), (dense.LAY_P_BH, h2),
                           (dense.LAY_P_WO, k * h2), (dense.LAY_P_BO, k)):
            lay[slot] = off
            off += size
        lay[dense.LAY_P_SIZE] = off
        aoff = 0
        for slot, size in ((dense.LAY_A_PRE, h), (dense.LAY_A_LN, h), (dense.LAY_A_ENC, h), (dense.LAY_A_HID, h2),
                           (dense.LAY_A_OUT, k), (dense.LAY_A_DOUT, k), (dense.LAY_A_DHID, h2), (dense.LAY_A_DY, hin),
                           (dense.LAY_A_RSTD, 1), (dense.LAY_A_HLN, h2), (dense.LAY_A_HRSTD, 1), (dense.LAY_A_X, d),
                           (dense.LAY_A_HIN, hin if self.input_skip else 0)):
            lay[slot] = aoff
            aoff += size
        lay[dense.LAY_A_SIZE] = aoff
        self.lay = lay
        self.P = aligned_zeros(off, self.dtype)
        self.G = aligned_zeros(off, self.dtype)
        self.Z = aligned_zeros(off, self.dtype)
        self.A = aligned_zeros(aoff, self.dtype)

        self.dense = {
            "enc_w": self.P[lay[dense.LAY_P_WE]:lay[dense.LAY_P_BE]].reshape(h, d),
            "enc_b": self.P[lay[dense.LAY_P_BE]:lay[dense.LAY_P_WH]],
            "hid_w": self.P[lay[dense.LAY_P_WH]:lay[dense.LAY_P_BH]].reshape(h2, hin),
            "hid_b": self.P[lay[dense.LAY_P_BH]:lay[dense.LAY_P_WO]],
            "out_w": self.P[lay[dense.LAY_P_WO]:lay[dense.LAY_P_BO]].reshape(k, h2),
            "out_b": self.P[lay[dense.LAY_P_BO]:off],
        }
        self.dense_grads = {name: self.G[_span(self.P, v)].reshape(v.shape) for name, v in self.dense.items()}
        for name in ("enc_w", "hid_w", "out_w"):
            w = np.zeros(self.dense[name].shape)
            sparse_init(rng, w, sparsity)
            self.dense[name][...] = w

        self.enc = self.A[lay[dense.LAY_A_ENC]:lay[dense.LAY_A_ENC] + h]
        self.out = self.A[lay[dense.LAY_A_OUT]:lay[dense.LAY_A_OUT] + k]
        self.dout = self.A[lay[dense.LAY_A_DOUT]:lay[dense.LAY_A_DOUT] + k]
        self.dy = self.A[lay[dense.LAY_A_DY]:lay[dense.LAY_A_DY] + m]
        self.y = self.cell.y if self.cell is not None else self.enc
        # the head's input: [y, enc] gathered by the forward with the input skip, else y itself
        self.hin = self.A[lay[dense.LAY_A_HIN]:lay[dense.LAY_A_HIN] + hin] if self.input_skip else self.y

        # (parameter, gradient, trace) groups, flat views; four slots for the fused trace kernels
        groups = [(self.P, self.G, self.Z)]
        c = self.cell
        if isinstance(c, RTUCell):
            pairs = ((c.vec[layout.RTU_NU:layout.RTU_TH + 1], c.vec[layout.RTU_GR_NU:layout.RTU_GR_TH + 1]),
                     (c.mat[layout.RTU_W1:layout.RTU_W2 + 1], c.mat[layout.RTU_GW1:layout.RTU_GW2 + 1]))
        elif isinstance(c, LRUCell):
            pairs = ((c.vec[layout.LRU_NU:layout.LRU_GLOG + 1], c.vec[layout.LRU_GR_NU:layout.LRU_GR_GLOG + 1]),
                     (c.mat[layout.LRU_B_RE:layout.LRU_B_IM + 1], c.mat[layout.LRU_GB_RE:layout.LRU_GB_IM + 1]),
                     (c.cmat[layout.LRU_C_RE:layout.LRU_C_IM + 1], c.cmat[layout.LRU_GC_RE:layout.LRU_GC_IM + 1]))
        else:
            pairs = ()
        for params, grads in pairs:
            if self.fused_traces:   # the traces are the gradient rows/slabs: no gradient array of their own
                groups.append((params.reshape(-1), np.zeros(0, self.dtype), grads.reshape(-1)))
            else:
                groups.append((params.reshape(-1), grads.reshape(-1)))
        full = []
        for i, g in enumerate(groups):
            p, gr = g[0], g[1]
            if i > 0:
                owner = self.cell.vec if np.shares_memory(p, self.cell.vec) else None
                assert owner is not None or np.shares_memory(p, self.cell.mat) or \
                    np.shares_memory(p, getattr(self.cell, "cmat", p))  # views, not copies
            z = g[2] if len(g) == 3 else np.zeros_like(p)
            assert len(g) == 2 or gr.size == 0 or gr.size == z.size
            full.append((p, gr, z))
        empty = np.zeros(0, self.dtype)
        while len(full) < 4:
            full.append((empty, empty, empty))
        self._groups = full
        self.n_params = sum(p.size for p, _, _ in full)

        # [||z||_1 of the dense layers, ||z||_1 of the cell] after the last accumulation (kernels write it)
        self.zl1 = aligned_zeros(2, np.float64)   # a cache line of its own (another thread may write it)
        self._decay = np.zeros(2, self.dtype)     # NetState.decay: rounded to the dtype once, here
        self._decay[DECAY_DENSE] = trace_decay
        self._decay[DECAY_CELL] = cell_trace_decay
        self.state = self._make_state()

    def _make_state(self):
        """The NetState StructRef over this network's arrays (no copies): what the fused kernels take."""
        c = self.cell
        dt = self.dtype
        kind = np.zeros(CODES, np.int64)
        kind[CODE_FUSED_TRACES] = int(self.fused_traces)
        official = np.zeros(1, np.int64)
        vec, mat, cmat = np.zeros((1, 1), dt), np.zeros((1, 1, 1), dt), np.zeros((1, 1, 1), dt)
        dx = aligned_zeros(self.lay[dense.LAY_H], dt)
        if isinstance(c, RTUCell):
            kind[CODE_CELL], kind[CODE_VARIANT], kind[CODE_ACTIVATION] = KIND_RTU, c._variant, c._act
            official[0] = c._official
            vec, mat, dx = c.vec, c.mat, c.dx
        elif isinstance(c, LRUCell):
            kind[CODE_CELL] = KIND_LRU
            vec, mat, cmat, dx = c.vec, c.mat, c.cmat, c.dx
        else:
            kind[CODE_CELL] = KIND_NONE
        self._kind, self._official = kind, official
        self._sc = np.zeros(SC_SIZE, dt)
        groups = [a for g in self._groups[1:] for a in g]
        self._state_fields = (self.P, self.G, self.Z, self.A, self.lay, kind, official, vec, mat, cmat,
                              self.y, self.hin, dx, *groups, self._sc, self.zl1, self._decay)
        return NetState(*self._state_fields)

    def private_state(self):
        """Another NetState over the same arrays, for a kernel running on another thread (the critic's
        helper, controller.critic_thread): built by the calling thread, so that the struct, its
        reference counts and copies of the small read-only arrays (lay, kind, official, decay) and its own
        scratch ``sc`` come from that thread's allocator and share no cache line with the structures
        the main thread keeps touching (a shared line bounces between the two cores at every write)."""
        fields = list(self._state_fields)
        for name in ("lay", "kind", "official", "sc", "decay"):
            i = FIELDS.index(name)
            fields[i] = aligned_zeros(fields[i].shape, fields[i].dtype)
            fields[i][...] = self._state_fields[i]
        return NetState(*fields)

    # ------------------------------------------------------------------ hot path
    def forward(self, x):
        """x: (d,) normalised observation of the network's dtype -> out (k,) view. Advances the cell;
        its RTRL traces wait for ``backward``."""
        network_step.net_forward(self.state, x)
        return self.out

    def backward(self, x):
        """Gradients of out . dout for the last forward(x) (dout written by the caller); RTRL update."""
        self._not_fused("backward")
        network_step.net_backward(self.state, x)

    def backward_accumulate(self, x):
        """``backward(x)`` then ``accumulate()`` after ``forward(x)``; with ``fused_traces`` in one
        pass that never materialises the gradient. Returns ||z||_1."""
        return network_step.net_backward_accumulate(self.state, x)

    def forward_backward(self, x):
        """``forward(x)`` then ``backward(x)`` in one call, for a dout known in advance (the critic).
        With ``fused_traces`` the gradient is deferred: only the RTRL traces follow the forward, and
        the next ``accumulate`` or ``apply_accumulate`` computes the gradient (of the dout set now) as
        it streams through the parameters and traces, so no gradient array is written or read."""
        network_step.net_forward_backward(self.state, x)
        return self.out

    def accumulate(self):
        """z <- decay z + g over all parameters (decay: ``trace_decay`` for the dense layers', the cell's
        own for the cell's); returns ||z||_1 (float). With ``fused_traces``, g is the deferred gradient of
        the last ``forward_backward``."""
        return network_step.net_accumulate(self.state)

    def apply_accumulate(self, step, cell_step=None):
        """``apply(step, cell_step)`` then ``accumulate()`` in one pass (the critic's order: the step uses
        the traces before they take the new gradient). Returns ||z||_1."""
        return network_step.net_apply(self.state, step, step if cell_step is None else cell_step, True)

    def _not_fused(self, what):
        if self.fused_traces:
            raise RuntimeError(f"Network.{what}: this network keeps its traces in its gradient arrays "
                               f"(fused_traces=True); use backward_accumulate")

    def apply(self, step, cell_step=None):
        """w <- w + step z over the dense layers and w <- w + cell_step z over the cell (default: step);
        refreshes the cell's coefficients off the action path."""
        network_step.net_apply(self.state, step, step if cell_step is None else cell_step, False)

    def reset_state(self):
        """Zero the cell's state and RTRL traces (new episode)."""
        if self.cell is not None:
            self.cell.reset()

    def reset_traces(self):
        """Zero every eligibility trace (and their recorded norms ``zl1``)."""
        for _, _, z in self._groups:
            z[...] = 0.0
        self.zl1[:] = 0.0

    def reset_rtrl(self):
        """Zero the cell's RTRL traces, keeping its state (truncated gradient history)."""
        if self.cell is not None:
            self.cell.reset_traces()

    # ------------------------------------------------------------------ inspection
    @property
    def trace_decays(self):
        """(decay of the dense layers' eligibility traces, decay of the cell's), in the network's dtype
        as the kernels use them (Python floats)."""
        return float(self._decay[DECAY_DENSE]), float(self._decay[DECAY_CELL])

    def trace_norms(self):
        """(||z||_1 of the dense layers, ||z||_1 of the cell) of the current eligibility traces, by NumPy:
        what the kernels record in ``zl1``, up to summation order (float64 (2,) array)."""
        dense_l1 = float(np.abs(self.Z).sum(dtype=np.float64))
        cell = sum(float(np.abs(z).sum(dtype=np.float64)) for _, _, z in self._groups[1:])
        return np.array([dense_l1, cell])

    def parameter_groups(self):
        """List of (parameters, gradients, eligibility traces) flat views, in kernel order."""
        return [g for g in self._groups if g[0].size]

    def arrays(self):
        """Every array whose content defines this network's learning state (for checkpoints)."""
        out = {"P": self.P, "Z": self.Z, "A": self.A, "zl1": self.zl1}
        for i, (_, _, z) in enumerate(self._groups[1:]):
            if z.size:
                out[f"Z{i + 1}"] = z
        if isinstance(self.cell, RTUCell):
            out["cell_vec"], out["cell_mat"] = self.cell.vec, self.cell.mat
        elif isinstance(self.cell, LRUCell):
            out["cell_vec"], out["cell_mat"], out["cell_cmat"] = self.cell.vec, self.cell.mat, self.cell.cmat
            out["cell_y"] = self.cell.y
        return out


def _span(base, view):
    """slice of the flat array base that the contiguous view occupies."""
    start = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // base.itemsize
    return slice(start, start + view.size)
