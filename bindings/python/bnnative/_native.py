"""Loading libbnnative and giving ctypes its signatures from the generated ABI table (_abi.py).

The library is, in order: $BNNATIVE_LIBRARY; the copy this package carries (bnnative/_lib, put there when the
wheel or the installed package was built); the build output of the source tree this package sits in
(artifacts/lib of a checkout). Loaded once, on first use.
"""
import ctypes
import os

from . import _abi

_KINDS = {"status": ctypes.c_int32, "int32": ctypes.c_int32, "int64": ctypes.c_int64, "uint32": ctypes.c_uint32, "text": ctypes.c_char_p,
          "pointer": ctypes.c_void_p, "double": ctypes.c_double}


class Desc(ctypes.Structure):
    """bn_tensor_desc."""
    _fields_ = [(name, ctypes.c_int64 if kind == "int64" else ctypes.c_int32) for name, kind in _abi.DESC_FIELDS]


def candidates():
    """Where the library is looked for, in order."""
    here = os.path.dirname(os.path.abspath(__file__))
    paths = []
    if os.environ.get("BNNATIVE_LIBRARY"):
        paths.append(os.environ["BNNATIVE_LIBRARY"])
    paths.append(os.path.join(here, "_lib", "libbnnative.so"))
    paths.append(os.path.join(here, "..", "..", "..", "artifacts", "lib", "libbnnative.so"))
    return paths


_library = None


def library():
    """The loaded ctypes library, every entry point typed from _abi.FUNCTIONS."""
    global _library
    if _library is None:
        paths = candidates()
        path = next((p for p in paths if os.path.exists(p)), None)
        if path is None:
            raise OSError("libbnnative.so not found; looked in: " + ", ".join(paths)
                          + " (set BNNATIVE_LIBRARY, or build it with ./build.sh)")
        lib = ctypes.CDLL(os.path.abspath(path))
        for name, (restype, parameters) in _abi.FUNCTIONS.items():
            function = getattr(lib, name)
            function.restype = _KINDS[restype]
            function.argtypes = [ctypes.POINTER(Desc) if kind == "desc" else _KINDS[kind] for _, kind in parameters]
        lib.path = path
        _library = lib
    return _library
