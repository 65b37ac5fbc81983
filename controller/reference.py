"""Slow, independent NumPy twins of the kernels (tests, benchmarks); the torch-autograd references are in
``controller.reference_torch``.

Nothing here is on the real-time path. The twins follow design.md §3.2-3.4 literally, on plain dicts of
arrays, with the parameters in their public (n, d) orientation and, by default, all four RTU w traces (no
2-matrix shortcut), so that they check the kernels rather than repeat them:

* ``rtu_reference_state(n, d, dtype)`` -> zero state + traces; ``rtu_step_reference(params, st, x, ...)``
  -> (y, st) one step forward + RTRL traces (st updated in place and returned);
  ``rtu_grad_reference(params, st, dy, ...)`` -> (grads, dx).
* ``lru_reference_state``, ``lru_step_reference``, ``lru_grad_reference``: the same for the LRU, with
  complex NumPy arithmetic.
* ``NumpyRTUStep``: the benchmark's NumPy baseline of one RTU step + gradient.
* ``td_lambda_returns``: λ-returns of one episode (the traces' oracle).

NaN and inf propagate through the twins as IEEE arithmetic says, as through the kernels (restricted
fastmath keeps NaN/inf semantics, ``controller.kernels.jit``): the same entries come out NaN or ±inf,
except that the LRU twin's complex products may turn an inf into NaN where the kernel's real arithmetic
keeps it infinite (tests/controller/test_kernels_vs_twin.py).
"""
import numpy as np

ETA_EPS = 1e-8


# ----------------------------------------------------------------------------- activations
def _act(a, activation):
    if activation == "tanh":
        return np.tanh(a)
    if activation == "relu":
        return np.maximum(a, 0.0)
    if activation == "identity":
        return a.copy()
    raise ValueError(f"activation must be one of ['identity', 'relu', 'tanh'], got {activation!r}")


def _act_slope(a, activation):
    """f'(a) for a pre-activation array a (relu: 1 where a > 0)."""
    if activation == "tanh":
        return 1.0 - np.tanh(a) ** 2
    if activation == "relu":
        return (a > 0).astype(a.dtype)
    return np.ones_like(a)


# ----------------------------------------------------------------------------- RTU
def rtu_coefficients(nu_log, theta_log, official=False):
    """Per-unit g, phi, eta and their derivatives wrt nu_log and theta_log (design.md §3.3), float64."""
    nu_log = np.asarray(nu_log, np.float64)
    theta_log = np.asarray(theta_log, np.float64)
    e_nu = np.exp(nu_log)
    r = np.exp(-e_nu)
    theta = np.exp(theta_log)
    g = r * np.cos(theta)
    phi = r * np.sin(theta)
    root = np.sqrt(-np.expm1(-2.0 * e_nu))
    scale = np.ones_like(theta) if official else theta
    return {"g": g, "phi": phi, "eta": root + ETA_EPS,
            "dg_nu": -e_nu * g, "dphi_nu": -e_nu * phi, "deta_nu": e_nu * r * r / root,
            "dg_th": -scale * phi, "dphi_th": scale * g}


def rtu_reference_state(n, d, dtype=np.float64):
    """Zero state, output and the full set of RTRL traces of one RTU layer."""
    z = lambda *shape: np.zeros(shape, dtype)  # noqa: E731
    return {"c1": z(n), "c2": z(n), "a1": z(n), "a2": z(n), "y": z(2 * n),
            "S1_nu_log": z(n), "S2_nu_log": z(n), "S1_theta_log": z(n), "S2_theta_log": z(n),
            "S1_w1": z(n, d), "S2_w1": z(n, d), "S1_w2": z(n, d), "S2_w2": z(n, d)}


