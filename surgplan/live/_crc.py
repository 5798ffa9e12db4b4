"""CRC-64 of OpenIGTLink bodies: ECMA-182 polynomial, MSB first, initial value 0, no final XOR.

As ``crc64()`` in OpenIGTLink's ``Source/igtlutil/igtl_util.c`` (table driven, one byte per
step, ``crc = table[byte ^ (crc >> 56)] ^ (crc << 8)``), here eight bytes per step with
slicing-by-8 tables (the same CRC; a 112 kB organ POLYDATA in about 0.07 ms instead of 0.28).
Compiled with Numba and cached on disk.
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


def _slice_tables(table: np.ndarray) -> np.ndarray:
    """``(8, 256)`` tables: row ``k`` is the CRC of a byte followed by ``k`` zero bytes."""
    out = np.empty((8, 256), dtype=np.uint64)
    out[0] = table
    for k in range(1, 8):
        prev = out[k - 1]
        out[k] = (prev << np.uint64(8)) ^ table[(prev >> np.uint64(56)).astype(np.intp)]
    return out


#: Slicing-by-8 tables (Kounavis & Berry 2005, MSB-first form): eight bytes per step.
TABLES8 = _slice_tables(TABLE)


@njit(cache=True, nogil=True)
def _crc64_kernel(data: np.ndarray, table: np.ndarray, crc: np.uint64) -> np.uint64:
    """Table-driven CRC-64 of ``data`` (uint8) starting from ``crc``, one byte per step."""
    c = crc
    s56 = np.uint64(56)
    s8 = np.uint64(8)
    ff = np.uint64(0xFF)
    for i in range(data.shape[0]):
        c = table[(np.uint64(data[i]) ^ (c >> s56)) & ff] ^ (c << s8)
    return c


@njit(cache=True, nogil=True)
def _crc64_words(words: np.ndarray, t: np.ndarray, crc: np.uint64) -> np.uint64:
    """CRC-64 continued over big-endian 64-bit ``words`` (native uint64), eight bytes a step."""
    c = crc
    ff = np.uint64(0xFF)
    for i in range(words.shape[0]):
        x = c ^ words[i]
        c = (
            t[7, (x >> np.uint64(56)) & ff]
            ^ t[6, (x >> np.uint64(48)) & ff]
            ^ t[5, (x >> np.uint64(40)) & ff]
            ^ t[4, (x >> np.uint64(32)) & ff]
            ^ t[3, (x >> np.uint64(24)) & ff]
            ^ t[2, (x >> np.uint64(16)) & ff]
            ^ t[1, (x >> np.uint64(8)) & ff]
            ^ t[0, x & ff]
        )
    return c


def crc64(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-64 (ECMA-182, as OpenIGTLink computes it) of ``data``, continuing from ``crc``."""
    buf = np.frombuffer(data, dtype=np.uint8)
    n8 = len(buf) // 8 * 8
    c = np.uint64(crc)
    if n8:
        words = buf[:n8].view(">u8").astype(np.uint64)  # big-endian: the first byte on top
        c = np.uint64(_crc64_words(words, TABLES8, c))
    return int(_crc64_kernel(buf[n8:], TABLE, c))
