"""Cross-thread handoff primitives for numba code (the critic helper thread, ``controller.critic_thread``).

numba has no atomics on the CPU, and a plain array read in a spin loop may be hoisted out of the loop by
LLVM. These intrinsics emit what C11 would: ``load_acquire`` / ``store_release`` on an int64 array
element (x86: plain moves with compiler ordering; aarch64: ``ldar`` / ``stlr``), so that every write a
thread made before its release store is visible to the thread whose acquire load sees that store.
``sleep_us`` calls ``usleep`` (POSIX), so an idle thread hands its core to others (``sched_yield`` in a
polling loop leaves the hand-over's latency to the scheduler).
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _element_pointer(context, builder, aryty, ary_value, index):
    ary = context.make_array(aryty)(context, builder, ary_value)
    return cgutils.get_item_pointer(context, builder, aryty, ary, [index], wraparound=False)


@intrinsic
def load_acquire(typingctx, arr, index):
    """arr[index] (int64 array, index >= 0 and in bounds) read with acquire ordering."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64 and arr.ndim == 1):
        return None
    sig = types.int64(arr, types.intp)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, ordering="acquire", align=8)

    return sig, codegen


@intrinsic
def store_release(typingctx, arr, index, value):
    """arr[index] = value (int64 array, index >= 0 and in bounds) with release ordering."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64 and arr.ndim == 1):
        return None
    sig = types.void(arr, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        builder.store_atomic(args[2], ptr, ordering="release", align=8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def sleep_us(typingctx, microseconds):
    """usleep(microseconds) (POSIX): give the core away for at least that long. Returns its status."""
    if not isinstance(microseconds, types.Integer):
        return None
    sig = types.int32(microseconds)

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), [ir.IntType(32)]),
                                            "usleep")
        value = context.cast(builder, args[0], signature.args[0], types.int32)
        return builder.call(fn, [value])

    return sig, codegen
