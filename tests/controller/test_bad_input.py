"""Bad input at the Python boundary of the cells raises an error naming what was expected and given."""
import numpy as np
import pytest

from controller.cells import LRUCell, RTUCell


@pytest.fixture(params=["rtu", "lru"])
def cell(request):
    return RTUCell(4, 3) if request.param == "rtu" else LRUCell(4, 3)


def test_wrong_input_length(cell):
    with pytest.raises(ValueError, match=r"x must have shape \(4,\), got \(5,\)"):
        cell.step(np.zeros(5))


def test_wrong_dtype(cell):
    with pytest.raises(TypeError, match="x must have dtype float64, got float32"):
        cell.step(np.zeros(4, np.float32))


def test_not_an_array(cell):
    with pytest.raises(TypeError, match="x must be a numpy array .* got list"):
        cell.step([0.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input(cell, bad):
    x = np.zeros(4)
    x[2] = bad
    with pytest.raises(ValueError, match=r"x\[2\] is (nan|inf|-inf); all values must be finite"):
        cell.step(x)
    assert not cell.state.any(), "a rejected input must not advance the state"


def test_wrong_dy(cell):
    cell.step(np.zeros(4))
    with pytest.raises(ValueError, match=rf"dy must have shape \({cell.n_out},\), got \(2,\)"):
        cell.grad(np.zeros(2))
    dy = np.zeros(cell.n_out)
    dy[0] = np.nan
    with pytest.raises(ValueError, match=r"dy\[0\] is nan"):
        cell.grad(dy)


def test_non_contiguous_input(cell):
    with pytest.raises(ValueError, match="C-contiguous"):
        cell.step(np.zeros(8)[::2])


@pytest.mark.parametrize("kwargs, message", [
    ({"variant": "gru"}, r"variant must be one of \['linear', 'nonlinear'\], got 'gru'"),
    ({"activation": "sigmoid"}, r"activation must be one of \['identity', 'relu', 'tanh'\], got 'sigmoid'"),
    ({"dtype": np.int32}, r"dtype must be float32 or float64, got"),
    ({"r_min": 0.9, "r_max": 0.5}, r"need 0 <= r_min < r_max <= 1, got r_min=0.9, r_max=0.5"),
])
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RTUCell(4, 3, **kwargs)


@pytest.mark.parametrize("n_in", [0, -1, 2.5, "4", True])
def test_bad_sizes(n_in):
    with pytest.raises(ValueError, match=r"n_in must be a positive integer, got"):
        RTUCell(n_in, 3)
    with pytest.raises(ValueError, match=r"n_in must be a positive integer, got"):
        LRUCell(n_in, 3)
