"""Atomic, verified checkpoints of named arrays and metadata (a cell's complete state; the agent's
checkpoints in ``agent_checkpoint`` use the same files).

File format (version 1): an uncompressed ``.npz`` (numpy's zip of ``.npy`` arrays) holding the arrays
plus one ``__meta__`` entry: JSON with ``format``, ``version``, the caller's metadata and a SHA-256 of
every array's bytes, dtype and shape. Writing is atomic: temporary file in the same directory, flush,
fsync, rename, fsync of the directory, so a crash leaves either the old file or the new one.

``save_arrays(path, arrays, meta)`` / ``load_arrays(path)`` -> (arrays, meta). A missing, truncated,
corrupt or foreign file raises ``CheckpointError`` naming the file and what is wrong; nothing is
half-loaded.

Cells: ``save_cell(path, cell)`` / ``load_cell(path, cell)`` store the cell's packed arrays (parameters,
cached coefficients, state, saved forward values, RTRL traces, gradients), so a restored cell produces
bit-identical next steps; ``load_cell`` refuses a checkpoint of another cell type, variant, activation,
dtype or size.
"""
import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from controller.errors import read_bytes

FORMAT = "rtu-control-checkpoint"
VERSION = 1
_META = "__meta__"


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not match what it is loaded into."""


def _digest(array):
    h = hashlib.sha256()
    h.update(str(array.dtype).encode())
    h.update(str(array.shape).encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def save_arrays(path, arrays, meta=None):
    """Atomically write arrays (dict name -> np.ndarray) and JSON-serialisable meta to path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if _META in arrays:
        raise ValueError(f"save_arrays: '{_META}' is a reserved name")
    header = {"format": FORMAT, "version": VERSION, "meta": meta or {},
              "sha256": {name: _digest(np.asarray(a)) for name, a in arrays.items()}}
    payload = dict(arrays)
    payload[_META] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def load_arrays(path):
    """(arrays, meta) from a checkpoint written by save_arrays, verified; CheckpointError otherwise."""
    path = Path(path)
    data = read_bytes(path, CheckpointError, "checkpoint")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            if _META not in npz.files:
                raise CheckpointError(f"{path}: not an rtu-control checkpoint (no {_META} entry)")
            header = json.loads(npz[_META].tobytes().decode())
            arrays = {name: npz[name] for name in npz.files if name != _META}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(err).__name__}: {err})") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format {header.get('format')!r}, expected {FORMAT!r}")
    if header.get("version") != VERSION:
        raise CheckpointError(f"{path}: version {header.get('version')!r}, this code reads {VERSION}")
    sums = header.get("sha256", {})
    if set(sums) != set(arrays):
        raise CheckpointError(f"{path}: arrays {sorted(arrays)} do not match the recorded {sorted(sums)}")
    for name, array in arrays.items():
        if _digest(array) != sums[name]:
            raise CheckpointError(f"{path}: array {name!r} fails its checksum (corrupt file)")
    return arrays, header.get("meta", {})


# ----------------------------------------------------------------------------- cells
def _cell_meta(cell):
    meta = {"cell": type(cell).__name__, "n_in": cell.n_in, "n_hidden": cell.n_hidden,
            "n_out": cell.n_out, "dtype": cell.dtype.name}
    if hasattr(cell, "variant"):
        meta.update(variant=cell.variant, activation=cell.activation,
                    official_theta_grad=cell.official_theta_grad)
    return meta


def _cell_arrays(cell):
    arrays = {"vec": cell.vec, "mat": cell.mat, "dx": cell.dx}
    if hasattr(cell, "cmat"):
        arrays.update(cmat=cell.cmat, y=cell.y)
    return arrays


def save_cell(path, cell):
    """Atomically write the complete state of an RTUCell or LRUCell."""
    return save_arrays(path, {k: v.copy() for k, v in _cell_arrays(cell).items()}, _cell_meta(cell))


def load_cell(path, cell):
    """Restore a cell saved by save_cell into a cell built with the same configuration (in place)."""
    arrays, meta = load_arrays(path)
    expected = _cell_meta(cell)
    diffs = [f"{k}: checkpoint has {meta.get(k)!r}, cell has {v!r}" for k, v in expected.items()
             if meta.get(k) != v]
    if diffs:
        raise CheckpointError(f"{path}: does not match this cell ({'; '.join(diffs)})")
    targets = _cell_arrays(cell)
    check_arrays(path, arrays, targets)
    copy_arrays(arrays, targets)
    return cell


def check_arrays(path, arrays, targets):
    """CheckpointError naming path and the array unless every target (name -> array) has a loaded
    array of the same shape and dtype in arrays. Nothing is written."""
    for name, target in targets.items():
        source = arrays.get(name)
        if source is None or source.shape != target.shape or source.dtype != target.dtype:
            got = None if source is None else (source.shape, str(source.dtype))
            raise CheckpointError(f"{path}: array {name!r} is {got}, expected "
                                  f"{(target.shape, str(target.dtype))}")


def copy_arrays(arrays, targets):
    """target[...] = arrays[name] for every target (after check_arrays)."""
    for name, target in targets.items():
        target[...] = arrays[name]
