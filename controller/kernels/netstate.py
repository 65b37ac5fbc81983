"""``NetState``: every array of one network in a single numba StructRef, so that a fused kernel gets all
of them through one argument.

Why: each array argument of a numba call from Python is unboxed on every call (docs/benchmarks.md), so
the ~60 arrays that one learning step touches would cost more to pass than many of the loops cost to
run. A StructRef is unboxed once and, unlike a jitclass, kernels taking it can be cached on disk. The fields are the very arrays ``controller.networks.Network``
owns (no copies): writing through either side is seen by the other.

Fields (``dtype`` = the network's float dtype; all C-contiguous):

* ``P``, ``G``, ``Z``, ``A``: (·,) flat dense parameters, one-step gradients, eligibility traces,
  activations; ``lay``: int64 offsets (``controller.kernels.dense``);
* ``kind``: int64 (4,) codes, indexed by ``CODE_CELL`` (``KIND_*``), ``CODE_VARIANT`` and
  ``CODE_ACTIVATION`` (the RTU's ``layout.VARIANT_*`` / ``layout.ACT_*``), ``CODE_FUSED_TRACES`` (1: the
  cell's eligibility traces live in its gradient rows/slabs, ``controller.networks``);
  ``official``: int64 (1,), the RTU's official-theta-gradient flag;
* ``vec`` (rows, n), ``mat`` (slabs, d, n), ``cmat`` (slabs, m, n): the cell's packed arrays (dummies of
  shape (1, 1) / (1, 1, 1) where the cell has none); ``y``: (m,) the cell output (the encoder output view
  when there is no cell); ``hin``: the head's input, ``y`` itself, or with the input skip
  (``lay[LAY_SKIP]``) the (m + H,) view of ``A`` that the forward fills with [y, encoder output];
  ``dx``: (H,) the cell's input-gradient scratch;
* ``p1, g1, z1`` ... ``p3, g3, z3``: the cell's parameter groups as flat views (parameters, gradients,
  eligibility traces), empty where unused;
* ``sc``: (4,) scratch scalars of the network dtype, indexed by ``SC_STEP``, ``SC_CELL_STEP`` (the step
  sizes of the last ``net_apply``, rounded to the dtype so float32 loops keep float32 step sizes) and
  ``SC_NO_DECAY`` (never written: the zero decay argument of passes that overwrite gradients);
* ``zl1``: float64 (2,) = [||z||_1 of the dense layers, ||z||_1 of the cell] after the network's last
  trace accumulation (the per-group ObGD bound reads them; zeroed with the traces);
* ``decay``: (2,) of the network dtype, read-only: the eligibility-trace decays γλ of the dense layers
  (``DECAY_DENSE``) and of the cell (``DECAY_CELL``); every accumulation z <- decay z + g uses them.
"""
from numba import njit, types
from numba.experimental import structref

KIND_NONE = 0
KIND_RTU = 1
KIND_LRU = 2

CODE_CELL = 0           # kind[CODE_CELL]: KIND_NONE, KIND_RTU or KIND_LRU
CODE_VARIANT = 1        # kind[CODE_VARIANT]: the RTU's variant (layout.VARIANT_*)
CODE_ACTIVATION = 2     # kind[CODE_ACTIVATION]: the RTU's activation (layout.ACT_*)
CODE_FUSED_TRACES = 3   # kind[CODE_FUSED_TRACES]: 1 when the cell's traces live in its gradient rows/slabs
CODES = 4

SC_STEP = 0         # sc[SC_STEP]: the dense layers' step of the last net_apply, in the network's dtype
SC_CELL_STEP = 2    # sc[SC_CELL_STEP]: the cell's step of the last net_apply
SC_NO_DECAY = 3     # sc[SC_NO_DECAY]: never written (0), the decay of passes that overwrite gradients
SC_SIZE = 4

DECAY_DENSE = 0     # decay[DECAY_DENSE]: trace decay of the encoder and head parameters (P)
DECAY_CELL = 1      # decay[DECAY_CELL]: trace decay of the cell's parameters (groups 1-3)

FIELDS = ("P", "G", "Z", "A", "lay", "kind", "official", "vec", "mat", "cmat", "y", "hin", "dx",
          "p1", "g1", "z1", "p2", "g2", "z2", "p3", "g3", "z3", "sc", "zl1", "decay")


@structref.register
class NetStateType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class NetState(structref.StructRefProxy):
    """Python handle of a network's StructRef; build with ``NetState(*arrays)`` in ``FIELDS`` order."""

    def __new__(cls, *arrays):
        # through a constructor in numba's disk cache: numba's own proxy constructor is compiled anew
        # in every process (about 0.5 s per network dtype, most of a warm start)
        return _construct(*arrays)


structref.define_proxy(NetState, NetStateType, list(FIELDS))


@njit(cache=True)
def _construct(P, G, Z, A, lay, kind, official, vec, mat, cmat, y, hin, dx,
               p1, g1, z1, p2, g2, z2, p3, g3, z3, sc, zl1, decay):
    return NetState(P, G, Z, A, lay, kind, official, vec, mat, cmat, y, hin, dx,
                    p1, g1, z1, p2, g2, z2, p3, g3, z3, sc, zl1, decay)
