"""Loading a compiled model (``<key>.so``) with the ctypes signatures of ``glue.cc``'s C API."""

import ctypes

__all__ = ["load", "u32p"]

u32p = ctypes.POINTER(ctypes.c_uint32)
_LIBS = {}


def load(so):
    """The loaded library of ``so`` (each path loaded once per process)."""
    lib = _LIBS.get(so)
    if lib is None:
        lib = ctypes.CDLL(str(so))
        _p, _size, _u64 = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint64
        lib.mx_create.restype = _p
        lib.mx_destroy.argtypes = [_p]
        lib.mx_port.argtypes = [_p, ctypes.c_char_p, ctypes.POINTER(_size),
                                ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint32),
                                ctypes.POINTER(u32p), ctypes.POINTER(u32p),
                                ctypes.POINTER(_p)]
        lib.mx_outline_eval.argtypes = [_p]
        lib.mx_outline_eval.restype = None
        # hot calls (mx_settle, mx_tick1): no argtypes (the handle is passed as a
        # c_void_p); they return the assertion-failed flag
        lib.mx_failure.argtypes = [_p]
        lib.mx_failure.restype = ctypes.c_char_p
        lib.mx_tick.argtypes = [_p, _u64, ctypes.c_int]
        lib.mx_run.argtypes = [_p, _u64, _size, ctypes.POINTER(u32p), ctypes.POINTER(_size),
                               u32p, _size, ctypes.POINTER(u32p), ctypes.POINTER(_size), u32p]
        lib.mx_vcd_open.argtypes = [_p, ctypes.c_char_p, _u64]
        lib.mx_vcd_close.argtypes = [_p]
        lib.mx_stream.argtypes = [_p, _p, _size, _p, _p, _p, _p, _u64,
                                  _p, _size, _p, _p, _p, _p, _u64, _u64, ctypes.c_int, _p]
        lib.mx_exchange.argtypes = [_p, _p, _p, _p, _p, _u64, _p, _p, _p, _p, _u64, _u64,
                                    _u64, _u64, _p]
        for name in ("mx_cycle", "mx_deltas"):
            getattr(lib, name).argtypes = [_p]
            getattr(lib, name).restype = _u64
        lib.mx_set_fast.argtypes = [_p, ctypes.c_int]
        lib.mx_set_fast.restype = None
        lib.mx_get_fast.argtypes = [_p]
        lib.mx_get_fast.restype = ctypes.c_int
        _LIBS[so] = lib
    return lib
