"""Network (encoder -> cell -> head): its one-step + RTRL gradient equals torch autograd (design.md §3.5)."""
import numpy as np
import pytest

from controller.networks import CELL_KINDS, Network
from controller.reference_torch import network_onestep_grads_torch
from tests.controller.helpers import rel_err

pytest.importorskip("torch")


def _copies(net):
    dense = {k: np.array(v, np.float64) for k, v in net.dense.items()}
    cell = {k: np.array(v, np.float64) for k, v in net.cell.params.items()} if net.cell is not None else {}
    return dense, cell


@pytest.mark.parametrize("hidden_activation,head_layernorm", [("tanh", False), ("leaky_relu", True),
                                                             ("tanh", True), ("leaky_relu", False)])
@pytest.mark.parametrize("cell", CELL_KINDS)
def test_gradient_matches_torch_autograd(cell, hidden_activation, head_layernorm, rng):
    """Over a 40-step episode with fixed parameters, the gradient at every 10th step equals autograd."""
    net = Network(5, 3, cell, encoder_width=8, n_units=6, head_width=7, dtype=np.float64, seed=3,
                  sparsity=0.5, hidden_activation=hidden_activation, head_layernorm=head_layernorm)
    dense, cellp = _copies(net)
    xs = rng.standard_normal((40, 5))
    for t in range(40):
        out = net.forward(xs[t]).copy()
        dout = rng.standard_normal(3)
        net.dout[:] = dout
        net.backward(xs[t])
        if t % 10 == 9:
            ref_out, ref = network_onestep_grads_torch(dense, cell, cellp, xs[:t + 1], dout,
                                                       hidden_activation=hidden_activation,
                                                       head_layernorm=head_layernorm)
            assert rel_err(out, ref_out) < 1e-12
            for k, v in net.dense_grads.items():
                assert rel_err(v, ref[k]) < 1e-9, (cell, t, k)
            if net.cell is not None:
                for k, v in net.cell.grads.items():
                    assert rel_err(v, ref[k]) < 1e-9, (cell, t, k)


@pytest.mark.parametrize("hidden_activation,head_layernorm", [("leaky_relu", True), ("tanh", False)])
@pytest.mark.parametrize("cell", ["rtu-linear", "rtu-nonlinear", "lru"])
def test_input_skip_gradient_matches_torch_autograd(cell, hidden_activation, head_layernorm, rng):
    """input_skip: the head reads [cell output, encoder output]. Its one-step gradient (hid_w now
    (H2, m + H)), the encoder's through both paths and the cell's full-history one equal autograd of the
    same network, at every 10th step of a 40-step episode."""
    net = Network(5, 3, cell, encoder_width=8, n_units=6, head_width=7, dtype=np.float64, seed=3,
                  sparsity=0.5, hidden_activation=hidden_activation, head_layernorm=head_layernorm,
                  input_skip=True)
    assert net.dense["hid_w"].shape == (7, 12 + 8) and net.hin.shape == (20,)
    dense, cellp = _copies(net)
    xs = rng.standard_normal((40, 5))
    for t in range(40):
        out = net.forward(xs[t]).copy()
        np.testing.assert_array_equal(net.hin, np.concatenate([net.y, net.enc]))
        dout = rng.standard_normal(3)
        net.dout[:] = dout
        net.backward(xs[t])
        if t % 10 == 9:
            ref_out, ref = network_onestep_grads_torch(dense, cell, cellp, xs[:t + 1], dout,
                                                       hidden_activation=hidden_activation,
                                                       head_layernorm=head_layernorm, input_skip=True)
            assert rel_err(out, ref_out) < 1e-12
            for k, v in {**net.dense_grads, **net.cell.grads}.items():
                assert rel_err(v, ref[k]) < 1e-9, (cell, t, k)


def test_input_skip_changes_nothing_without_a_cell():
    a = Network(4, 2, "none", encoder_width=6, head_width=5, seed=1, input_skip=True)
    b = Network(4, 2, "none", encoder_width=6, head_width=5, seed=1)
    assert not a.input_skip and a.P.size == b.P.size and a.hin is a.y
    np.testing.assert_array_equal(a.P, b.P)


