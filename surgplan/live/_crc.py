"""CRC-64 of OpenIGTLink bodies: ECMA-182 polynomial, MSB first, initial value 0, no final XOR.

As ``crc64()`` in OpenIGTLink's ``Source/igtlutil/igtl_util.c`` (table driven, one byte per
step, ``crc = table[byte ^ (crc >> 56)] ^ (crc << 8)``). Compiled with Numba (a 100 kB body in
about 0.1 ms) and cached on disk.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: The ECMA-182 generator polynomial (x^64 implicit).
POLY_ECMA182 = 0x42F0E1EBA9EA3693


def _table() -> np.ndarray:
    """The 256-entry MSB-first table of :data:`POLY_ECMA182`."""
    table = np.zeros(256, dtype=np.uint64)
    top = 1 << 63
    mask = (1 << 64) - 1
    for i in range(256):
        r = i << 56
        for _ in range(8):
            r = ((r << 1) ^ POLY_ECMA182) & mask if r & top else (r << 1) & mask
        table[i] = r
    return table


TABLE = _table()


@njit(cache=True, nogil=True)
def _crc64_kernel(data: np.ndarray, table: np.ndarray, crc: np.uint64) -> np.uint64:
    """Table-driven CRC-64 of ``data`` (uint8) starting from ``crc``."""
    c = crc
    s56 = np.uint64(56)
    s8 = np.uint64(8)
    ff = np.uint64(0xFF)
    for i in range(data.shape[0]):
        c = table[(np.uint64(data[i]) ^ (c >> s56)) & ff] ^ (c << s8)
    return c


def crc64(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-64 (ECMA-182, as OpenIGTLink computes it) of ``data``, continuing from ``crc``."""
    buf = np.frombuffer(data, dtype=np.uint8)
    return int(_crc64_kernel(buf, TABLE, np.uint64(crc)))
