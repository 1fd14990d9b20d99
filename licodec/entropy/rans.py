"""A thin, per-instance wrapper around CompressAI's C++ rANS coder (``compressai.ans``).

CompressAI's Python layer routes every call through a process-global coder choice and
re-converts the CDF tables on each call. Here one :class:`RansTables` object holds the
tables of one entropy model, converted once, and each encode/decode makes its own
coder instance, so threads and codecs never share coder state.

Symbols and indexes are handed over as contiguous int32 arrays. :func:`decode` checks
that the sub-stream was consumed whole: it re-encodes the decoded symbols and compares
the bytes, which catches trailing garbage and streams that were cut or altered.

The C++ coder trusts its input, so this wrapper bounds it on both sides:

* Its decoder reads 32-bit words without bounds checks, and an escaped (out-of-table)
  value's length is itself coded in 4-bit chunks that continue while a chunk is 15: every
  0xF nibble of a hostile stream makes it read 8 more bytes (an all-0xFF stream makes it
  read 15 times its own length past its end). The stream is handed over with enough zero
  padding for that (:func:`_padding`), and sub-stream lengths the encoder cannot write are
  refused first (:func:`check_length`).
* Its encoder writes into a buffer of one 32-bit word per symbol; escaped values take up to
  1.5 words each and would run past its start. :func:`encode` refuses symbols that may not
  fit, and :func:`decode` refuses streams that decode to such symbols before re-encoding them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

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

    @cached_property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``cdf_lengths``, ``offsets`` and the CDFs (one zero-padded row per table) as int64
        arrays, for vectorized checks."""
        lengths = np.asarray(self.cdf_lengths, dtype=np.int64)
        cdfs = np.zeros((self.num_tables, max(len(c) for c in self.cdfs)), dtype=np.int64)
        for row, cdf in zip(cdfs, self.cdfs):
            row[: len(cdf)] = cdf
        return lengths, np.asarray(self.offsets, dtype=np.int64), cdfs


def _as_int32(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(a).reshape(-1), dtype=np.int32)


# CompressAI's coder escapes out-of-table values in 4-bit chunks; from 2^28 on its
# chunk count overflows a 32-bit shift and the encoder never returns. Stay far below.
MAX_ABS_SYMBOL = 1 << 24


def _in_range(symbols: np.ndarray) -> bool:
    return not symbols.size or int(np.abs(symbols.astype(np.int64)).max()) < MAX_ABS_SYMBOL


