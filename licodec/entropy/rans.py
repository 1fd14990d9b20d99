"""A thin, per-instance wrapper around CompressAI's C++ rANS coder (``compressai.ans``).

CompressAI's Python layer routes every call through a process-global coder choice and
re-converts the CDF tables on each call. Here one :class:`RansTables` object holds the
tables of one entropy model, converted once, and each encode/decode makes its own
coder instance, so threads and codecs never share coder state.

Symbols and indexes are handed over as contiguous int32 arrays. :func:`decode` checks
that the sub-stream was consumed whole: it re-encodes the decoded symbols and compares
the bytes, which catches trailing garbage and streams that were cut or altered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from licodec._compat import compressai_core
from licodec.errors import BitstreamError

ans = compressai_core().ans


@dataclass(frozen=True)
class RansTables:
    """Quantized CDF tables of one entropy model, ready for the coder.

    cdfs: one list of ints per table (16-bit precision CDFs, padded rows trimmed).
    cdf_lengths: number of valid entries of each table.
    offsets: value of the first symbol of each table.
    """

    cdfs: list
    cdf_lengths: list
    offsets: list

    @classmethod
    def from_buffers(cls, quantized_cdf: torch.Tensor, cdf_length: torch.Tensor, offset: torch.Tensor) -> "RansTables":
        if quantized_cdf.numel() == 0:
            raise ValueError("entropy tables are empty: the model was never frozen")
        return cls(
            cdfs=quantized_cdf.to(torch.int32).tolist(),
            cdf_lengths=cdf_length.reshape(-1).to(torch.int32).tolist(),
            offsets=offset.reshape(-1).to(torch.int32).tolist(),
        )

    @property
    def num_tables(self) -> int:
        return len(self.cdf_lengths)


def _as_int32(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(a).reshape(-1), dtype=np.int32)


# CompressAI's coder escapes out-of-table values in 4-bit chunks; from 2^28 on its
# chunk count overflows a 32-bit shift and the encoder never returns. Stay far below.
MAX_ABS_SYMBOL = 1 << 24


def _in_range(symbols: np.ndarray) -> bool:
    return not symbols.size or int(np.abs(symbols.astype(np.int64)).max()) < MAX_ABS_SYMBOL


def encode(symbols, indexes, tables: RansTables) -> bytes:
    """Encode ``symbols`` (any shape, int) with table ``indexes`` (same shape) into bytes."""
    symbols, indexes = _as_int32(symbols), _as_int32(indexes)
    if symbols.shape != indexes.shape:
        raise ValueError(f"symbols {symbols.shape} and indexes {indexes.shape} differ in size")
    if not _in_range(symbols):
        raise ValueError(f"symbol magnitude of {MAX_ABS_SYMBOL} or more cannot be coded")
    if indexes.size and (indexes.min() < 0 or indexes.max() >= tables.num_tables):
        raise ValueError("table index out of range")
    encoder = ans.RansEncoder()
    return encoder.encode_with_indexes(
        symbols.tolist(), indexes.tolist(), tables.cdfs, tables.cdf_lengths, tables.offsets
    )


def decode(data: bytes, indexes, tables: RansTables, name: str = "sub-stream") -> np.ndarray:
    """Decode as many symbols as ``indexes`` has; returns int32 array of that size.

    Raises :class:`BitstreamError` when the bytes do not decode to exactly ``data``
    (a stream cut short, padded, or altered).
    """
    indexes = _as_int32(indexes)
    if indexes.size and (indexes.min() < 0 or indexes.max() >= tables.num_tables):
        raise BitstreamError(f"{name}: table index out of range")
    if len(data) < 4 and indexes.size:
        raise BitstreamError(f"{name}: truncated ({len(data)} bytes)")
    # The C++ decoder reads 32-bit words without bounds checks; zero padding keeps a
    # damaged stream's over-reads inside our buffer (the re-encode check rejects it).
    padded = data + bytes(8 * indexes.size + 64)
    decoder = ans.RansDecoder()
    values = decoder.decode_with_indexes(padded, indexes.tolist(), tables.cdfs, tables.cdf_lengths, tables.offsets)
    symbols = np.asarray(values, dtype=np.int32)
    if not _in_range(symbols):
        raise BitstreamError(f"{name}: sub-stream is corrupted (decodes to out-of-range values)")
    # consumed whole? re-encode and compare byte for byte
    if encode(symbols, indexes, tables) != data:
        raise BitstreamError(f"{name}: sub-stream is corrupted or was not consumed whole")
    return symbols
