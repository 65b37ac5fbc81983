"""Bad input at the Python boundary of the cells raises an error naming what was expected and given."""
import numpy as np
import pytest

from controller.cells import LRUCell, RTUCell
from controller.errors import ConfigError


@pytest.fixture(params=["rtu", "lru"])
def cell(request):
    return RTUCell(4, 3) if request.param == "rtu" else LRUCell(4, 3)


def test_wrong_input_length(cell):
    with pytest.raises(ValueError, match=r"Cell\.x: expected shape \(4,\), found \(5,\)"):
        cell.step(np.zeros(5))


def test_wrong_dtype(cell):
    with pytest.raises(TypeError, match=r"Cell\.x: expected dtype float64 .*, found float32"):
        cell.step(np.zeros(4, np.float32))


def test_not_an_array(cell):
    with pytest.raises(TypeError, match=r"Cell\.x: expected a numpy array .*, found list"):
        cell.step([0.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input(cell, bad):
    x = np.zeros(4)
    x[2] = bad
    with pytest.raises(ValueError, match=r"Cell\.x: expected finite values, found x\[2\] = (nan|inf|-inf)"):
        cell.step(x)
    assert not cell.state.any(), "a rejected input must not advance the state"


def test_wrong_dy(cell):
    cell.step(np.zeros(4))
    with pytest.raises(ValueError, match=rf"Cell\.dy: expected shape \({cell.n_out},\), found \(2,\)"):
        cell.grad(np.zeros(2))
    dy = np.zeros(cell.n_out)
    dy[0] = np.nan
    with pytest.raises(ValueError, match=r"Cell\.dy: expected finite values, found dy\[0\] = nan"):
        cell.grad(dy)


def test_non_contiguous_input(cell):
    with pytest.raises(ValueError, match=r"Cell\.x: expected a C-contiguous array .*, found a strided view"):
        cell.step(np.zeros(8)[::2])


@pytest.mark.parametrize("kwargs, message", [
    ({"variant": "gru"}, r"RTUCell\.variant: expected one of \['linear', 'nonlinear'\], found 'gru'"),
    ({"activation": "sigmoid"}, r"RTUCell\.activation: expected one of \['identity', 'relu', 'tanh'\], found 'sigmoid'"),
    ({"dtype": np.int32}, r"RTUCell\.dtype: expected float32 or float64, found"),
    ({"r_min": 0.9, "r_max": 0.5}, r"RTUCell\.r_min, r_max: expected 0 <= r_min < r_max <= 1, found r_min=0.9, r_max=0.5"),
    ({"max_phase": 0.0}, r"RTUCell\.max_phase: expected a number > 0 \(radians\), found 0.0"),
])
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RTUCell(4, 3, **kwargs)


@pytest.mark.parametrize("n_in", [0, -1, 2.5, "4", True])
def test_bad_sizes(n_in):
    with pytest.raises(ConfigError, match=r"RTUCell\.n_in: expected a positive integer, found"):
        RTUCell(n_in, 3)
    with pytest.raises(ConfigError, match=r"LRUCell\.n_in: expected a positive integer, found"):
        LRUCell(n_in, 3)
