"""The .lic video container: round trips, seeking, and damage that only ever comes out as
BitstreamError (a bad header) or DamagedFrame (a bad frame)."""

import io
import os
import random
from fractions import Fraction

import pytest

from licodec.entropy.video_container import (
    FORMAT_VERSION, MAGIC, MAX_FRAMES, DamagedFrame, FrameRecord, VideoHeader, VideoReader, VideoWriter,
    _encode_header, describe,
)
from licodec.errors import BitstreamError, LicodecError

PERIOD = 16


def make_header(**changes) -> VideoHeader:
    fields = dict(codec_id="video", intra_codec_id="hyperprior-vr", width=64, height=48, fps_num=30000,
                  fps_den=1001, frame_count=40, i_period=PERIOD, quality=2.5, weights_sha256="0123456789abcdef",
                  intra_weights_sha256="fedcba9876543210", pix_fmt="yuv420p")
    fields.update(changes)
    return VideoHeader(**fields)


def make_frames(count: int = 40, period: int = PERIOD, seed: int = 0, size: int = 120) -> list:
    rng = random.Random(seed)
    frames = []
    for number in range(count):
        kind = "I" if number % period == 0 else "P"
        names = ("z", "y") if kind == "I" else ("motion_z", "motion_y", "z", "y")
        frames.append(FrameRecord(kind, number, {name: rng.randbytes(rng.randrange(size)) for name in names}))
    return frames


def encode(header: VideoHeader, frames: list) -> bytes:
    buffer = io.BytesIO()
    with VideoWriter(buffer, header) as writer:
        for frame in frames:
            writer.write(frame)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def video():
    frames = make_frames()
    return frames, encode(make_header(), frames)


def record_span(data: bytes, number: int) -> tuple[int, int]:
    entry = VideoReader(data).index.entry(number)
    return entry.offset, entry.offset + entry.record_bytes


def header_size(data: bytes) -> int:
    return record_span(data, 0)[0]