def rtu_step_reference(params, st, x, variant="linear", activation="tanh", official=False,
                       two_traces=False):
    """One RTU step: forward (design.md §3.2) and RTRL traces (§3.3). Updates ``st`` in place.

    params: nu_log, theta_log (n,), w1, w2 (n, d). x: (d,). Returns (y (2n,), st).
    two_traces=True (linear RTU only) derives the w2 traces from the w1 traces, as the kernel does;
    the default updates all four independently.
    """
    dt = st["c1"].dtype
    co = {k: v.astype(dt) for k, v in rtu_coefficients(params["nu_log"], params["theta_log"],
                                                        official).items()}
    g, phi, eta = co["g"], co["phi"], co["eta"]
    w1 = np.asarray(params["w1"], dt)
    w2 = np.asarray(params["w2"], dt)
    u1 = w1 @ x
    u2 = w2 @ x
    c1, c2 = st["c1"], st["c2"]
    a1 = g * c1 - phi * c2 + eta * u1
    a2 = g * c2 + phi * c1 + eta * u2
    if variant == "linear":
        fp1 = fp2 = np.ones_like(a1)
        new_c1, new_c2 = a1, a2
        y = np.concatenate([_act(a1, activation), _act(a2, activation)])
    elif variant == "nonlinear":
        fp1, fp2 = _act_slope(a1, activation), _act_slope(a2, activation)
        new_c1, new_c2 = _act(a1, activation), _act(a2, activation)
        y = np.concatenate([new_c1, new_c2])
    else:
        raise ValueError(f"variant must be 'linear' or 'nonlinear', got {variant!r}")

    def rotate(s1, s2, j1, j2, f1, f2):
        return f1 * (g * s1 - phi * s2 + j1), f2 * (g * s2 + phi * s1 + j2)

    j1 = co["dg_nu"] * c1 - co["dphi_nu"] * c2 + co["deta_nu"] * u1
    j2 = co["dg_nu"] * c2 + co["dphi_nu"] * c1 + co["deta_nu"] * u2
    st["S1_nu_log"], st["S2_nu_log"] = rotate(st["S1_nu_log"], st["S2_nu_log"], j1, j2, fp1, fp2)
    j1 = co["dg_th"] * c1 - co["dphi_th"] * c2
    j2 = co["dg_th"] * c2 + co["dphi_th"] * c1
    st["S1_theta_log"], st["S2_theta_log"] = rotate(st["S1_theta_log"], st["S2_theta_log"], j1, j2,
                                                    fp1, fp2)
    ex = np.outer(eta, x)                      # J1_w1 = J2_w2 = eta_k x_j ; J2_w1 = J1_w2 = 0
    zero = np.zeros_like(ex)
    col1, col2 = fp1[:, None], fp2[:, None]
    g_, phi_ = g[:, None], phi[:, None]

    def rotate_mat(s1, s2, j1, j2):
        return col1 * (g_ * s1 - phi_ * s2 + j1), col2 * (g_ * s2 + phi_ * s1 + j2)

    st["S1_w1"], st["S2_w1"] = rotate_mat(st["S1_w1"], st["S2_w1"], ex, zero)
    if two_traces:
        if variant != "linear":
            raise ValueError("two_traces=True holds only for the linear RTU (design.md §3.3)")
        st["S1_w2"], st["S2_w2"] = -st["S2_w1"], st["S1_w1"].copy()
    else:
        st["S1_w2"], st["S2_w2"] = rotate_mat(st["S1_w2"], st["S2_w2"], zero, ex)
    st["c1"], st["c2"] = new_c1, new_c2
    st["a1"], st["a2"] = a1, a2
    st["y"] = y
    return y, st


