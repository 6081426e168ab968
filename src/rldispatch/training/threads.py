"""One thread for the small matrix products of acting and learning.

The Q-networks are small: a product of a few hundred rows costs less than waking a second
thread, and on a busy machine a BLAS waiting for its threads can be 10-30 times slower than
one thread alone. :func:`single_threaded_numerics` sets PyTorch to one thread and NumPy's
OpenBLAS to one thread in this process (through OpenBLAS's own ``set_num_threads``, found
among the loaded libraries; without it nothing happens).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import torch

OPENBLAS_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def _loaded_libraries() -> list[str]:
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return []
    return sorted({line.split()[-1] for line in lines if line.endswith(".so") or ".so." in line})


def limit_openblas_threads(threads: int = 1) -> bool:
    """Set the thread count of every loaded OpenBLAS; True if one was found."""
    import numpy  # noqa: F401  (loads NumPy's OpenBLAS)

    found = False
    for path in _loaded_libraries():
        if "openblas" not in Path(path).name.lower():
            continue
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in OPENBLAS_SETTERS:
            setter = getattr(library, name, None)
            if setter is not None:
                setter(ctypes.c_int(threads))
                found = True
                break
    return found


def single_threaded_numerics(threads: int = 1) -> None:
    """PyTorch and NumPy's BLAS on ``threads`` threads in this process."""
    torch.set_num_threads(threads)
    limit_openblas_threads(threads)
