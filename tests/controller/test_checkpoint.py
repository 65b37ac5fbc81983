"""Checkpoints: a restored cell continues bit-identically; corrupt, truncated, foreign or mismatched
files give a clear error and leave the target untouched."""
import numpy as np
import pytest

from controller.cells import LRUCell, RTUCell
from controller.checkpoint import CheckpointError, load_arrays, load_cell, save_arrays, save_cell


@pytest.mark.parametrize("make", [lambda: RTUCell(5, 7, "linear", dtype=np.float32, seed=3),
                                  lambda: RTUCell(5, 7, "nonlinear", activation="relu", seed=3),
                                  lambda: LRUCell(5, 7, n_out=4, seed=3)],
                         ids=["rtu-linear", "rtu-nonlinear", "lru"])
def test_round_trip_gives_identical_next_steps(make, tmp_path, rng):
    a = make()
    xs = rng.normal(size=(30, 5)).astype(a.dtype)
    dys = rng.normal(size=(30, a.n_out)).astype(a.dtype)
    for t in range(15):
        a.step(xs[t])
        a.grad(dys[t])
    save_cell(tmp_path / "cell.npz", a)
    b = load_cell(tmp_path / "cell.npz", make())
    for t in range(15, 30):
        np.testing.assert_array_equal(a.step(xs[t]), b.step(xs[t]))
        ga, gb = a.grad(dys[t]), b.grad(dys[t])
        for k in ga:
            np.testing.assert_array_equal(ga[k], gb[k])


def test_mismatched_cell_is_refused(tmp_path):
    save_cell(tmp_path / "c.npz", RTUCell(5, 7))
    target = RTUCell(5, 8)
    before = target.vec.copy()
    with pytest.raises(CheckpointError, match=r"n_hidden: checkpoint has 7, cell has 8"):
        load_cell(tmp_path / "c.npz", target)
    np.testing.assert_array_equal(target.vec, before)
    with pytest.raises(CheckpointError, match=r"variant: checkpoint has 'linear', cell has 'nonlinear'"):
        load_cell(tmp_path / "c.npz", RTUCell(5, 7, variant="nonlinear"))
    with pytest.raises(CheckpointError, match=r"cell: checkpoint has 'RTUCell', cell has 'LRUCell'"):
        load_cell(tmp_path / "c.npz", LRUCell(5, 7))


def test_truncated_corrupt_and_foreign_files(tmp_path):
    path = save_arrays(tmp_path / "a.npz", {"w": np.arange(1000.0)}, {"step": 3})
    arrays, meta = load_arrays(path)
    assert meta == {"step": 3} and arrays["w"][999] == 999.0
    data = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"trunc.npz: corrupt or truncated checkpoint"):
        load_arrays(tmp_path / "trunc.npz")
    flipped = bytearray(data)
    offset = data.index(np.arange(1000.0)[500:501].tobytes())
    flipped[offset] ^= 0xFF
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match=r"flip.npz: (array 'w' fails its checksum|corrupt)"):
        load_arrays(tmp_path / "flip.npz")
    np.savez(tmp_path / "foreign.npz", w=np.zeros(3))
    with pytest.raises(CheckpointError, match=r"foreign.npz: not an rtu-control checkpoint"):
        load_arrays(tmp_path / "foreign.npz")
    with pytest.raises(CheckpointError, match=r"missing.npz: cannot read checkpoint"):
        load_arrays(tmp_path / "missing.npz")


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "c.npz"
    save_cell(path, RTUCell(3, 4))
    save_cell(path, RTUCell(3, 4, seed=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]
    load_cell(path, RTUCell(3, 4))