@pytest.mark.parametrize("cell", CELL_KINDS)
def test_forward_backward_equals_forward_then_backward(cell, rng):
    kw = dict(encoder_width=6, n_units=5, head_width=6, dtype=np.float64, seed=1,
              hidden_activation="leaky_relu", head_layernorm=True)
    a = Network(4, 2, cell, **kw)
    b = Network(4, 2, cell, **kw)
    a.dout[:] = b.dout[:] = [0.3, -1.2]
    for x in rng.standard_normal((6, 4)):
        a.forward(x)
        a.backward(x)
        b.forward_backward(x)
    np.testing.assert_array_equal(a.G, b.G)
    np.testing.assert_array_equal(a.out, b.out)


def test_unknown_hidden_activation_is_named():
    with pytest.raises(ValueError, match="hidden_activation.*'relu6'"):
        Network(4, 2, "none", hidden_activation="relu6")


def test_sparse_init_zeroes_ninety_percent_per_unit():
    net = Network(20, 1, "none", encoder_width=16, head_width=8, sparsity=0.9, seed=0)
    w = net.dense["enc_w"]
    assert np.all(np.sum(w == 0, axis=1) == 18)
    assert np.all(np.abs(w) <= 1 / np.sqrt(20))
    assert np.all(net.dense["enc_b"] == 0)


def test_accumulate_and_apply_follow_their_formulas(rng):
    net = Network(3, 2, "rtu-linear", encoder_width=4, n_units=3, head_width=4, dtype=np.float64,
                  trace_decay=0.5, cell_trace_decay=0.25)
    groups = net.parameter_groups()
    z0 = [z.copy() for _, _, z in groups]
    for _, g, _ in groups:
        g[...] = rng.standard_normal(g.shape)
    l1 = net.accumulate()
    expect = [(0.5 if i == 0 else 0.25) * z + g for i, ((_, g, _), z) in enumerate(zip(groups, z0))]
    for (_, _, z), e in zip(groups, expect):
        np.testing.assert_allclose(z, e)
    assert l1 == pytest.approx(sum(np.abs(e).sum() for e in expect))
    p0 = [p.copy() for p, _, _ in groups]
    net.apply(0.25)
    for (p, _, z), p_old in zip(groups, p0):
        np.testing.assert_allclose(p, p_old + 0.25 * z)