def _fits_encoder(symbols: np.ndarray, indexes: np.ndarray, tables: RansTables) -> bool:
    """Whether the encoder's output surely fits its buffer of one 32-bit word per symbol.

    An upper bound of the bits it writes (symbols in range, indexes valid): ``log2(2^16 / freq)``
    per symbol (plus 1e-4 for rounding), 4 per chunk of an escaped value and of its chunk count;
    it writes a word per 32 bits, plus the two of its final state."""
    n = symbols.size
    if not n:
        return True
    lengths, offsets, cdfs = tables.arrays
    value = symbols.astype(np.int64) - offsets[indexes]
    max_value = lengths[indexes] - 2
    escaped = (value < 0) | (value >= max_value)
    raw = np.where(value < 0, -2 * value - 1, 2 * (value - max_value))[escaped]
    chunks = np.zeros(raw.shape, dtype=np.int64)
    while raw.size and raw.any():
        chunks += raw != 0
        raw = raw >> 4
    escape_bits = 4 * int((chunks + chunks // 15 + 1).sum())

    def words(bits: float) -> int:
        return int((bits + 1e-4 * n + 32) // 32) + 3

    if words(16 * n + escape_bits) <= n:  # at most 16 bits a symbol: the usual case, no table lookups
        return True
    coded = np.where(escaped, max_value, value)
    freq = cdfs[indexes, coded + 1] - cdfs[indexes, coded]
    return words(float(np.log2(65536.0 / np.maximum(freq, 1)).sum()) + escape_bits) <= n


def check_length(n_bytes: int, total: int, name: str = "sub-stream") -> None:
    """Refuse a sub-stream length the encoder never writes for ``total`` symbols: it writes
    whole 32-bit words, at least the two of its final state, at most one word per symbol."""
    if not total:
        return
    if n_bytes < 8:
        raise BitstreamError(f"{name}: truncated ({n_bytes} bytes)")
    if n_bytes % 4:
        raise BitstreamError(f"{name}: {n_bytes} bytes is not a whole number of 32-bit words")
    if n_bytes > 4 * total:
        raise BitstreamError(f"{name}: {n_bytes} bytes is more than the encoder writes for {total} symbols")


def _padding(data: bytes, total: int) -> int:
    """Zero bytes to append so that decoding ``total`` symbols from ``data`` stays in the buffer.

    Past the end, zeros decode to short symbols (8 bytes per symbol is ample); an escape
    chain reads up to 16 nibbles per 0xF nibble it meets, and only the data has those."""
    arr = np.frombuffer(data, dtype=np.uint8)
    nibbles_f = int(np.count_nonzero((arr & 0x0F) == 0x0F)) + int(np.count_nonzero(arr >= 0xF0))
    return 8 * total + 8 * nibbles_f + 256


def encode(symbols, indexes, tables: RansTables) -> bytes:
    """Encode ``symbols`` (any shape, int) with table ``indexes`` (same shape) into bytes."""
    symbols, indexes = _as_int32(symbols), _as_int32(indexes)
    if symbols.shape != indexes.shape:
        raise ValueError(f"symbols {symbols.shape} and indexes {indexes.shape} differ in size")
    if not _in_range(symbols):
        raise ValueError(f"symbol magnitude of {MAX_ABS_SYMBOL} or more cannot be coded")
    if indexes.size and (indexes.min() < 0 or indexes.max() >= tables.num_tables):
        raise ValueError("table index out of range")
    if not _fits_encoder(symbols, indexes, tables):
        raise ValueError("too many out-of-table values: the rANS encoder's buffer cannot hold them")
    return _encode(symbols, indexes, tables)


def _encode(symbols: np.ndarray, indexes: np.ndarray, tables: RansTables) -> bytes:
    """The C++ encoder, for int32 arrays the caller has checked (see :func:`encode`)."""
    return ans.RansEncoder().encode_with_indexes(
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
    check_length(len(data), indexes.size, name)
    # The C++ decoder reads 32-bit words without bounds checks; zero padding keeps a
    # damaged stream's over-reads inside our buffer (the re-encode check rejects it).
    padded = data + bytes(_padding(data, indexes.size))
    decoder = ans.RansDecoder()
    values = decoder.decode_with_indexes(padded, indexes.tolist(), tables.cdfs, tables.cdf_lengths, tables.offsets)
    symbols = np.asarray(values, dtype=np.int32)
    if not _in_range(symbols) or not _fits_encoder(symbols, indexes, tables):
        raise BitstreamError(f"{name}: sub-stream is corrupted (decodes to out-of-range values)")
    # consumed whole? re-encode and compare byte for byte
    if _encode(symbols, indexes, tables) != data:
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
        check_length(len(data), total, name)
        self.data, self.tables, self.total, self.name = data, tables, total, name
        self._decoder = ans.RansDecoder()
        # zero padding keeps a damaged stream's over-reads inside our buffer (see decode)
        self._decoder.set_stream(data + bytes(_padding(data, total)))
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
        if not _fits_encoder(symbols, indexes, self.tables):
            raise BitstreamError(f"{self.name}: sub-stream is corrupted (decodes to out-of-range values)")
        if _encode(symbols, indexes, self.tables) != self.data:
            raise BitstreamError(f"{self.name}: sub-stream is corrupted or was not consumed whole")