def rtu_grad_reference(params, st, dy, variant="linear", activation="tanh", official=False):
    """Gradient at the current step for dL/dy_t = dy (2n,) from the traces in ``st``.

    Returns (grads dict with the keys of params, dx (d,) the one-step input gradient).
    """
    dt = st["c1"].dtype
    n = st["c1"].shape[0]
    co = rtu_coefficients(params["nu_log"], params["theta_log"], official)
    eta = co["eta"].astype(dt)
    dy1, dy2 = dy[:n], dy[n:]
    if variant == "linear":
        d1 = dy1 * _act_slope(st["a1"], activation)
        d2 = dy2 * _act_slope(st["a2"], activation)
        q1, q2 = d1, d2
    else:
        d1, d2 = dy1, dy2
        q1 = d1 * _act_slope(st["a1"], activation)
        q2 = d2 * _act_slope(st["a2"], activation)
    grads = {"nu_log": d1 * st["S1_nu_log"] + d2 * st["S2_nu_log"],
             "theta_log": d1 * st["S1_theta_log"] + d2 * st["S2_theta_log"],
             "w1": d1[:, None] * st["S1_w1"] + d2[:, None] * st["S2_w1"],
             "w2": d1[:, None] * st["S1_w2"] + d2[:, None] * st["S2_w2"]}
    dx = np.asarray(params["w1"], dt).T @ (eta * q1) + np.asarray(params["w2"], dt).T @ (eta * q2)
    return grads, dx


# ----------------------------------------------------------------------------- LRU
def lru_reference_state(n, d):
    """Zero complex state and RTRL traces of one LRU layer."""
    return {"h": np.zeros(n, complex), "e_lambda": np.zeros(n, complex),
            "e_gamma": np.zeros(n, complex), "e_B": np.zeros((n, d), complex),
            "h_prev": np.zeros(n, complex)}


def _lru_lambda(params):
    return np.exp(-np.exp(params["nu_log"]) + 1j * np.exp(params["theta_log"]))


def lru_step_reference(params, st, x):
    """One LRU step (design.md §3.4) in complex NumPy: h, y = Re(C h), traces. Returns (y (m,), st)."""
    lam = _lru_lambda(params)
    gam = np.exp(params["gamma_log"])
    B = params["B_re"] + 1j * params["B_im"]
    C = params["C_re"] + 1j * params["C_im"]
    bx = B @ x
    st["h_prev"] = st["h"]
    st["h"] = lam * st["h"] + gam * bx
    st["e_lambda"] = lam * st["e_lambda"] + st["h_prev"]
    st["e_gamma"] = lam * st["e_gamma"] + bx
    st["e_B"] = lam[:, None] * st["e_B"] + gam[:, None] * x[None, :]
    return np.real(C @ st["h"]), st


def lru_grad_reference(params, st, dy):
    """Gradients at the current step for dL/dy_t = dy (m,). Returns (grads, dx)."""
    lam = _lru_lambda(params)
    gam = np.exp(params["gamma_log"])
    C = params["C_re"] + 1j * params["C_im"]
    B = params["B_re"] + 1j * params["B_im"]
    q = dy @ C                        # y = Re(C h): dL/dRe h - i dL/dIm h = C^T dy
    grads = {"nu_log": np.real(q * (-np.exp(params["nu_log"]) * lam * st["e_lambda"])),
             "theta_log": np.real(q * (1j * np.exp(params["theta_log"]) * lam * st["e_lambda"])),
             "gamma_log": np.real(q * gam * st["e_gamma"]),
             "B_re": np.real(q[:, None] * st["e_B"]),
             "B_im": np.real(q[:, None] * 1j * st["e_B"]),
             "C_re": np.outer(dy, np.real(st["h"])),
             "C_im": -np.outer(dy, np.imag(st["h"]))}
    dx = np.real((q * gam) @ B)
    return grads, dx


