"""The ``.lic`` video container: coded frames that stream out, seek, and survive damage.

A coded video is a header, one record per frame (in frame order), an index and a
fixed-size footer. All integers are unsigned; varint = LEB128, as in the image
container (:mod:`licodec.entropy.container`); byte offsets count from the magic::

    header
      magic          4 bytes   b"\\x89LIV"
      version        1 byte    FORMAT_VERSION
      codec id       varint length + UTF-8 (registry name of the video codec)
      weights        8 bytes   first 8 bytes of the SHA-256 of the video codec's weights
      intra codec    varint length + UTF-8 (registry name of the image codec of the I-frames)
      intra weights  8 bytes   first 8 bytes of the SHA-256 of the intra codec's weights
      quality        4 bytes   float32, big-endian (the rate parameter)
      width          varint    pixels
      height         varint    pixels
      fps            varint numerator, varint denominator
      frame count    varint    0: not known when the header was written (the index has it)
      I-period       varint    frame 0 and every I-period-th frame are I-frames
      pix fmt        varint length + ASCII (the source's pixel format: "yuv420p", "rgb24", ...)
      crc32          4 bytes   big-endian CRC-32 of the header's bytes before it

    record, one per frame
      marker         1 byte    0xFA
      type           1 byte    b"I" (intra-coded) or b"P" (predicted from the previous frame)
      number         varint    frame number, from 0
      length         varint    bytes of the body
      body           varint count, count x (varint length + ASCII name, varint payload
                     length), then the payloads in the order named
      crc32          4 bytes   CRC-32 of the record from its marker to the end of the body

    index
      marker         1 byte    0xFB
      frame count    varint
      I-frames       varint count, count x (varint frame-number delta, varint byte-offset
                     delta) from the previous I-frame (the first from 0)
      frames         frame count x (varint record bytes, varint payload bytes)
      crc32          4 bytes   CRC-32 of the index from its marker

    footer, the last 12 bytes
      index offset   8 bytes   big-endian
      magic          4 bytes   b"LIVX"

Besides the I-period-th frames, a codec may code any frame as an I-frame (a scene cut).
Frames are written strictly in order, so a P-frame always follows its reference.

:class:`VideoReader` parses the header strictly (anything wrong raises
:class:`~licodec.errors.BitstreamError`) and is forgiving after it: a damaged index is
rebuilt by scanning for records whose CRC-32 holds, and a damaged record comes out of
:meth:`VideoReader.records` as a :class:`DamagedFrame`, decoding resuming at the next
I-frame. Every length is checked against the bytes that remain before anything is read.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import re
import struct
import tempfile
import zlib
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import accumulate
from typing import BinaryIO, Iterator, NamedTuple, Union

from licodec.entropy.container import _NAME, MAGIC as IMAGE_MAGIC, MAX_PIXELS, MAX_SIDE, _put_varint, _Reader
from licodec.errors import BitstreamError, LicodecError
from licodec.transaction import CloseOrAbort

MAGIC = b"\x89LIV"
FORMAT_VERSION = 1
RECORD_MARKER = 0xFA
INDEX_MARKER = 0xFB
FOOTER_MAGIC = b"LIVX"
FOOTER = struct.Struct(">Q4s")
FRAME_TYPES = ("I", "P")
MAX_FRAMES = 10**7  # frames in one stream (over four days at 25 fps)
MAX_STREAMS = 4096  # sub-streams in one frame record
MAX_RATE_TERM = (1 << 31) - 1  # numerator and denominator of the frame rate
MIN_RECORD_BYTES = 9  # marker, type, number, length, sub-stream count, CRC-32
_CODEC_ID_BYTES = 128
_PIX_FMT = re.compile(r"[a-z0-9_]{1,32}")
_HASH = re.compile(r"[0-9a-f]{16}")
_FLOAT32_MAX = 3.4028234663852886e38
_INT_FIELDS = ("width", "height", "fps_num", "fps_den", "frame_count", "i_period")

__all__ = ["MAGIC", "FORMAT_VERSION", "MAX_FRAMES", "VideoHeader", "FrameRecord", "DamagedFrame",
           "FrameEntry", "VideoIndex", "VideoWriter", "VideoReader", "describe"]


# -- header ---------------------------------------------------------------------------
def _header_problem(fields: dict) -> str | None:
    """What is wrong with a header's field values (a phrase), or None when they are sane."""
    for key in ("codec_id", "intra_codec_id"):
        value = fields[key]
        if not isinstance(value, str) or not value:
            return f"an empty or non-text {key} {value!r}"
        try:
            if len(value.encode("utf-8")) > _CODEC_ID_BYTES:
                return f"a {key} longer than {_CODEC_ID_BYTES} bytes"
        except UnicodeEncodeError:
            return f"a {key} that is not valid Unicode"
    for key in ("weights_sha256", "intra_weights_sha256"):
        if not isinstance(fields[key], str) or not _HASH.fullmatch(fields[key]):
            return f"a {key} that is not 16 lowercase hex digits: {fields[key]!r}"
    for key in _INT_FIELDS:
        if not isinstance(fields[key], int) or isinstance(fields[key], bool):
            return f"a non-integer {key} {fields[key]!r}"
    quality = fields["quality"]
    if not isinstance(quality, (int, float)) or isinstance(quality, bool) or not math.isfinite(quality) \
            or abs(quality) > _FLOAT32_MAX:
        return f"a quality of {quality!r} (a finite float32 is needed)"
    width, height = fields["width"], fields["height"]
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE and width * height <= MAX_PIXELS):
        return f"absurd dimensions {width}x{height}"
    if not (1 <= fields["fps_num"] <= MAX_RATE_TERM and 1 <= fields["fps_den"] <= MAX_RATE_TERM):
        return f"an absurd frame rate {fields['fps_num']}/{fields['fps_den']}"
    if not 0 <= fields["frame_count"] <= MAX_FRAMES:
        return f"{fields['frame_count']} frames (at most {MAX_FRAMES} are allowed)"
    if not 1 <= fields["i_period"] <= MAX_FRAMES:
        return f"an I-period of {fields['i_period']} (1 to {MAX_FRAMES} is allowed)"
    if not isinstance(fields["pix_fmt"], str) or not _PIX_FMT.fullmatch(fields["pix_fmt"]):
        return f"a bad pixel format {fields['pix_fmt']!r}"
    return None


