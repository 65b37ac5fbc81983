"""Torch-autograd references for the kernels' gradients (tests only); torch is imported inside each
function, so importing this module (or ``controller``) never imports torch.

* ``rtu_bptt_torch(params, xs, targets, resets, ...)`` and ``lru_bptt_torch(...)`` -> (loss, grads)
  for L = sum_t 1/2 ||y_t - target_t||^2, float64 BPTT through the whole sequence with fixed parameters,
  where ``resets[t]`` zeroes the state before step t (an episode boundary). Summing the per-step RTRL
  gradients of the same loss must give the same numbers.
* ``network_onestep_grads_torch(...)``: the agent network's gradient (one-step for encoder and head, full
  history for the cell).
"""
import numpy as np

from controller.reference import ETA_EPS


def _bptt(params, xs, targets, resets, step):
    """L = sum_t 1/2 ||y_t - target_t||^2 by float64 torch autograd through the whole sequence:
    ``step(p, state, x)`` -> (state, y_t) with p the parameters as leaf tensors, state None at every
    reset (and at t = 0). Returns (loss float, grads dict of float64 arrays with the keys of params)."""
    import torch

    p = {k: torch.tensor(np.asarray(v, np.float64), requires_grad=True) for k, v in params.items()}
    state = None
    loss = torch.zeros((), dtype=torch.float64)
    for t in range(len(xs)):
        if resets[t]:
            state = None
        state, y = step(p, state, torch.tensor(np.asarray(xs[t], np.float64)))
        loss = loss + 0.5 * torch.sum((y - torch.tensor(np.asarray(targets[t], np.float64))) ** 2)
    loss.backward()
    return float(loss.detach()), {k: v.grad.numpy().copy() for k, v in p.items()}


def rtu_bptt_torch(params, xs, targets, resets, variant="linear", activation="tanh"):
    """BPTT reference: float64 torch autograd through the whole sequence with fixed parameters.

    xs: (T, d), targets: (T, 2n), resets: (T,) bool (zero the state before step t).
    Returns (loss float, grads dict of float64 arrays with the keys of params).
    """
    import torch

    f = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda a: a}[activation]

    def step(p, state, x):
        e_nu = torch.exp(p["nu_log"])
        r = torch.exp(-e_nu)
        theta = torch.exp(p["theta_log"])
        g, phi = r * torch.cos(theta), r * torch.sin(theta)
        eta = torch.sqrt(-torch.expm1(-2.0 * e_nu)) + ETA_EPS
        c1, c2 = state if state is not None else (torch.zeros_like(g), torch.zeros_like(g))
        a1 = g * c1 - phi * c2 + eta * (p["w1"] @ x)
        a2 = g * c2 + phi * c1 + eta * (p["w2"] @ x)
        if variant == "linear":
            return (a1, a2), torch.cat([f(a1), f(a2)])
        c1, c2 = f(a1), f(a2)
        return (c1, c2), torch.cat([c1, c2])

    return _bptt(params, xs, targets, resets, step)


def lru_bptt_torch(params, xs, targets, resets):
    """BPTT reference for the LRU, float64 torch autograd in real arithmetic. Returns (loss, grads)."""
    import torch

    def step(p, state, x):
        r = torch.exp(-torch.exp(p["nu_log"]))
        th = torch.exp(p["theta_log"])
        lr, li = r * torch.cos(th), r * torch.sin(th)
        gam = torch.exp(p["gamma_log"])
        hr, hi = state if state is not None else (torch.zeros_like(lr), torch.zeros_like(lr))
        ur, ui = p["B_re"] @ x, p["B_im"] @ x
        hr, hi = lr * hr - li * hi + gam * ur, lr * hi + li * hr + gam * ui
        return (hr, hi), p["C_re"] @ hr - p["C_im"] @ hi

    return _bptt(params, xs, targets, resets, step)


