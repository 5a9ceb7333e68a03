"""Fast gzip writing for mostly-empty volumes (masks, labelmaps).

A mask on a CT grid is mostly zeros. zlib compresses zeros at about 1 GB/s, so a
512 x 512 x 200 mask still costs ~50 ms. This writer looks at the data in fixed-size chunks
(a few rows of a slice): chunks of zeros are not compressed at all but emitted as a
precomputed deflate segment, and only the chunks holding data go through zlib.

The result is one ordinary gzip member holding one deflate stream (the technique of pigz):
every segment ends on a byte boundary after a full flush, so no back-reference crosses from
one segment into another. Any gzip reader (Python's gzip, zlib's gzread used by ITK,
SimpleITK, plastimatch and niftilib) reads it. The CRC-32 of the zero chunks is advanced
with a precomputed linear map instead of scanning the zeros.

The codec's facts (chunk size, zero segment, CRC of zeros) are shared with the fast reader,
:func:`rtmask.masks._inflate.inflate_rtmask_gzip`.
"""

from __future__ import annotations

import functools
import struct
import zlib
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray

__all__ = ["CHUNK_BYTES", "crc32_after_zeros", "write_gzip", "zero_segment"]

#: Bytes per chunk tested for zeros (32 rows of a 512-column uint8 slice).
CHUNK_BYTES = 1 << 14

#: gzip member header: magic, deflate, no flags, mtime 0, "fastest" (XFL 4), OS unknown.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"


@functools.cache
def zero_segment(length: int, level: int) -> bytes:
    """Raw deflate blocks (not final, byte-aligned) that inflate to ``length`` zero bytes."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 9, zlib.Z_RLE)
    return compressor.compress(bytes(length)) + compressor.flush(zlib.Z_FULL_FLUSH)


CrcMap = tuple[tuple[tuple[int, ...], ...], int]


def _apply(crc_map: CrcMap, crc: int) -> int:
    (t0, t1, t2, t3), constant = crc_map
    return t0[crc & 255] ^ t1[(crc >> 8) & 255] ^ t2[(crc >> 16) & 255] ^ t3[crc >> 24] ^ constant


@functools.cache
def _zero_crc_map(length: int, power: int = 0) -> CrcMap:
    """Tables for ``crc -> zlib.crc32(bytes(length * 2**power), crc)``, affine over GF(2).

    The map is ``L(crc) ^ K`` with ``L`` linear; ``L`` is stored as four 256-entry tables,
    one per byte of ``crc``, and ``K`` is the image of 0. Power ``p + 1`` is the map of
    power ``p`` applied twice.
    """
    if power == 0:
        zeros = bytes(length)
        constant = zlib.crc32(zeros, 0)
        basis = [zlib.crc32(zeros, 1 << bit) ^ constant for bit in range(32)]
    else:
        half = _zero_crc_map(length, power - 1)
        constant = _apply(half, half[1])
        basis = [_apply(half, _apply(half, 1 << bit)) ^ constant for bit in range(32)]
    tables = []
    for byte in range(4):
        table = [0] * 256
        for value in range(1, 256):
            lowest = value & -value
            table[value] = table[value ^ lowest] ^ basis[8 * byte + lowest.bit_length() - 1]
        tables.append(tuple(table))
    return (tables[0], tables[1], tables[2], tables[3]), constant


def crc32_after_zeros(crc: int, length: int, count: int = 1) -> int:
    """Return ``zlib.crc32(bytes(length * count), crc)`` without scanning the zeros."""
    power = 0
    while count:
        if count & 1:
            crc = _apply(_zero_crc_map(length, power), crc)
        count >>= 1
        power += 1
    return crc


def _runs(flags: NDArray[np.bool_]) -> list[tuple[int, int, bool]]:
    """Split a boolean array into ``(start, stop, value)`` runs of equal values."""
    if flags.size == 0:
        return []
    edges = np.flatnonzero(flags[1:] != flags[:-1]) + 1
    starts = [0, *edges.tolist()]
    stops = [*edges.tolist(), int(flags.size)]
    return [(a, b, bool(flags[a])) for a, b in zip(starts, stops, strict=True)]


def write_gzip(
    stream: BinaryIO,
    header: bytes,
    data: NDArray[np.generic],
    *,
    level: int = 1,
    chunk_bytes: int = CHUNK_BYTES,
) -> int:
    """Write ``header`` followed by the C-order bytes of ``data`` as one gzip member.

    Parameters
    ----------
    stream
        Binary file opened for writing.
    header
        Bytes written (compressed) before the data, e.g. a NIfTI header.
    data
        C-contiguous array of any numeric dtype; its raw bytes are written unchanged.
    level
        zlib compression level for the chunks that hold data (1 = fastest).
    chunk_bytes
        Size of the chunks tested for zeros.

    Returns
    -------
    int
        Number of compressed bytes written.
    """
    if not data.flags.c_contiguous:
        raise ValueError("write_gzip needs a C-contiguous array")
    raw = data.reshape(-1).view(np.uint8)
    # Integer masks and labels compress best (and fastest) with run-length matching.
    strategy = zlib.Z_DEFAULT_STRATEGY if data.dtype.kind == "f" else zlib.Z_RLE
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 8, strategy)
    n_full = raw.size // chunk_bytes
    nonzero: NDArray[np.bool_] = np.asarray(
        raw[: n_full * chunk_bytes].reshape(n_full, chunk_bytes).any(axis=1)
    )
    view = raw.data
    zero_block = zero_segment(chunk_bytes, level)

    written = 0

    def emit(block: bytes) -> None:
        nonlocal written
        if block:
            stream.write(block)
            written += len(block)

    emit(_GZIP_HEADER)
    crc = zlib.crc32(header)
    emit(compressor.compress(header))
    pending = bool(header)
    for start, stop, has_data in _runs(nonzero):
        if has_data:
            part = view[start * chunk_bytes : stop * chunk_bytes]
            crc = zlib.crc32(part, crc)
            emit(compressor.compress(part))
            pending = True
        else:
            if pending:
                # Byte-align and reset the compressor: the decoder will see the zero
                # segment in between, so no later match may point back past it.
                emit(compressor.flush(zlib.Z_FULL_FLUSH))
                pending = False
            crc = crc32_after_zeros(crc, chunk_bytes, stop - start)
            emit(zero_block * (stop - start))
    tail = view[n_full * chunk_bytes :]
    crc = zlib.crc32(tail, crc)
    emit(compressor.compress(tail))
    emit(compressor.flush(zlib.Z_FINISH))
    emit(struct.pack("<II", crc & 0xFFFFFFFF, (len(header) + raw.size) & 0xFFFFFFFF))
    return written