def _put_string(out: bytearray, text: str) -> None:
    raw = text.encode("utf-8")
    _put_varint(out, len(raw))
    out += raw


def _encode_header(fields: dict) -> bytes:
    """Header bytes for field values, without judging them (:class:`VideoHeader` does that)."""
    out = bytearray(MAGIC)
    out.append(FORMAT_VERSION)
    _put_string(out, fields["codec_id"])
    out += bytes.fromhex(fields["weights_sha256"])
    _put_string(out, fields["intra_codec_id"])
    out += bytes.fromhex(fields["intra_weights_sha256"])
    out += struct.pack(">f", float(fields["quality"]))
    for key in _INT_FIELDS:
        _put_varint(out, fields[key])
    _put_string(out, fields["pix_fmt"])
    out += struct.pack(">I", zlib.crc32(out))
    return bytes(out)


@dataclass(frozen=True, kw_only=True)
class VideoHeader:
    """What a decoder needs before the first frame; a bad value raises :class:`LicodecError`.

    ``frame_count`` 0 means unknown when the header was written (a live encode): the
    index at the end then has it. ``quality`` is stored as a float32."""

    codec_id: str
    intra_codec_id: str
    width: int
    height: int
    fps_num: int
    fps_den: int = 1
    i_period: int
    frame_count: int = 0
    quality: float = 0.0
    weights_sha256: str = "0" * 16  # hex of the first 8 bytes of the weights' SHA-256
    intra_weights_sha256: str = "0" * 16
    pix_fmt: str = "yuv420p"

    def __post_init__(self) -> None:
        problem = _header_problem(vars(self))
        if problem:
            raise LicodecError(f"bad video header: {problem}")

    @property
    def fps(self) -> Fraction:
        return Fraction(self.fps_num, self.fps_den)

    def to_bytes(self) -> bytes:
        return _encode_header(vars(self))