# ----------------------------------------------------------------------------- fair NumPy baseline
class NumpyRTUStep:
    """A plain but efficient NumPy implementation of one RTU step + gradient, the benchmark's baseline.

    The same algorithm as the kernel (coefficients computed once, two w traces for the linear RTU, four
    for the non-linear one), written with whole-array NumPy operations. ``step_grad(x, dy)`` advances the
    state and traces and returns (y (2n,), grads dict). Parameters: (n, d) arrays of ``params``.
    """

    def __init__(self, params, variant="linear", activation="tanh", dtype=np.float64):
        self.variant = variant
        self.activation = activation
        dt = np.dtype(dtype)
        co = rtu_coefficients(params["nu_log"], params["theta_log"])
        self.co = {k: v.astype(dt) for k, v in co.items()}
        self.w1 = np.array(params["w1"], dt)
        self.w2 = np.array(params["w2"], dt)
        n, d = self.w1.shape
        self.c1 = np.zeros(n, dt)
        self.c2 = np.zeros(n, dt)
        self.s_nu = np.zeros((2, n), dt)
        self.s_th = np.zeros((2, n), dt)
        count = 2 if variant == "linear" else 4
        self.s_w = np.zeros((count, n, d), dt)

    def step_grad(self, x, dy):
        co, n = self.co, self.c1.shape[0]
        g, phi, eta = co["g"], co["phi"], co["eta"]
        u1 = self.w1 @ x
        u2 = self.w2 @ x
        c1, c2 = self.c1, self.c2
        a1 = g * c1 - phi * c2 + eta * u1
        a2 = g * c2 + phi * c1 + eta * u2
        if self.variant == "linear":
            y = _act(np.concatenate([a1, a2]), self.activation)
            fp1 = fp2 = 1.0
            delta = dy * _act_slope(np.concatenate([a1, a2]), self.activation)
            self.c1, self.c2 = a1, a2
        else:
            fp = _act_slope(np.concatenate([a1, a2]), self.activation)
            fp1, fp2 = fp[:n], fp[n:]
            y = _act(np.concatenate([a1, a2]), self.activation)
            delta = dy
            self.c1, self.c2 = y[:n], y[n:]
        d1, d2 = delta[:n], delta[n:]
        for s, dg, dp, de, u in ((self.s_nu, co["dg_nu"], co["dphi_nu"], co["deta_nu"], True),
                                 (self.s_th, co["dg_th"], co["dphi_th"], None, False)):
            j1 = dg * c1 - dp * c2 + (de * u1 if u else 0.0)
            j2 = dg * c2 + dp * c1 + (de * u2 if u else 0.0)
            s1 = fp1 * (g * s[0] - phi * s[1] + j1)
            s[1] = fp2 * (g * s[1] + phi * s[0] + j2)
            s[0] = s1
        ex = np.outer(eta, x)
        gc, pc = g[:, None], phi[:, None]
        sw = self.s_w
        f1 = fp1 if np.isscalar(fp1) else fp1[:, None]
        f2 = fp2 if np.isscalar(fp2) else fp2[:, None]
        s1 = f1 * (gc * sw[0] - pc * sw[1] + ex)
        sw[1] = f2 * (gc * sw[1] + pc * sw[0])
        sw[0] = s1
        if self.variant != "linear":
            s1 = f1 * (gc * sw[2] - pc * sw[3])
            sw[3] = f2 * (gc * sw[3] + pc * sw[2] + ex)
            sw[2] = s1
        dc1, dc2 = d1[:, None], d2[:, None]
        grads = {"nu_log": d1 * self.s_nu[0] + d2 * self.s_nu[1],
                 "theta_log": d1 * self.s_th[0] + d2 * self.s_th[1],
                 "w1": dc1 * sw[0] + dc2 * sw[1]}
        grads["w2"] = dc2 * sw[0] - dc1 * sw[1] if self.variant == "linear" else dc1 * sw[2] + dc2 * sw[3]
        return y, grads


def td_lambda_returns(rewards, values, gamma, lam):
    """λ-returns G^λ_t of one terminated episode (values[t] = V(s_t), V(terminal) = 0), by the recursion
    G^λ_t = r_{t+1} + γ ((1 − λ) V(s_{t+1}) + λ G^λ_{t+1}). rewards, values: (T,). Returns (T,)."""
    T = len(rewards)
    out = np.zeros(T)
    nxt = 0.0
    for t in range(T - 1, -1, -1):
        v_next = values[t + 1] if t + 1 < T else 0.0
        out[t] = rewards[t] + gamma * ((1.0 - lam) * v_next + lam * nxt)
        nxt = out[t]
    return out
