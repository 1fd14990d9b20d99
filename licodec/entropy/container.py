"""The versioned, self-describing ``.lic`` container.

Layout (all integers unsigned; varint = LEB128)::

    magic        4 bytes   b"\\x89LIC"
    version      1 byte    FORMAT_VERSION
    codec id     varint length + UTF-8 (registry name, e.g. "hyperprior-vr")
    weights      8 bytes   first 8 bytes of the SHA-256 of the weights file
    quality      4 bytes   float32, big-endian (the rate parameter)
    height       varint    original image height in pixels
    width        varint    original image width in pixels
    channels     1 byte    channels of the source image (1 gray, 3 RGB, 4 RGBA)
    bit depth    1 byte    bits per sample of the source image (8 or 16)
    tile         varint    tile size the codec used (0: one tile)
    count        varint    number of sub-streams
    count x      varint length + ASCII name, varint payload length
    payloads     the sub-streams' bytes, in the order named
    crc32        4 bytes   big-endian CRC-32 of everything before it

:func:`Bitstream.from_bytes` is strict: anything malformed, truncated, corrupted,
foreign or from a newer format raises :class:`~licodec.errors.BitstreamError`.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field

from licodec.errors import BitstreamError

MAGIC = b"\x89LIC"
FORMAT_VERSION = 1
MAX_SIDE = 1 << 16  # 65536 pixels per side
MAX_PIXELS = 1 << 28  # 268 megapixels
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _put_varint(out: bytearray, value: int) -> None:
    if value < 0:
        raise ValueError("varint must be non-negative")
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return


class _Reader:
    def __init__(self, data: bytes, end: int) -> None:
        self.data, self.pos, self.end = data, 0, end

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise BitstreamError(f"truncated bitstream: {what} runs past the end")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def varint(self, what: str) -> int:
        value, shift = 0, 0
        for _ in range(10):
            (byte,) = self.take(1, what)
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
        raise BitstreamError(f"malformed bitstream: {what} is not a valid varint")

    def string(self, what: str, limit: int = 256) -> str:
        n = self.varint(what)
        if n > limit:
            raise BitstreamError(f"malformed bitstream: {what} is {n} bytes long")
        try:
            return self.take(n, what).decode("utf-8")
        except UnicodeDecodeError:
            raise BitstreamError(f"malformed bitstream: {what} is not UTF-8") from None


@dataclass
class Bitstream:
    """A coded image: header fields plus named sub-streams (name -> bytes)."""

    codec_id: str = ""
    weights_sha256: str = "0" * 16  # hex of the first 8 bytes
    quality: float = 0.0
    height: int = 0
    width: int = 0
    channels: int = 3
    bit_depth: int = 8
    tile: int = 0
    streams: dict = field(default_factory=dict)

    def stream(self, name: str) -> bytes:
        try:
            return self.streams[name]
        except KeyError:
            raise BitstreamError(f"bitstream has no sub-stream {name!r}") from None

    @property
    def payload_bytes(self) -> int:
        return sum(len(v) for v in self.streams.values())

    # -- writing ------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        out = bytearray(MAGIC)
        out.append(FORMAT_VERSION)
        codec = self.codec_id.encode("utf-8")
        _put_varint(out, len(codec))
        out += codec
        sha = bytes.fromhex(self.weights_sha256)
        if len(sha) != 8:
            raise ValueError("weights_sha256 must be 16 hex digits")
        out += sha
        out += struct.pack(">f", float(self.quality))
        for v in (self.height, self.width):
            _put_varint(out, int(v))
        out.append(int(self.channels))
        out.append(int(self.bit_depth))
        _put_varint(out, int(self.tile))
        _put_varint(out, len(self.streams))
        for name, data in self.streams.items():
            if not _NAME.match(name):
                raise ValueError(f"bad sub-stream name {name!r}")
            _put_varint(out, len(name))
            out += name.encode("ascii")
            _put_varint(out, len(data))
        for data in self.streams.values():
            out += data
        out += struct.pack(">I", zlib.crc32(out))
        return bytes(out)

    # -- reading ------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes) -> "Bitstream":
        data = bytes(data)
        if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
            raise BitstreamError("not a licodec bitstream (wrong magic bytes)")
        if len(data) < len(MAGIC) + 1:
            raise BitstreamError("truncated bitstream: no format version")
        version = data[len(MAGIC)]
        if version > FORMAT_VERSION:
            raise BitstreamError(
                f"bitstream format version {version} is newer than this licodec reads ({FORMAT_VERSION}); upgrade licodec"
            )
        if version < 1:
            raise BitstreamError(f"unknown bitstream format version {version}")
        if len(data) < len(MAGIC) + 1 + 4:
            raise BitstreamError("truncated bitstream")
        body_end = len(data) - 4
        (crc,) = struct.unpack(">I", data[body_end:])
        if zlib.crc32(data[:body_end]) != crc:
            raise BitstreamError("bitstream is corrupted or truncated (CRC-32 mismatch)")

        r = _Reader(data, body_end)
        r.pos = len(MAGIC) + 1
        codec_id = r.string("codec id", limit=128)
        sha = r.take(8, "weights hash").hex()
        (quality,) = struct.unpack(">f", r.take(4, "quality"))
        height, width = r.varint("height"), r.varint("width")
        channels, bit_depth = r.take(1, "channels")[0], r.take(1, "bit depth")[0]
        tile = r.varint("tile size")
        if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE and height * width <= MAX_PIXELS):
            raise BitstreamError(f"bitstream declares absurd dimensions {width}x{height}")
        if channels not in (1, 3, 4) or bit_depth not in (8, 16):
            raise BitstreamError(f"bitstream declares unsupported {channels} channels at {bit_depth} bits")
        if tile > MAX_SIDE:
            raise BitstreamError(f"bitstream declares an absurd tile size {tile}")
        count = r.varint("sub-stream count")
        if count > 4096:
            raise BitstreamError(f"bitstream declares {count} sub-streams")
        layout = []
        for _ in range(count):
            name = r.string("sub-stream name", limit=64)
            if not _NAME.match(name) or name in dict(layout):
                raise BitstreamError(f"malformed bitstream: bad or repeated sub-stream name {name!r}")
            layout.append((name, r.varint(f"length of {name}")))
        streams = {name: r.take(n, f"sub-stream {name}") for name, n in layout}
        if r.pos != body_end:
            raise BitstreamError(f"malformed bitstream: {body_end - r.pos} unexplained bytes after the sub-streams")
        return cls(codec_id=codec_id, weights_sha256=sha, quality=quality, height=height, width=width,
                   channels=channels, bit_depth=bit_depth, tile=tile, streams=streams)