def _parse_header(data, size: int) -> tuple[VideoHeader, int]:
    """The header at the start of ``data`` and the offset of the first record."""
    if size < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        if data[: len(IMAGE_MAGIC)] == IMAGE_MAGIC:
            raise BitstreamError("this is a licodec image bitstream, not a video stream")
        raise BitstreamError("not a licodec video stream (wrong magic bytes)")
    if size < len(MAGIC) + 1:
        raise BitstreamError("truncated video stream: no format version")
    version = data[len(MAGIC)]
    if version > FORMAT_VERSION:
        raise BitstreamError(f"video stream format version {version} is newer than this licodec reads "
                             f"({FORMAT_VERSION}); upgrade licodec")
    if version < 1:
        raise BitstreamError(f"unknown video stream format version {version}")
    r = _Reader(data, size)
    r.pos = len(MAGIC) + 1
    fields: dict = {"codec_id": r.string("codec id", limit=_CODEC_ID_BYTES),
                    "weights_sha256": r.take(8, "weights hash").hex(),
                    "intra_codec_id": r.string("intra codec id", limit=_CODEC_ID_BYTES),
                    "intra_weights_sha256": r.take(8, "intra weights hash").hex()}
    (fields["quality"],) = struct.unpack(">f", r.take(4, "quality"))
    for key in _INT_FIELDS:
        fields[key] = r.varint(key.replace("_", " "))
    fields["pix_fmt"] = r.string("pixel format", limit=32)
    header_end = r.pos
    (crc,) = struct.unpack(">I", r.take(4, "header CRC-32"))
    if zlib.crc32(data[:header_end]) != crc:
        raise BitstreamError("video header is corrupted (CRC-32 mismatch)")
    problem = _header_problem(fields)
    if problem:
        raise BitstreamError(f"video stream declares {problem}")
    return VideoHeader(**fields), r.pos


# -- records ----------------------------------------------------------------------------
@dataclass
class FrameRecord:
    """One coded frame: its type ("I" or "P"), its number and its named sub-streams."""

    frame_type: str
    number: int
    streams: dict[str, bytes] = field(default_factory=dict)

    @property
    def payload_bytes(self) -> int:
        return sum(len(v) for v in self.streams.values())

    def stream(self, name: str) -> bytes:
        try:
            return self.streams[name]
        except KeyError:
            raise BitstreamError(f"frame {self.number} has no sub-stream {name!r}") from None


@dataclass(frozen=True)
class DamagedFrame:
    """A frame that cannot be decoded: its record is damaged or missing, or it depends on one that is."""

    number: int
    reason: str


def _encode_record(record: FrameRecord) -> bytes:
    body = bytearray()
    _put_varint(body, len(record.streams))
    for name, data in record.streams.items():
        _put_varint(body, len(name))
        body += name.encode("ascii")
        _put_varint(body, len(data))
    out = bytearray((RECORD_MARKER, ord(record.frame_type)))
    _put_varint(out, record.number)
    _put_varint(out, len(body) + record.payload_bytes)
    out += body
    for data in record.streams.values():
        out += data
    out += struct.pack(">I", zlib.crc32(out))
    return bytes(out)


def _record_refusal(record, expected: int, header: VideoHeader) -> str | None:
    """Why the writer cannot append ``record`` as frame ``expected`` (a phrase), or None."""
    if not isinstance(record, FrameRecord):
        return f"expected a FrameRecord, got {type(record).__name__}"
    if record.frame_type not in FRAME_TYPES:
        return f"unknown frame type {record.frame_type!r} (use 'I' or 'P')"
    if not isinstance(record.number, int):
        return f"the frame number must be an int, not {type(record.number).__name__}"
    if record.number != expected:
        return f"frames must be written in order, expected frame {expected}"
    if header.frame_count and record.number >= header.frame_count:
        return f"the header declares only {header.frame_count} frames"
    if record.number >= MAX_FRAMES:
        return f"a stream holds at most {MAX_FRAMES} frames"
    if record.number % header.i_period == 0 and record.frame_type != "I":
        return (f"every {header.i_period}th frame, counting from 0, must be an I-frame "
                f"(a P-frame here would follow a reference a seeking decoder does not have)")
    if not isinstance(record.streams, dict) or len(record.streams) > MAX_STREAMS:
        return f"streams must be a dict of at most {MAX_STREAMS} sub-streams"
    for name, data in record.streams.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            return f"bad sub-stream name {name!r} (1-64 of A-Z a-z 0-9 . _ -)"
        if not isinstance(data, (bytes, bytearray)):
            return f"sub-stream {name!r} is {type(data).__name__}, not bytes"
    return None


