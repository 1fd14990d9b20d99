"""Code whole videos: frames in, ``.lic`` video out, and back, streaming in bounded memory.

:func:`compress` takes an iterable of frames (:class:`~licodec.video.io.Frame` or ``(H, W, 3)``
uint8 RGB arrays) and yields the container's bytes piece by piece (header, one record per
frame, then index and footer), so a caller writes them as they come. :func:`decompress` takes
a file (path or bytes) and yields :class:`DecodedFrame` s, one per frame from ``start``; a
damaged frame comes out with ``rgb=None`` and its reason, and decoding resumes at the next
I-frame. At any time only the frame being coded and its reference are held.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Iterator

import numpy as np

from licodec.codec.refine import check_effort
from licodec.entropy import video_container as vc
from licodec.errors import BitstreamError, LicodecError, WeightsError
from licodec.video.io import Frame

DEFAULT_MODEL = "video-dvc"


@dataclass(frozen=True)
class DecodedFrame:
    """Frame ``number``: ``rgb`` ``(H, W, 3)`` uint8, or None when it could not be decoded
    (``damage`` says why: its record is damaged, or a frame it depends on is)."""

    number: int
    frame_type: str
    rgb: np.ndarray | None
    damage: str | None = None


def _rgb(frame) -> np.ndarray:
    rgb = frame.rgb() if isinstance(frame, Frame) else np.asarray(frame)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise LicodecError(f"frames must be (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    return rgb


def load_video_codec(name: str = DEFAULT_MODEL, weights_dir=None):
    """The registered video codec ``name`` with its shipped weights (or those in ``weights_dir``)."""
    from licodec.api import load

    codec = load(name, weights_dir) if weights_dir is not None else load(name)
    if getattr(codec, "objective", None) != "video":
        raise LicodecError(f"{name} is an image codec; video needs a video codec (e.g. {DEFAULT_MODEL})")
    return codec


def compress(frames: Iterable, quality: float, fps: Fraction | float | int = 25, model: str = DEFAULT_MODEL,
             i_period: int | None = None, frame_count: int = 0, pix_fmt: str = "rgb24", codec=None,
             stats: list | None = None, effort: int = 0) -> Iterator[bytes]:
    """Code ``frames`` (all of one size) at ``quality``; yields the ``.lic`` video's bytes.

    ``i_period``: an I-frame every that many frames (default: the codec's, 32).
    ``effort``: 0 (fastest) to 9, encode time spent refining the intra-coded latents
    (:meth:`~licodec.codec.video.VideoCodecBase.encode_frame`); decoding does not change.
    ``frame_count``: the number of frames if known (written in the header; 0: unknown).
    ``stats``: if a list, gets one dict per frame (number, type, bytes).
    """
    codec = codec or load_video_codec(model)
    q = float(np.float32(codec.check_quality(quality)))  # the header stores float32
    effort = check_effort(effort)
    period = codec.config.i_period if i_period is None else int(i_period)
    if period < 1:
        raise LicodecError(f"the I-period must be at least 1, got {i_period}")
    fps = Fraction(fps).limit_denominator(1 << 20)
    buffer = io.BytesIO()
    writer = None
    reference = None
    size = None
    from licodec.codec.video import frame_tensor

    try:
        for number, frame in enumerate(frames):
            rgb = _rgb(frame)
            if writer is None:
                size = rgb.shape[:2]
                header = vc.VideoHeader(codec_id=codec.codec_id, weights_sha256=codec.weights_sha256,
                                        intra_codec_id=codec.config.intra,
                                        intra_weights_sha256=codec.config.intra_weights, quality=q,
                                        width=size[1], height=size[0], fps_num=fps.numerator,
                                        fps_den=fps.denominator, frame_count=frame_count, i_period=period,
                                        pix_fmt=pix_fmt)
                writer = vc.VideoWriter(buffer, header)
            elif rgb.shape[:2] != size:
                raise LicodecError(f"frame {number} is {rgb.shape[1]}x{rgb.shape[0]}, the video {size[1]}x{size[0]}")
            intra = number % period == 0
            streams, reference = codec.encode_frame(frame_tensor(rgb), codec.frame_quality(q, number % period),
                                                    None if intra else reference, effort)
            record = vc.FrameRecord("I" if intra else "P", number, streams)
            writer.write(record)
            if stats is not None:
                stats.append({"number": number, "type": record.frame_type, "bytes": record.payload_bytes})
            yield _drain(buffer)
        if writer is None:
            raise LicodecError("no frames to code")
        writer.close()
        yield _drain(buffer)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise


def _drain(buffer: io.BytesIO) -> bytes:
    data = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return data


def open_coded(source) -> vc.VideoReader:
    """The container reader of a ``.lic`` video (path or bytes); BitstreamError if it is not one."""
    return vc.VideoReader(source)


def decompress(source, start: int = 0, stop: int | None = None, weights_dir=None,
               codec=None) -> Iterator[DecodedFrame]:
    """Decode frames ``start`` to ``stop`` (exclusive; None: the end) of a ``.lic`` video (path,
    bytes or an open :class:`~licodec.entropy.video_container.VideoReader`). Decoding starts at
    the I-frame at or before ``start``."""
    if start < 0 or (stop is not None and stop < start):
        raise LicodecError(f"bad frame range {start}:{'' if stop is None else stop}")
    reader = source if isinstance(source, vc.VideoReader) else vc.VideoReader(source)
    header = reader.header
    if codec is None:
        from licodec.zoo import get_entry

        get_entry(header.codec_id)  # an unknown codec: a clear error
        codec = load_video_codec(header.codec_id, weights_dir)
    if codec.weights_sha256 != header.weights_sha256:
        raise WeightsError(f"the file was written with {header.codec_id} weights {header.weights_sha256}, "
                           f"but the installed ones are {codec.weights_sha256}")
    if codec.config.intra != header.intra_codec_id or codec.config.intra_weights != header.intra_weights_sha256:
        raise WeightsError(f"the file's I-frames are {header.intra_codec_id} {header.intra_weights_sha256}, "
                           f"but this codec's are {codec.config.intra} {codec.config.intra_weights}")
    try:
        q = codec.check_quality(header.quality)
    except LicodecError as exc:
        raise BitstreamError(f"the video declares {exc}") from None
    size = (header.height, header.width)
    codec.check_frame_size(*size, error=BitstreamError)
    reference = None
    damaged_at = None
    for item in reader.records(start):
        if stop is not None and item.number >= stop:
            break
        if isinstance(item, vc.DamagedFrame):
            reference, damaged_at = None, item.number
            result = DecodedFrame(item.number, "?", None, item.reason)
        elif item.frame_type == "P" and reference is None:
            result = DecodedFrame(item.number, "P", None, f"it depends on frame {damaged_at}, which is damaged"
                                  if damaged_at is not None else "no reference frame precedes it")
        else:
            try:
                reference, shown = codec.decode_frame_and_show(
                    item.streams, codec.frame_quality(q, item.number % header.i_period),
                    None if item.frame_type == "I" else reference, size)
                result = DecodedFrame(item.number, item.frame_type, shown[0].permute(1, 2, 0).numpy().copy())
            except BitstreamError as exc:
                reference, damaged_at = None, item.number
                result = DecodedFrame(item.number, item.frame_type, None, str(exc))
        if item.number >= start:
            yield result
