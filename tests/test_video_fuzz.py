"""Fuzzed .lic videos: every file gives the library's error or reports damaged frames; nothing
else is raised, nothing hangs. Random byte damage is caught by the container's CRCs, so most
cases here are forged: records rewritten with valid CRCs around mutated sub-streams (bytes,
lengths, names, frame types) and headers with other sizes, qualities, periods or codecs.
The default run fuzzes 60 files; ``-m slow`` runs the issue's 1,000."""

import dataclasses

import numpy as np
import pytest
import torch

from licodec.entropy import video_container as vc
from licodec.errors import LicodecError
from licodec.video import coding
from test_video_codec import SMALL, VIDEO_MODELS, build, clip


@pytest.fixture(scope="module", params=VIDEO_MODELS)
def coded(request):
    torch.manual_seed(0)
    codec = build(request.param, **SMALL[request.param])
    data = b"".join(coding.compress(clip(4, 40, 56), 3.0, i_period=2, codec=codec))
    reader = vc.VideoReader(data)
    records = [r for r in reader.records()]
    return codec, data, reader.header, records


def _mutate_streams(streams: dict, rng: np.random.Generator) -> dict:
    streams = dict(streams)
    names = list(streams)
    kind = rng.integers(6)
    name = names[rng.integers(len(names))]
    payload = bytearray(streams[name])
    if kind == 0 and payload:  # flip bytes
        for _ in range(rng.integers(1, 8)):
            payload[rng.integers(len(payload))] ^= int(rng.integers(1, 256))
    elif kind == 1:  # truncate
        payload = payload[: rng.integers(0, len(payload) + 1)]
    elif kind == 2:  # extend with junk
        payload += rng.integers(0, 256, rng.integers(1, 400), dtype=np.uint8).tobytes()
    elif kind == 3:  # replace with junk of any length
        payload = bytearray(rng.integers(0, 256, rng.integers(0, 600), dtype=np.uint8).tobytes())
    elif kind == 4:  # drop a stream
        del streams[name]
        return streams
    else:  # rename or add
        streams["x" + name if rng.random() < 0.5 else name + "2"] = bytes(payload)
        return streams
    streams[name] = bytes(payload)
    return streams


def _forge(header, records, rng: np.random.Generator) -> bytes:
    """A video written with valid CRCs around forged content."""
    header_changes = {}
    if rng.random() < 0.3:
        sizes = [1, 7, 39, 41, 55, 57, 120, 2049, 5000]
        field, value = [("width", int(rng.choice(sizes))), ("height", int(rng.choice(sizes))),
                        ("quality", float(rng.choice([0.0, 0.5, 1.0, 7.99, 8.5, 100.0, -1.0]))),
                        ("i_period", int(rng.integers(1, 6))), ("codec_id", "hyperprior-ctx"),
                        ("intra_codec_id", "vqgan"), ("weights_sha256", "f" * 16),
                        ("frame_count", int(rng.integers(0, 10)))][rng.integers(8)]
        header_changes[field] = value
    header = dataclasses.replace(header, **header_changes)
    out = []
    for i, record in enumerate(records):
        if isinstance(record, vc.DamagedFrame):
            continue
        if rng.random() < 0.5:
            record = vc.FrameRecord(record.frame_type, record.number, _mutate_streams(record.streams, rng))
        if record.frame_type == "P" and rng.random() < 0.1:
            record = vc.FrameRecord("I", record.number, record.streams)  # a P-frame's streams read as an I-frame
        out.append(record)
    import io

    buffer = io.BytesIO()
    try:
        with vc.VideoWriter(buffer, header) as writer:
            for record in out:
                writer.write(record)
    except LicodecError:  # the writer refuses some forgeries (e.g. a P-frame where a new I-period wants an I)
        return b""
    return buffer.getvalue()


def _damage(data: bytes, rng: np.random.Generator) -> bytes:
    data = bytearray(data)
    kind = rng.integers(3)
    if kind == 0:
        for _ in range(rng.integers(1, 4)):
            data[rng.integers(len(data))] ^= int(rng.integers(1, 256))
    elif kind == 1:
        data = data[: rng.integers(0, len(data))]
    else:
        at = rng.integers(len(data))
        data[at:at] = rng.integers(0, 256, rng.integers(1, 64), dtype=np.uint8).tobytes()
    return bytes(data)


def _fuzz(coded, count: int, seed: int) -> dict:
    codec, data, header, records = coded
    rng = np.random.default_rng(seed)
    outcomes = {"error": 0, "damaged": 0, "clean": 0}
    for _ in range(count):
        sample = _forge(header, records, rng) if rng.random() < 0.7 else _damage(data, rng)
        if not sample:
            sample = _damage(data, rng)
        try:
            declared = vc.VideoReader(sample).header
            frames = list(coding.decompress(sample, codec=codec))
        except LicodecError as exc:  # BitstreamError and WeightsError are LicodecErrors
            assert str(exc) and "\n" not in str(exc)
            outcomes["error"] += 1
            continue
        for f in frames:
            assert (f.rgb is None) == (f.damage is not None)
            if f.rgb is not None:
                assert f.rgb.dtype == np.uint8 and f.rgb.shape == (declared.height, declared.width, 3)
        outcomes["damaged" if any(f.rgb is None for f in frames) else "clean"] += 1
    return outcomes


def test_fuzzed_videos_give_errors_or_damaged_frames(coded):
    outcomes = _fuzz(coded, 60, seed=1)
    assert outcomes["error"] > 0 and outcomes["damaged"] > 0


@pytest.mark.slow
def test_a_thousand_fuzzed_videos(coded):
    outcomes = _fuzz(coded, 1000, seed=2)
    print(outcomes)
    assert sum(outcomes.values()) == 1000