def _parse_body(data, start: int, end: int) -> dict[str, bytes]:
    r = _Reader(data, end)
    r.pos = start
    count = r.varint("sub-stream count")
    if count > MAX_STREAMS:
        raise BitstreamError(f"frame record declares {count} sub-streams")
    layout: dict[str, int] = {}
    for _ in range(count):
        name = r.string("sub-stream name", limit=64)
        if not _NAME.fullmatch(name) or name in layout:
            raise BitstreamError(f"frame record has a bad or repeated sub-stream name {name!r}")
        layout[name] = r.varint(f"length of {name}")
    streams = {name: r.take(n, f"sub-stream {name}") for name, n in layout.items()}
    if r.pos != end:
        raise BitstreamError(f"frame record has {end - r.pos} unexplained bytes after its sub-streams")
    return streams


# -- index ------------------------------------------------------------------------------
class FrameEntry(NamedTuple):
    """What the index knows about one frame."""

    number: int
    frame_type: str
    offset: int  # of the record, from the magic
    record_bytes: int  # the whole record: framing, sub-stream table, payloads, CRC
    payload_bits: int  # 8 x the bytes of its sub-streams: the frame's rate


class VideoIndex:
    """Where each frame's record is, and where the I-frames are.

    From the footer it lists every frame; rebuilt by a recovery scan it lists only the
    frames whose records were found intact (:meth:`entry` is None for the others)."""

    def __init__(self, frame_count: int, numbers: array, types: bytes, offsets: array,
                 record_bytes: array, payload_bytes: array) -> None:
        self.frame_count = frame_count
        self._numbers, self._types, self._offsets = numbers, types, offsets
        self._record_bytes, self._payload_bytes = record_bytes, payload_bytes
        self.i_frames: tuple[tuple[int, int], ...] = tuple(
            (n, o) for n, t, o in zip(numbers, types, offsets) if t == ord("I"))
        self._i_numbers = [n for n, _ in self.i_frames]

    def entry(self, number: int) -> FrameEntry | None:
        k = bisect_left(self._numbers, number)
        if k == len(self._numbers) or self._numbers[k] != number:
            return None
        return FrameEntry(number, chr(self._types[k]), self._offsets[k], self._record_bytes[k],
                          8 * self._payload_bytes[k])

    def i_frame_at_or_before(self, number: int) -> tuple[int, int] | None:
        """(frame number, byte offset) of the last I-frame at or before ``number``."""
        k = bisect_right(self._i_numbers, number)
        return self.i_frames[k - 1] if k else None

    def i_frame_after(self, number: int) -> tuple[int, int] | None:
        """(frame number, byte offset) of the first I-frame after ``number``."""
        k = bisect_right(self._i_numbers, number)
        return self.i_frames[k] if k < len(self.i_frames) else None


def _encode_index(frame_count: int, i_frames: list[tuple[int, int]], record_bytes: array,
                  payload_bytes: array) -> bytes:
    out = bytearray((INDEX_MARKER,))
    _put_varint(out, frame_count)
    _put_varint(out, len(i_frames))
    previous_number = previous_offset = 0
    for number, offset in i_frames:
        _put_varint(out, number - previous_number)
        _put_varint(out, offset - previous_offset)
        previous_number, previous_offset = number, offset
    for size, payload in zip(record_bytes, payload_bytes):
        _put_varint(out, size)
        _put_varint(out, payload)
    out += struct.pack(">I", zlib.crc32(out))
    return bytes(out)


