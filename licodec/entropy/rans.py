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


class StreamDecoder:
    """Decode one sub-stream in several passes (context models decode a latent group by group).

    ``total`` is the number of symbols the stream holds; each :meth:`decode` call takes
    the next ones with the table ``indexes`` it is given. :meth:`finish` checks that
    exactly ``total`` symbols were taken and that they re-encode to the very bytes read,
    as :func:`decode` does for a one-pass stream.
    """

    def __init__(self, data: bytes, tables: RansTables, total: int, name: str = "sub-stream") -> None:
        if len(data) < 4 and total:
            raise BitstreamError(f"{name}: truncated ({len(data)} bytes)")
        self.data, self.tables, self.total, self.name = data, tables, total, name
        self._decoder = ans.RansDecoder()
        # zero padding keeps a damaged stream's over-reads inside our buffer (see decode)
        self._decoder.set_stream(data + bytes(8 * total + 64))
        self._symbols: list[np.ndarray] = []
        self._indexes: list[np.ndarray] = []
        self._taken = 0

    def decode(self, indexes) -> np.ndarray:
        indexes = _as_int32(indexes)
        if self._taken + indexes.size > self.total:
            raise BitstreamError(f"{self.name}: more symbols asked for than the stream holds")
        if indexes.size and (indexes.min() < 0 or indexes.max() >= self.tables.num_tables):
            raise BitstreamError(f"{self.name}: table index out of range")
        values = self._decoder.decode_stream(indexes.tolist(), self.tables.cdfs, self.tables.cdf_lengths,
                                             self.tables.offsets)
        symbols = np.asarray(values, dtype=np.int32)
        if not _in_range(symbols):
            raise BitstreamError(f"{self.name}: sub-stream is corrupted (decodes to out-of-range values)")
        self._symbols.append(symbols)
        self._indexes.append(indexes)
        self._taken += indexes.size
        return symbols

    def finish(self) -> None:
        if self._taken != self.total:
            raise BitstreamError(f"{self.name}: {self._taken} of {self.total} symbols were decoded")
        symbols = np.concatenate(self._symbols) if self._symbols else np.empty(0, np.int32)
        indexes = np.concatenate(self._indexes) if self._indexes else np.empty(0, np.int32)
        if encode(symbols, indexes, self.tables) != self.data:
            raise BitstreamError(f"{self.name}: sub-stream is corrupted or was not consumed whole")