def assert_damage_at(items: list, frames: list, damaged: int, period: int = PERIOD) -> None:
    """Frames before ``damaged`` intact, ``damaged`` up to the next I-frame damaged, the rest intact."""
    resume = min(len(frames), (damaged // period + 1) * period)
    assert [item.number for item in items] == list(range(len(frames)))
    for item in items:
        if damaged <= item.number < resume:
            assert isinstance(item, DamagedFrame), item.number
            assert item.reason
        else:
            assert item == frames[item.number]


# -- round trip and seeking -------------------------------------------------------------
def test_round_trip_through_a_file_and_through_bytes(tmp_path, video):
    frames, data = video
    path = tmp_path / "clip.lic"
    with VideoWriter(path, make_header()) as writer:
        for frame in frames:
            writer.write(frame)
    assert os.listdir(tmp_path) == ["clip.lic"]  # the temporary file was renamed into place
    assert path.read_bytes() == data and data.startswith(MAGIC) and data[4] == FORMAT_VERSION
    for source in (path, str(path), data, bytearray(data)):
        with VideoReader(source) as reader:
            assert reader.header == make_header() and reader.header.fps == Fraction(30000, 1001)
            assert not reader.index_rebuilt and reader.frame_count == 40
            assert list(reader.records()) == frames
    info = describe(VideoReader(data))
    assert [row["number"] for row in info] == list(range(40))
    assert [row["type"] for row in info] == [f.frame_type for f in frames]
    assert [row["bits"] for row in info] == [8 * f.payload_bytes for f in frames]
    assert sum(row["bytes"] for row in info) < len(data)


def test_seeking_to_frame_20_starts_at_the_i_frame_16(video):
    frames, data = video
    reader = VideoReader(data)
    number, offset = reader.index.i_frame_at_or_before(20)
    assert number == 16 and data[offset] == 0xFA and data[offset + 1:offset + 2] == b"I"
    assert [n for n, _ in reader.index.i_frames] == [0, 16, 32]
    assert list(reader.records(20)) == frames[16:]
    assert list(reader.records(32)) == frames[32:]
    assert list(reader.records(40)) == []
    with pytest.raises(LicodecError):
        list(reader.records(-1))


def test_an_extra_i_frame_is_a_seek_point_too():
    frames = make_frames(20)
    frames[5] = FrameRecord("I", 5, {"z": b"\x01", "y": b"\x02\x03"})
    reader = VideoReader(encode(make_header(frame_count=20), frames))
    assert [n for n, _ in reader.index.i_frames] == [0, 5, 16]
    assert list(reader.records(7)) == frames[5:]


def test_an_unknown_frame_count_is_taken_from_the_index(video):
    frames, _ = video
    reader = VideoReader(encode(make_header(frame_count=0), frames))
    assert reader.header.frame_count == 0 and reader.frame_count == 40 and not reader.index_rebuilt
    assert list(reader.records()) == frames
    empty = VideoReader(encode(make_header(frame_count=0), []))
    assert empty.frame_count == 0 and not empty.index_rebuilt and list(empty.records()) == []


# -- damage -----------------------------------------------------------------------------
@pytest.mark.parametrize("damaged", [0, 3, 15, 16, 21, 31, 32, 39])
def test_one_bad_byte_in_a_record_damages_that_frame_until_the_next_i_frame(video, damaged):
    frames, data = video
    start, end = record_span(data, damaged)
    positions = sorted({start, start + 1, start + 2, start + 3, (start + end) // 2, end - 5, end - 1}
                       | set(random.Random(damaged).sample(range(start, end), 8)))
    for pos in positions:
        for flip in (0x01, 0x80, 0xFF):
            corrupt = bytearray(data)
            corrupt[pos] ^= flip
            reader = VideoReader(bytes(corrupt))
            assert not reader.index_rebuilt
            assert_damage_at(list(reader.records()), frames, damaged)
            # The same damage with the footer gone: the scan for markers and CRCs resynchronises.
            corrupt[-1] ^= 0xFF
            reader = VideoReader(bytes(corrupt))
            assert reader.index_rebuilt and "footer" in reader.index_problem
            assert_damage_at(list(reader.records()), frames, damaged)


def test_one_bad_byte_in_the_header_raises_and_in_the_index_rebuilds_it(video):
    frames, data = video
    for pos in range(header_size(data)):
        corrupt = bytearray(data)
        corrupt[pos] ^= 0x21
        with pytest.raises(BitstreamError):
            VideoReader(bytes(corrupt))
    index_start = record_span(data, 39)[1]
    for pos in range(index_start, len(data)):
        corrupt = bytearray(data)
        corrupt[pos] ^= 0x10
        reader = VideoReader(bytes(corrupt))
        assert reader.index_rebuilt and reader.frame_count == 40
        assert reader.index.i_frames == VideoReader(data).index.i_frames
        assert list(reader.records()) == frames
        assert list(reader.records(20)) == frames[16:]


@pytest.mark.parametrize("declared", [6, 0])
def test_every_truncation_raises_or_reports_damage(declared):
    frames = make_frames(6, period=3, size=12)
    data = encode(make_header(frame_count=declared, i_period=3), frames)
    ends = [record_span(data, n)[1] for n in range(6)]
    for length in range(len(data)):
        try:
            reader = VideoReader(data[:length])
        except BitstreamError:
            assert length < header_size(data)
            continue
        assert reader.index_rebuilt
        items = list(reader.records())
        whole = [n for n in range(6) if ends[n] <= length]
        if declared:  # the lost frames at the end are reported
            assert [item.number for item in items] == list(range(6))
        else:  # nothing says how many frames there were
            assert [item.number for item in items] == whole
        for item in items:
            assert item == frames[item.number] if item.number in whole else isinstance(item, DamagedFrame)
        describe(reader)


def test_random_mutations_give_only_bitstream_errors_or_damaged_frames():
    frames = make_frames(24, period=8, size=60)
    data = encode(make_header(frame_count=24, i_period=8), frames)
    rng = random.Random(2024)
    outcomes = {"header": 0, "rebuilt": 0, "damaged": 0}
    for _ in range(300):
        corrupt = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 4))):
            pos = rng.randrange(len(corrupt) + 1)
            kind = rng.choice(("flip", "byte", "truncate", "insert", "delete", "duplicate", "marker"))
            if kind == "flip" and pos < len(corrupt):
                corrupt[pos] ^= 1 << rng.randrange(8)
            elif kind == "byte" and pos < len(corrupt):
                corrupt[pos] = rng.randrange(256)
            elif kind == "truncate":
                del corrupt[pos:]
            elif kind == "insert":
                corrupt[pos:pos] = rng.randbytes(rng.randrange(1, 40))
            elif kind == "delete":
                del corrupt[pos:pos + rng.randrange(1, 40)]
            elif kind == "duplicate":
                corrupt[pos:pos] = corrupt[pos:pos + rng.randrange(1, 200)]
            elif kind == "marker":
                corrupt[pos:pos] = b"\xfa" + rng.choice((b"I", b"P")) + rng.randbytes(rng.randrange(1, 12))
        try:
            reader = VideoReader(bytes(corrupt))
        except BitstreamError as error:
            assert "\n" not in str(error)
            outcomes["header"] += 1
            continue
        outcomes["rebuilt"] += reader.index_rebuilt
        assert reader.frame_count == 24
        for start in (0, rng.randrange(24)):
            items = list(reader.records(start))
            first = items[0].number if items else start
            assert [item.number for item in items] == list(range(first, 24)) and first <= start
            for item in items:
                assert isinstance(item, DamagedFrame) or item == frames[item.number]
            outcomes["damaged"] += any(isinstance(item, DamagedFrame) for item in items)
        assert len(describe(reader)) == 24
    assert all(outcomes.values())  # the mutations reached the header, the index and the records