# -- writing ----------------------------------------------------------------------------
class VideoWriter(CloseOrAbort):
    """Writes a video stream frame by frame; only the frame being written is held in memory.

    Use it as a context manager. Given a path, it writes a temporary file next to it and
    renames it into place on :meth:`close`; leaving the ``with`` block by an exception (or
    :meth:`abort`) deletes the temporary file, so no half-written stream is ever left.
    Given an open binary file, it writes to it as it goes and never closes it."""

    def __init__(self, target: Union[str, os.PathLike, BinaryIO], header: VideoHeader) -> None:
        if not isinstance(header, VideoHeader):
            raise LicodecError(f"VideoWriter needs a VideoHeader, got {type(header).__name__}")
        self.header = header
        self._path = self._temp_path = None
        self._closed = False
        if isinstance(target, (str, os.PathLike)):
            path = os.fspath(target)
            folder = os.path.dirname(os.path.abspath(path))
            fd, temp_path = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".part")
            self._file = os.fdopen(fd, "wb")
            self._path, self._temp_path = path, temp_path
        else:
            self._file = target
        self._offset = 0
        self._i_frames: list[tuple[int, int]] = []
        self._record_bytes, self._payload_bytes = array("q"), array("q")
        with self._abort_on_error():
            self._emit(header.to_bytes())

    @property
    def frames_written(self) -> int:
        return len(self._record_bytes)

    def write(self, record: FrameRecord) -> None:
        """Append the next frame. A record out of order, a P-frame where an I-frame is due or
        bad sub-streams raise :class:`LicodecError` and leave the writer as it was."""
        self._check_open()
        refusal = _record_refusal(record, self.frames_written, self.header)
        if refusal:
            raise LicodecError(f"cannot write frame {getattr(record, 'number', '?')}: {refusal}")
        data = _encode_record(record)
        with self._abort_on_error():
            self._emit(data)
        if record.frame_type == "I":
            self._i_frames.append((record.number, self._offset - len(data)))
        self._record_bytes.append(len(data))
        self._payload_bytes.append(record.payload_bytes)

    def close(self) -> None:
        """Write the index and footer and, for a path, move the file into place. If that fails
        (or fewer frames than the header declares were written), nothing is left behind."""
        if self._closed:
            return
        with self._abort_on_error():
            declared = self.header.frame_count
            if declared and self.frames_written != declared:
                raise LicodecError(f"the header declares {declared} frames but {self.frames_written} were written")
            index_offset = self._offset
            self._emit(_encode_index(self.frames_written, self._i_frames, self._record_bytes, self._payload_bytes))
            self._emit(FOOTER.pack(index_offset, FOOTER_MAGIC))
            self._file.flush()
            if self._path is not None:
                os.fsync(self._file.fileno())
                self._file.close()
                os.replace(self._temp_path, self._path)
            self._closed = True

    def abort(self) -> None:
        """Give up: delete the temporary file (a caller's open file keeps what was written)."""
        if self._closed:
            return
        self._closed = True
        if self._path is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            with contextlib.suppress(OSError):
                os.unlink(self._temp_path)

    @contextlib.contextmanager
    def _abort_on_error(self):
        try:
            yield
        except BaseException:
            self.abort()
            raise

    def _emit(self, data: bytes) -> None:
        self._file.write(data)
        self._offset += len(data)

    def _check_open(self) -> None:
        if self._closed:
            raise LicodecError("this VideoWriter is closed")

    def __del__(self) -> None:
        if getattr(self, "_path", None) is not None and not getattr(self, "_closed", True):
            self.abort()