@pytest.mark.parametrize("input_skip", [False, True], ids=["", "skip"])
@pytest.mark.parametrize("cell", ["rtu-linear", "rtu-nonlinear"])
def test_fused_traces_equal_backward_then_accumulate(cell, input_skip, rng):
    """The actor's one-pass route (gradients added straight into the traces) equals backward() followed
    by accumulate(), traces, their L1 norm and the parameters after an ObGD step alike."""
    kw = dict(encoder_width=6, n_units=5, head_width=7, dtype=np.float64, seed=4, sparsity=0.5,
              trace_decay=0.7, cell_trace_decay=0.6, input_skip=input_skip)
    two_pass = Network(4, 3, cell, **kw)
    fused = Network(4, 3, cell, fused_traces=True, **kw)
    for t in range(25):
        x = rng.standard_normal(4)
        two_pass.forward(x)
        fused.forward(x)
        two_pass.dout[:] = fused.dout[:] = rng.standard_normal(3)
        l_two = two_pass.backward_accumulate(x)
        l_fused = fused.backward_accumulate(x)
        assert l_fused == pytest.approx(l_two, rel=1e-12)
        if t % 5 == 4:
            two_pass.apply(0.01)
            fused.apply(0.01)
    for (p2, _, z2), (pf, gf, zf) in zip(two_pass.parameter_groups(), fused.parameter_groups()):
        np.testing.assert_allclose(zf, z2, rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(pf, p2, rtol=1e-11, atol=1e-14)
    with pytest.raises(RuntimeError, match="backward_accumulate"):
        fused.backward(np.zeros(4))


@pytest.mark.parametrize("input_skip", [False, True], ids=["", "skip"])
@pytest.mark.parametrize("cell", ["rtu-linear", "rtu-nonlinear"])
def test_deferred_gradient_equals_backward_then_apply_and_accumulate(cell, input_skip, rng):
    """The critic's route: with fused traces, ``forward_backward`` only runs the forward and the next
    ``accumulate`` / ``apply_accumulate`` updates the RTRL traces and computes the gradient inside the
    ObGD pass (with the parameters before the step). It equals the two-pass route (backward writes G,
    then apply and accumulate), with separate dense and cell steps and accumulate-only steps mixed in:
    traces, their L1 norms (and shares), parameters, outputs and the cell's input gradient."""
    kw = dict(encoder_width=6, n_units=5, head_width=7, dtype=np.float64, seed=3, sparsity=0.5,
              trace_decay=0.7, cell_trace_decay=0.8, input_skip=input_skip)
    two_pass = Network(4, 1, cell, **kw)
    deferred = Network(4, 1, cell, fused_traces=True, **kw)
    assert deferred.fused_traces and not two_pass.fused_traces
    two_pass.dout[0] = deferred.dout[0] = 1.0
    l_two = 0.0
    for t in range(40):
        x = rng.standard_normal(4)
        out_two = two_pass.forward_backward(x).copy()
        out_def = deferred.forward_backward(x).copy()
        np.testing.assert_allclose(out_def, out_two, rtol=1e-10, atol=1e-12)
        if t % 6 == 0:
            l_two, l_def = two_pass.accumulate(), deferred.accumulate()
        else:
            # ObGD-sized steps (an update of L1 size <= 0.1): unbounded random steps make the network
            # chaotic, and any two summation orders then drift apart exponentially
            step, cell_step = rng.uniform(-0.1, 0.1, 2) / (1.0 + l_two)
            l_two = two_pass.apply_accumulate(step, cell_step)
            l_def = deferred.apply_accumulate(step, cell_step)
        assert l_def == pytest.approx(l_two, rel=1e-10)
        np.testing.assert_allclose(deferred.zl1, two_pass.zl1, rtol=1e-10)
        np.testing.assert_allclose(deferred.cell.dx, two_pass.cell.dx, rtol=1e-9, atol=1e-12)
    for (p2, _, z2), (pd, _, zd) in zip(two_pass.parameter_groups(), deferred.parameter_groups()):
        np.testing.assert_allclose(zd, z2, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(pd, p2, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(deferred.cell.traces["S1_w1"], two_pass.cell.traces["S1_w1"], rtol=1e-10,
                               atol=1e-12)
    assert not deferred.G.any()   # no gradient array was written


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fused", [False, True], ids=["two-pass", "fused"])
@pytest.mark.parametrize("cell", CELL_KINDS)
@pytest.mark.parametrize("input_skip", [False, True], ids=["", "skip"])
def test_each_parameter_group_trace_decays_by_its_own_factor(cell, fused, dtype, input_skip, rng):
    """Oracle: with dL/dout = 0 every gradient is exactly 0, so each accumulation scales the dense
    layers' traces by exactly trace_decay and the cell's by exactly cell_trace_decay (both rounded to the
    dtype), on every route: the actor's (backward_accumulate) and the critic's (forward_backward, then
    accumulate or apply_accumulate with a zero step; with fused traces that is the deferred pass)."""
    dense, cellwise = 0.99 * 0.5, 0.99 * 0.97
    net = Network(4, 2, cell, encoder_width=6, n_units=5, head_width=7, dtype=dtype, seed=2, sparsity=0.5,
                  fused_traces=fused, trace_decay=dense, cell_trace_decay=cellwise, input_skip=input_skip)
    assert net.trace_decays == (float(dtype(dense)), float(dtype(cellwise)))
    groups = net.parameter_groups()
    for _ in range(6):
        x = rng.standard_normal(4).astype(dtype)
        net.forward(x)
        net.dout[:] = rng.standard_normal(2)
        net.backward_accumulate(x)
    assert all(np.count_nonzero(z) for _, _, z in groups)
    net.dout[:] = 0.0
    for route in ("actor", "actor", "critic-accumulate", "critic-apply", "critic-apply"):
        before = [z.copy() for _, _, z in groups]
        x = rng.standard_normal(4).astype(dtype)
        if route == "actor":
            net.forward(x)
            net.backward_accumulate(x)
        else:
            net.forward_backward(x)
            net.accumulate() if route == "critic-accumulate" else net.apply_accumulate(0.0)
        for i, ((_, _, z), b) in enumerate(zip(groups, before)):
            np.testing.assert_array_equal(z, dtype(dense if i == 0 else cellwise) * b, err_msg=f"{route} group {i}")
    with pytest.raises(ValueError, match="cell_trace_decay"):
        Network(4, 2, cell, cell_trace_decay=1.5)