@pytest.mark.parametrize("data", [b"", b"\x89LI", b"\x89PNG\r\n\x1a\n" + bytes(40), bytes(range(256))])
def test_foreign_input_says_wrong_magic(data):
    with pytest.raises(BitstreamError, match="not a licodec video stream"):
        VideoReader(data)


def test_an_image_bitstream_is_named_as_such(video):
    with pytest.raises(BitstreamError, match="image bitstream"):
        VideoReader(b"\x89LIC" + video[1][4:])


def test_a_newer_version_asks_for_an_upgrade(video):
    data = bytearray(video[1])
    data[4] = FORMAT_VERSION + 1
    with pytest.raises(BitstreamError, match="newer"):
        VideoReader(bytes(data))


def test_a_bad_header_crc_is_named(video):
    data = bytearray(video[1])
    data[6] ^= ord("v") ^ ord("w")  # the codec id's first letter: the header still parses
    with pytest.raises(BitstreamError, match="CRC"):
        VideoReader(bytes(data))


@pytest.mark.parametrize("change", [dict(width=0), dict(width=70000), dict(width=60000, height=60000),
                                    dict(i_period=0), dict(frame_count=MAX_FRAMES + 1), dict(fps_den=0),
                                    dict(pix_fmt="YUV 420")])
def test_absurd_header_values_are_rejected(video, change):
    fields = vars(make_header()) | change
    data = _encode_header(fields) + video[1][header_size(video[1]):]
    with pytest.raises(BitstreamError, match="declares"):
        VideoReader(data)
    with pytest.raises(LicodecError, match="bad video header"):
        make_header(**change)


def test_forged_sizes_allocate_nothing(video):
    head = video[1][:header_size(video[1])]
    huge_record = b"\xfaI\x00" + b"\xff" * 8 + b"\x7f" + bytes(20)  # a length of about 2**63
    reader = VideoReader(head + huge_record)
    assert reader.index_rebuilt
    items = list(reader.records())
    assert len(items) == 40 and all(isinstance(item, DamagedFrame) for item in items)
    # A valid header that declares ten million frames over an empty stream lists no more than the file holds.
    lying = _encode_header(vars(make_header(frame_count=MAX_FRAMES)))
    assert VideoReader(lying).frame_count <= len(lying)


# -- the writer -------------------------------------------------------------------------
def test_the_writer_refuses_a_p_frame_where_an_i_frame_is_due_and_frames_out_of_order(tmp_path):
    frames = make_frames(20)
    path = tmp_path / "clip.lic"
    with VideoWriter(path, make_header(frame_count=20)) as writer:
        with pytest.raises(LicodecError, match="I-frame"):
            writer.write(FrameRecord("P", 0, {"y": b"1"}))
        writer.write(frames[0])
        for wrong in (frames[0], frames[2], FrameRecord("B", 1, {}), FrameRecord("P", 1, {"bad name": b""})):
            with pytest.raises(LicodecError):
                writer.write(wrong)
        for frame in frames[1:16]:
            writer.write(frame)
        with pytest.raises(LicodecError, match="I-frame"):
            writer.write(FrameRecord("P", 16, {"y": b"1"}))
        for frame in frames[16:]:  # a refused record leaves the writer as it was
            writer.write(frame)
        with pytest.raises(LicodecError, match="declares only 20"):
            writer.write(FrameRecord("P", 20, {}))
    assert list(VideoReader(path).records()) == frames


def test_the_writer_leaves_no_file_when_an_exception_happens_before_close(tmp_path):
    path = tmp_path / "clip.lic"
    with pytest.raises(RuntimeError):
        with VideoWriter(path, make_header()) as writer:
            writer.write(make_frames(1)[0])
            raise RuntimeError("the encoder failed")
    assert os.listdir(tmp_path) == []
    with pytest.raises(LicodecError, match="declares 40 frames but 3"):
        with VideoWriter(path, make_header()) as writer:
            for frame in make_frames(3):
                writer.write(frame)
    assert os.listdir(tmp_path) == []