# -- reading ----------------------------------------------------------------------------
class VideoReader:
    """Reads a video stream from a path (memory-mapped) or from bytes.

    ``header`` is parsed strictly. ``index`` comes from the footer; when the footer or the
    index is damaged it is rebuilt by scanning the records, ``index_rebuilt`` is True and
    ``index_problem`` says what was wrong. :meth:`records` yields the frames."""

    def __init__(self, source: Union[str, os.PathLike, bytes, bytearray, memoryview]) -> None:
        self._closed = False
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
        elif isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                empty = os.fstat(f.fileno()).st_size == 0
                data = b"" if empty else mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        else:
            raise LicodecError(f"VideoReader reads a path or bytes, not {type(source).__name__}")
        self._data, self._size, self._view = data, len(data), memoryview(data)
        try:
            self.header, self._records_start = _parse_header(data, self._size)
            try:
                self.index, self._records_end = self._index_from_footer()
                self.index_problem: str | None = None
            except BitstreamError as problem:
                self.index, note = self._index_from_scan()
                self._records_end = self._size
                self.index_problem = f"{problem}; the index was rebuilt by scanning the records{note}"
        except BaseException:
            self.close()
            raise

    @property
    def index_rebuilt(self) -> bool:
        return self.index_problem is not None

    @property
    def frame_count(self) -> int:
        return self.index.frame_count

    def records(self, start: int = 0) -> Iterator[Union[FrameRecord, DamagedFrame]]:
        """Every frame from the I-frame at or before ``start`` to the end, in order, exactly one
        item per frame number: a :class:`FrameRecord`, or a :class:`DamagedFrame` when the record
        is damaged or missing or an earlier frame it depends on is; after a damaged frame,
        the next item that is a record is the next I-frame. The frames before ``start`` are
        the references a decoder needs to reach it."""
        if not isinstance(start, int) or start < 0:
            raise LicodecError(f"start must be a frame number, not {start!r}")
        count, period = self.index.frame_count, self.header.i_period
        if start >= count:
            return
        number = start - start % period  # an I-frame is due there
        known = self.index.i_frame_at_or_before(start)
        if known is not None and known[0] > number:
            number = known[0]  # a later, extra I-frame
        must_be_intra = True
        while number < count:
            outcome = self._frame(number, must_be_intra)
            if isinstance(outcome, FrameRecord):
                yield outcome
                number, must_be_intra = number + 1, False
                continue
            yield DamagedFrame(number, outcome)
            resume = self.index.i_frame_after(number)
            stop = resume[0] if resume is not None else count
            for lost in range(number + 1, stop):
                yield DamagedFrame(lost, f"it depends on frame {number}, which is damaged")
            number, must_be_intra = stop, True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if hasattr(self, "_view"):
            self._view.release()
        if isinstance(getattr(self, "_data", None), mmap.mmap):
            self._data.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- one record ---------------------------------------------------------------------
    def _frame(self, number: int, must_be_intra: bool) -> Union[FrameRecord, str]:
        """Frame ``number``'s record, or why it cannot be decoded."""
        if self._closed:
            raise LicodecError("this VideoReader is closed")
        entry = self.index.entry(number)
        if entry is None:
            return f"frame {number}'s record was not found"
        try:
            record, _ = self._record_at(entry.offset, self._records_end)
        except BitstreamError as problem:
            return str(problem)
        if record.number != number:
            return f"the record at byte {entry.offset} is frame {record.number}, not frame {number}"
        if record.frame_type != "I" and (must_be_intra or number % self.header.i_period == 0):
            return f"frame {number} should be an I-frame but its record is a {record.frame_type}-frame"
        return record

    def _locate_record(self, pos: int, end: int) -> tuple[str, int, int, int]:
        """A record's framing at ``pos``: (type, number, body start, body end), unchecked by CRC."""
        r = _Reader(self._data, end)
        r.pos = pos
        if r.take(1, "record marker")[0] != RECORD_MARKER:
            raise BitstreamError(f"there is no frame record at byte {pos}")
        kind = r.take(1, "frame type")
        if kind not in (b"I", b"P"):
            raise BitstreamError(f"the record at byte {pos} has an unknown frame type {kind!r}")
        number = r.varint("frame number")
        length = r.varint("record length")
        if number >= MAX_FRAMES:
            raise BitstreamError(f"the record at byte {pos} claims an absurd frame number {number}")
        if length > end - r.pos - 4:
            raise BitstreamError(f"the record at byte {pos} claims {length} bytes, more than the stream has left")
        return kind.decode("ascii"), number, r.pos, r.pos + length

    def _record_at(self, pos: int, end: int) -> tuple[FrameRecord, int]:
        """The intact record at ``pos`` and its size in bytes; BitstreamError if it is damaged."""
        kind, number, body_start, body_end = self._locate_record(pos, end)
        (crc,) = struct.unpack(">I", self._data[body_end:body_end + 4])
        if zlib.crc32(self._view[pos:body_end]) != crc:
            raise BitstreamError(f"the record at byte {pos} is corrupted (CRC-32 mismatch)")
        streams = _parse_body(self._data, body_start, body_end)
        return FrameRecord(kind, number, streams), body_end + 4 - pos

    # -- the index --------------------------------------------------------------------
    def _index_from_footer(self) -> tuple[VideoIndex, int]:
        """The index the footer points to, checked against itself, the header and the file."""
        data, size, first = self._data, self._size, self._records_start
        if size - first < FOOTER.size + 7:
            raise BitstreamError("the stream has no footer (truncated, or its writer was not closed)")
        index_offset, magic = FOOTER.unpack(data[size - FOOTER.size:size])
        index_end = size - FOOTER.size - 4
        if magic != FOOTER_MAGIC:
            raise BitstreamError("the stream has no footer (truncated, or its writer was not closed)")
        if not first <= index_offset < index_end:
            raise BitstreamError(f"the footer points to byte {index_offset}, outside the stream")
        (crc,) = struct.unpack(">I", data[index_end:index_end + 4])
        if zlib.crc32(self._view[index_offset:index_end]) != crc:
            raise BitstreamError("the index is corrupted (CRC-32 mismatch)")
        r = _Reader(data, index_end)
        r.pos = index_offset
        if r.take(1, "index marker")[0] != INDEX_MARKER:
            raise BitstreamError("the footer does not point to an index")
        count = r.varint("index frame count")
        declared = self.header.frame_count
        if count > MAX_FRAMES or (declared and count != declared):
            raise BitstreamError(f"the index lists {count} frames but the header declares {declared}")
        i_count = r.varint("index I-frame count")
        if i_count > count or 2 * (i_count + count) > index_end - r.pos:
            raise BitstreamError(f"the index is too short for {count} frames and {i_count} I-frames")
        i_frames, number, offset = [], 0, 0
        for k in range(i_count):
            step = r.varint("I-frame number")
            number, offset = number + step, offset + r.varint("I-frame offset")
            if (k and not step) or number >= count:
                raise BitstreamError("the index lists I-frames out of order")
            i_frames.append((number, offset))
        record_bytes, payload_bytes = array("q"), array("q")
        for _ in range(count):
            size_of_record, payload = r.varint("record size"), r.varint("payload size")
            if size_of_record < MIN_RECORD_BYTES or payload > size_of_record:
                raise BitstreamError("the index lists an impossible record size")
            record_bytes.append(size_of_record)
            payload_bytes.append(payload)
        if r.pos != index_end:
            raise BitstreamError(f"the index has {index_end - r.pos} unexplained bytes")
        offsets = array("q", accumulate(record_bytes, initial=first))
        if offsets.pop() != index_offset:
            raise BitstreamError("the index's record sizes do not add up to the records")
        if any(offsets[n] != o for n, o in i_frames):
            raise BitstreamError("the index's I-frame offsets disagree with its record sizes")
        i_numbers = {n for n, _ in i_frames}
        if any(n not in i_numbers for n in range(0, count, self.header.i_period)):
            raise BitstreamError("the index misses an I-frame the I-period requires")
        types = bytearray(b"P" * count)
        for n in i_numbers:
            types[n] = ord("I")
        return VideoIndex(count, array("q", range(count)), bytes(types), offsets, record_bytes,
                          payload_bytes), index_offset

    def _index_from_scan(self) -> tuple[VideoIndex, str]:
        """An index of the intact records found by scanning for a marker whose record's CRC-32
        holds, and a note on what the scan could not do. Candidates are checked cheaply
        first; the bytes it CRCs are capped at a few times the file, so it cannot crawl."""
        data, size, period = self._data, self._size, self.header.i_period
        limit = self.header.frame_count or MAX_FRAMES
        budget = 4 * size + (16 << 20)
        numbers, offsets, record_bytes, payload_bytes = (array("q") for _ in range(4))
        types = bytearray()
        marker, pos, last, note = bytes((RECORD_MARKER,)), self._records_start, -1, ""
        while (pos := data.find(marker, pos, size)) >= 0:
            try:
                kind, number, _, body_end = self._locate_record(pos, size)
            except BitstreamError:
                pos += 1
                continue
            if not (last < number < limit and (kind == "I" or number % period)):
                pos += 1  # not a record that can follow the last one found
                continue
            if body_end - pos > budget:
                note = f"; it gave up at byte {pos} (too much damage to search)"
                break
            budget -= body_end - pos
            try:
                record, record_size = self._record_at(pos, size)
            except BitstreamError:
                pos += 1
                continue
            numbers.append(number)
            types.append(ord(kind))
            offsets.append(pos)
            record_bytes.append(record_size)
            payload_bytes.append(record.payload_bytes)
            last, pos = number, pos + record_size
        count = last + 1
        if self.header.frame_count:
            # Believe the header's count of frames lost at the end only as far as the file's
            # size allows, so a forged count cannot make a small file list millions of frames.
            count = min(self.header.frame_count, max(count, size))
        return VideoIndex(count, numbers, bytes(types), offsets, record_bytes, payload_bytes), note


def describe(reader: VideoReader) -> list[dict]:
    """One dict per frame, from the index: number, type ("I", "P", or "?" for a frame a recovery
    scan did not find), bytes (its whole record) and bits (its sub-streams, the frame's rate).
    Damage inside a record shows only when :meth:`VideoReader.records` reads it."""
    frames = []
    for number in range(reader.index.frame_count):
        entry = reader.index.entry(number)
        if entry is None:
            frames.append({"number": number, "type": "?", "bytes": 0, "bits": 0})
        else:
            frames.append({"number": number, "type": entry.frame_type, "bytes": entry.record_bytes,
                           "bits": entry.payload_bits})
    return frames
