"""The .lic container: exact round trip and a strict parser."""

import struct
import zlib

import pytest

from licodec.entropy.container import FORMAT_VERSION, MAGIC, Bitstream
from licodec.errors import BitstreamError, LicodecError


def sample() -> Bitstream:
    return Bitstream(codec_id="hyperprior-vr", weights_sha256="0123456789abcdef", quality=3.25, height=512,
                     width=768, channels=3, bit_depth=8, tile=0, streams={"z": b"\x01\x02\x03", "y": bytes(range(200))})


def with_crc(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body))


def test_round_trip_is_exact():
    b = sample()
    data = b.to_bytes()
    assert data.startswith(MAGIC) and data[4] == FORMAT_VERSION
    assert Bitstream.from_bytes(data) == b
    assert Bitstream.from_bytes(data).to_bytes() == data


def test_header_is_small():
    data = sample().to_bytes()
    assert len(data) - sample().payload_bytes < 64


def test_every_truncation_is_rejected():
    data = sample().to_bytes()
    for n in range(len(data)):
        with pytest.raises(BitstreamError):
            Bitstream.from_bytes(data[:n])


def test_every_single_bit_flip_is_rejected():
    data = sample().to_bytes()
    for i in range(len(data)):
        for bit in (0, 3, 7):
            damaged = bytearray(data)
            damaged[i] ^= 1 << bit
            with pytest.raises(BitstreamError):
                Bitstream.from_bytes(bytes(damaged))


def test_trailing_bytes_are_rejected():
    with pytest.raises(BitstreamError):
        Bitstream.from_bytes(sample().to_bytes() + b"\x00")


@pytest.mark.parametrize("data", [b"", b"PNG\x89", b"\x89PNG\r\n\x1a\n" + bytes(40), b"hello world, not a bitstream"])
def test_foreign_input_says_wrong_magic(data):
    with pytest.raises(BitstreamError, match="not a licodec bitstream"):
        Bitstream.from_bytes(data)


def test_newer_version_is_named():
    data = bytearray(sample().to_bytes())
    data[4] = FORMAT_VERSION + 1
    with pytest.raises(BitstreamError, match="newer"):
        Bitstream.from_bytes(with_crc(bytes(data[:-4])))


def _header(height: int, width: int, channels: int = 3, bit_depth: int = 8, count: int = 0) -> bytes:
    body = bytearray(MAGIC) + bytes([FORMAT_VERSION, 1]) + b"x" + bytes(8) + struct.pack(">f", 1.0)
    for v in (height, width):
        while True:
            byte, v = v & 0x7F, v >> 7
            body.append(byte | (0x80 if v else 0))
            if not v:
                break
    body += bytes([channels, bit_depth, 0, count])
    return with_crc(bytes(body))


@pytest.mark.parametrize("h,w", [(0, 10), (10, 0), (1 << 20, 1 << 20), (65537, 5), (40000, 40000)])
def test_absurd_dimensions_are_rejected(h, w):
    with pytest.raises(BitstreamError, match="dimensions"):
        Bitstream.from_bytes(_header(h, w))


def test_unsupported_channels_are_rejected():
    with pytest.raises(BitstreamError, match="channels"):
        Bitstream.from_bytes(_header(8, 8, channels=2))


def test_a_valid_minimal_header_parses():
    b = Bitstream.from_bytes(_header(8, 9))
    assert (b.height, b.width, b.streams) == (8, 9, {})
    with pytest.raises(BitstreamError, match="no sub-stream"):
        b.stream("y")


def test_bitstream_error_is_a_licodec_error():
    assert issubclass(BitstreamError, LicodecError)