def network_onestep_grads_torch(dense, cell_kind, cell_params, xs, dout, rtu_activation="tanh",
                                hidden_activation="tanh", head_layernorm=False, input_skip=False):
    """The agent's gradient of out_T . dout at the last step of xs, by float64 torch autograd.

    dense: dict enc_w (H, d), enc_b, hid_w (H2, m), hid_b, out_w (k, H2), out_b (NumPy copies of
    ``Network.dense``); cell_kind: "rtu-linear" | "rtu-nonlinear" | "lru" | "none"; cell_params: the
    cell's ``params`` copies (ignored for "none"); xs: (T, d) normalised observations of one episode;
    dout: (k,); hidden_activation ("tanh" | "leaky_relu"), head_layernorm and input_skip (the head reads
    [cell output, encoder output], hid_w (H2, m + H); ignored for "none") as in ``Network``.
    Encoder and head get one-step gradients (the encoder outputs of steps < T are detached), the cell
    its full-history gradient (design.md §3.3, §3.5). Returns (out_T, grads dict).
    """
    import torch

    t64 = torch.float64
    dp = {k: torch.tensor(np.asarray(v, np.float64), requires_grad=True) for k, v in dense.items()}
    cp = {k: torch.tensor(np.asarray(v, np.float64), requires_grad=True) for k, v in cell_params.items()}
    f = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda a: a}[rtu_activation]
    hidden = {"tanh": torch.tanh,
              "leaky_relu": lambda a: torch.nn.functional.leaky_relu(a, 0.01)}[hidden_activation]

    def layer_norm(pre):
        return (pre - pre.mean()) / torch.sqrt(pre.var(unbiased=False) + 1e-5)

    def encoder(x):
        return hidden(layer_norm(dp["enc_w"] @ x + dp["enc_b"]))

    if cell_kind.startswith("rtu"):
        e_nu = torch.exp(cp["nu_log"])
        r = torch.exp(-e_nu)
        theta = torch.exp(cp["theta_log"])
        g, phi = r * torch.cos(theta), r * torch.sin(theta)
        eta = torch.sqrt(-torch.expm1(-2.0 * e_nu)) + ETA_EPS
        n = g.shape[0]
        c1 = torch.zeros(n, dtype=t64)
        c2 = torch.zeros(n, dtype=t64)
    elif cell_kind == "lru":
        r = torch.exp(-torch.exp(cp["nu_log"]))
        th = torch.exp(cp["theta_log"])
        lr, li = r * torch.cos(th), r * torch.sin(th)
        gam = torch.exp(cp["gamma_log"])
        n = lr.shape[0]
        hr = torch.zeros(n, dtype=t64)
        hi = torch.zeros(n, dtype=t64)
    y = None
    last = len(xs) - 1
    for t, x_np in enumerate(xs):
        x = torch.tensor(np.asarray(x_np, np.float64))
        e = encoder(x)
        if t < last:
            e = e.detach()
        if cell_kind.startswith("rtu"):
            a1 = g * c1 - phi * c2 + eta * (cp["w1"] @ e)
            a2 = g * c2 + phi * c1 + eta * (cp["w2"] @ e)
            if cell_kind == "rtu-linear":
                c1, c2 = a1, a2
                y = torch.cat([f(c1), f(c2)])
            else:
                c1, c2 = f(a1), f(a2)
                y = torch.cat([c1, c2])
        elif cell_kind == "lru":
            ur, ui = cp["B_re"] @ e, cp["B_im"] @ e
            hr, hi = lr * hr - li * hi + gam * ur, lr * hi + li * hr + gam * ui
            y = cp["C_re"] @ hr - cp["C_im"] @ hi
        else:
            y = e
    if input_skip and cell_kind != "none":
        y = torch.cat([y, e])   # e: the last encoder output, not detached
    pre = dp["hid_w"] @ y + dp["hid_b"]
    hid = hidden(layer_norm(pre) if head_layernorm else pre)
    out = dp["out_w"] @ hid + dp["out_b"]
    torch.sum(out * torch.tensor(np.asarray(dout, np.float64))).backward()
    grads = {k: v.grad.numpy().copy() for k, v in dp.items()}
    grads.update({k: (v.grad.numpy().copy() if v.grad is not None else np.zeros(v.shape))
                  for k, v in cp.items()})
    return out.detach().numpy(), grads
