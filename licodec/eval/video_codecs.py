"""What the video evaluation runs: licodec's learned video codec, licodec image codecs on every
frame (all-intra), and the x264/x265 anchors, behind one interface.

A :class:`VideoEvalCodec` codes a clip (a list of :class:`~licodec.video.io.Frame`) at one quality
with a given I-period into real bytes and decodes them back, timing both; the result is a
:class:`CodedClip`. Codec specs, as typed after ``licodec eval --video ... -c``:

==========================  ====================================================================
``video-dvc``               a registered video codec with its shipped weights (or ``video-dcvc``)
``video-dvc:eN``            the same encoded at effort N (0-9: refined I-frame and residual latents)
``LABEL=DIR``               a video codec's weights in folder DIR (``licodec export`` of a run)
``intra:NAME``              image codec NAME (or ``intra:LABEL=DIR``, ``intra:NAME:eN``) on every
                            frame through :mod:`licodec.api`; every frame an I-frame
``x264`` ``x265``           the anchors of :mod:`licodec.eval.video_anchors` (quality = QP)
``x264-zl`` ``x265-zl``     the same with ``-tune zerolatency``
==========================  ====================================================================
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from licodec.errors import LicodecError
from licodec.eval.video_anchors import VIDEO_ANCHORS, X26xAnchor
from licodec.video.io import Frame

DEFAULT_LEARNED_QUALITIES = (2.0, 4.0, 6.0, 8.0)
"""Default sweep of licodec codecs (video and all-intra): four points over the 1-8 range."""


@dataclass
class CodedClip:
    """A clip through one codec at one quality.

    sequence_bytes: everything stored for the clip (the whole ``.lic`` video with its header
    and index; the whole x26x elementary stream; the sum of the all-intra ``.lic`` images).
    frame_types / frame_bits: per frame in display order, its type (``I``/``P``) and the bits of
    its own record (a ``.lic`` video's frame payload; an access unit; one image file).
    decoded: per frame ``(H, W, 3)`` uint8 RGB or :class:`~licodec.video.color.YUV420`, as the codec outputs it.
    encode_seconds / decode_seconds: wall time of coding the whole clip (frames already in memory).
    """

    sequence_bytes: int
    frame_types: list[str]
    frame_bits: list[int]
    decoded: list
    encode_seconds: float
    decode_seconds: float


class VideoEvalCodec(ABC):
    """One codec as the video runner sees it. ``name`` as typed (the LABEL of ``LABEL=DIR``),
    ``label`` for curves and plots, ``qualities`` its default sweep, ``knob`` what a quality is."""

    name: str
    label: str
    qualities: tuple[float, ...]
    knob: str = "q"

    @abstractmethod
    def version(self) -> str:
        """Identifies the exact coder (weights hash, ffmpeg build and options); results of
        another version are not reused."""

    @abstractmethod
    def check_quality(self, quality: float) -> None:
        """Raise :class:`LicodecError` for a setting this codec does not take."""

    @abstractmethod
    def code(self, frames: list[Frame], quality: float, i_period: int, fps: Fraction) -> CodedClip:
        """Encode ``frames`` at ``quality`` with an I-frame every ``i_period`` frames, decode, time both."""


class LearnedVideoCodec(VideoEvalCodec):
    """A licodec video codec (:mod:`licodec.video.coding`): one ``.lic`` video per clip."""

    def __init__(self, name: str, label: str, model: str, weights_dir: str = "", effort: int = 0) -> None:
        self.name, self.label, self.model, self.weights_dir = name, label, model, weights_dir
        self.effort = effort
        self.qualities = DEFAULT_LEARNED_QUALITIES
        self.codec  # loads now: a missing or foreign weights folder fails before any work

    @property
    def codec(self):
        from licodec.video.coding import load_video_codec

        try:
            return load_video_codec(self.model, self.weights_dir or None)
        except LicodecError as e:
            if "image codec" in str(e):
                raise LicodecError(f"{self.name} is an image codec; for an all-intra curve use intra:{self.name}")
            raise

    def version(self) -> str:
        c = self.codec
        return (f"weights {c.weights_sha256}, intra {c.config.intra} {c.config.intra_weights}"
                + (f", effort {self.effort}" if self.effort else ""))

    def check_quality(self, quality: float) -> None:
        self.codec.check_quality(quality)

    def code(self, frames, quality, i_period, fps) -> CodedClip:
        from licodec.video import coding

        codec = self.codec
        stats: list[dict] = []
        rgbs = [np.require(f.rgb(), requirements="W") for f in frames]  # torch wants writable arrays
        t0 = time.perf_counter()
        data = b"".join(coding.compress(rgbs, quality, fps=fps, i_period=i_period, codec=codec,
                                        frame_count=len(frames), stats=stats, effort=self.effort))
        t1 = time.perf_counter()
        decoded = list(coding.decompress(data, codec=codec))
        t2 = time.perf_counter()
        damaged = [d for d in decoded if d.rgb is None]
        if damaged or len(decoded) != len(frames):
            why = damaged[0].damage if damaged else f"{len(decoded)} frames decoded of {len(frames)}"
            raise LicodecError(f"{self.name} did not decode its own file ({why})")
        return CodedClip(len(data), [s["type"] for s in stats], [8 * s["bytes"] for s in stats],
                         [d.rgb for d in decoded], t1 - t0, t2 - t1)


class AllIntraCodec(VideoEvalCodec):
    """A licodec image codec on every frame (:class:`~licodec.eval.codecs.EvalCodec`), each frame one
    ``.lic`` image; the I-period does not apply."""

    def __init__(self, spec: str) -> None:
        from licodec.eval.codecs import resolve_codec

        self.image = resolve_codec(spec)
        if self.image.kind != "licodec":
            raise LicodecError(f"intra:{spec}: all-intra takes a licodec image codec; {spec} is a classic anchor")
        if getattr(self.image._codec(), "objective", "") == "video":
            raise LicodecError(f"intra:{spec}: {self.image.model} is a video codec; name it without intra:")
        self.name, self.label = f"intra:{self.image.name}", f"{self.image.label} all-intra"
        self.qualities = DEFAULT_LEARNED_QUALITIES

    def version(self) -> str:
        return f"all-intra {self.image.version()}"

    def check_quality(self, quality: float) -> None:
        self.image.check_quality(quality)

    def code(self, frames, quality, i_period, fps) -> CodedClip:
        t0 = time.perf_counter()
        files = [self.image.encode(f.rgb(), quality) for f in frames]
        t1 = time.perf_counter()
        decoded = [self.image.decode(data) for data in files]
        t2 = time.perf_counter()
        return CodedClip(sum(len(d) for d in files), ["I"] * len(files), [8 * len(d) for d in files], decoded,
                         t1 - t0, t2 - t1)


class AnchorCodec(VideoEvalCodec):
    """x264 / x265 by QP on the source's YUV 4:2:0 (:mod:`licodec.eval.video_anchors`)."""

    knob = "QP"

    def __init__(self, anchor: X26xAnchor) -> None:
        self.anchor = anchor
        self.name, self.label, self.qualities = anchor.name, anchor.label, anchor.qps

    def version(self) -> str:
        return self.anchor.version()

    def check_quality(self, quality: float) -> None:
        self.anchor.check_quality(quality)

    def code(self, frames, quality, i_period, fps) -> CodedClip:
        planes = [f.yuv() for f in frames]
        t0 = time.perf_counter()
        stream = self.anchor.encode(planes, quality, i_period, fps)
        t1 = time.perf_counter()
        decoded, types = self.anchor.decode(stream.data, planes[0].width, planes[0].height)
        t2 = time.perf_counter()
        if len(decoded) != len(frames):
            raise LicodecError(f"{self.name} decoded {len(decoded)} frames of {len(frames)}")
        return CodedClip(len(stream.data), types, [8 * b for b in stream.frame_bytes], decoded, t1 - t0, t2 - t1)


def resolve_video_codec(spec: str) -> VideoEvalCodec:
    """The codec a spec names (see the module docstring); unknown or unusable specs raise
    :class:`LicodecError` with one line."""
    if spec in VIDEO_ANCHORS:
        return AnchorCodec(VIDEO_ANCHORS[spec])
    if spec.startswith("intra:"):
        return AllIntraCodec(spec[len("intra:"):])
    from licodec.eval.codecs import is_valid_label, split_effort

    effort_spec = split_effort(spec)
    if effort_spec:
        from licodec.codec.refine import MAX_EFFORT

        base, effort = resolve_video_codec(effort_spec[0]), effort_spec[1]
        if not isinstance(base, LearnedVideoCodec) or effort > MAX_EFFORT:
            raise LicodecError(f"{spec!r}: ':eN' takes a licodec video codec and an effort from 0 to {MAX_EFFORT}")
        return LearnedVideoCodec(f"{base.name}:e{effort}", f"{base.label} effort {effort}", base.model,
                                 base.weights_dir, effort)
    if "=" in spec:
        from licodec.zoo.registry import read_weights_config

        label, weights_dir = spec.split("=", 1)
        if not is_valid_label(label):
            raise LicodecError(f"{spec!r}: the label before '=' must be 1-64 letters, digits, '.', '_' or '-'")
        if not Path(weights_dir).is_dir():
            raise LicodecError(f"{spec!r}: {weights_dir} is not a weights folder")
        model = read_weights_config(Path(weights_dir)).get("codec", "?")
        return LearnedVideoCodec(label, f"licodec {model} ({label})", model, weights_dir)
    from licodec.zoo import list_models

    if spec in list_models():
        return LearnedVideoCodec(spec, f"licodec {spec}", spec)
    raise LicodecError(f"unknown video codec {spec!r} (licodec video codecs by name or LABEL=DIR, "
                       f"intra:IMAGE-CODEC, or {', '.join(VIDEO_ANCHORS)})")

