"""H.264 (x264) and HEVC (x265) anchors for video evaluation, through imageio-ffmpeg's static ffmpeg.

Everything runs through pipes (no temporary file): raw ``yuv420p`` frames go to ffmpeg's stdin,
the elementary stream (Annex B, ``-f h264`` / ``-f hevc``) comes back on stdout, and is decoded
back to ``yuv420p`` frames the same way. The stream's bytes are the rate: bits per frame are
the sizes of its access units as ffmpeg's parser splits them (``-c copy -f framecrc``), which
sum to the stream's size exactly (parameter sets ride in the first I-frame's unit).

Settings (the low-delay configuration of learned video coding papers, by constant QP):

- ``-preset medium``, no B-frames (``-bf 0``), a closed GOP of exactly the I-period: x264
  ``-g N -keyint_min N -sc_threshold 0``; x265 ``-x265-params keyint=N:min-keyint=N:scenecut=0:
  bframes=0:open-gop=0`` (every I-frame an IDR, so each GOP decodes alone, like licodec's).
- Rate by QP (``-qp``; P-frames at that QP, x264/x265 put I-frames about 3 below it).
- One encoder thread (``-threads 1``; x265 ``pools=1:frame-threads=1``): frame threads change
  the bitstream, so one thread makes the anchor reproducible on any machine.
- SEI NAL units are dropped from the stream (``-bsf:v filter_units=remove_types=...``): they
  carry the encoder's option string (about 550 bytes for x264), metadata no decoder needs.
- ``-zl`` variants add ``-tune zerolatency`` (the DVC-era convention). With QP rate control,
  no B-frames and one thread it changes almost nothing (x264: one VUI flag; x265: nothing).

:data:`VIDEO_ANCHORS` holds ``x264``, ``x265``, ``x264-zl`` and ``x265-zl``.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Sequence

from licodec.errors import LicodecError
from licodec.video.color import YUV420, frame_bytes

DEFAULT_QPS = (22.0, 27.0, 32.0, 37.0, 42.0)
"""The usual four CTC points plus 42, so the curves reach the low rates of learned codecs."""

QP_RANGE = (0, 51)
_SHOWINFO = re.compile(r"Parsed_showinfo.*?\bn:\s*(\d+)\b.*?\btype:(\S)")


def ffmpeg_exe() -> str:
    """Path of the bundled static ffmpeg (imageio-ffmpeg)."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as e:  # the package missing, or its binary
        raise LicodecError(f"the x264/x265 anchors need imageio-ffmpeg's ffmpeg ({e})") from None


def _complaint(stderr: bytes) -> str:
    """ffmpeg's most telling line: the first that says "error" or "invalid", else the last (without
    the ``[module @ 0x...]`` prefixes, the progress line and the generic "Conversion failed!")."""
    lines = [re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip() for line in stderr.decode(errors="replace").splitlines()]
    lines = [line for line in lines if line and line != "Conversion failed!" and not line.startswith("frame=")]
    telling = [line for line in lines if "rror" in line or "nvalid" in line]
    return (telling or lines or ["no message"])[0 if telling else -1]


def run_ffmpeg(args: list[str], chunks: Iterable[bytes], what: str) -> tuple[bytes, bytes]:
    """Run ``ffmpeg ARGS`` feeding ``chunks`` to its stdin (from a thread, so a large input never
    deadlocks against a full stdout pipe); returns ``(stdout, stderr)``. A non-zero exit raises
    :class:`LicodecError` naming ``what`` and ffmpeg's last line."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostats", *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stderr: list[bytes] = []

    def feed() -> None:
        try:
            for chunk in chunks:
                proc.stdin.write(chunk)
        except (BrokenPipeError, OSError):
            pass  # ffmpeg stopped reading: its exit status says why
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    threads = [threading.Thread(target=feed, daemon=True),
               threading.Thread(target=lambda: stderr.append(proc.stderr.read()), daemon=True)]
    for t in threads:
        t.start()
    try:
        stdout = proc.stdout.read()
    finally:
        proc.wait()
        for t in threads:
            t.join()
    if proc.returncode != 0:
        raise LicodecError(f"{what}: ffmpeg failed ({_complaint(b''.join(stderr))})")
    return stdout, b"".join(stderr)


@dataclass(frozen=True)
class EncodedStream:
    """An anchor's output: ``data`` the elementary stream; ``frame_bytes`` the size of each frame's
    access unit in coding order (= display order, no B-frames), summing to ``len(data)``."""

    data: bytes
    frame_bytes: list[int]


@dataclass(frozen=True)
class X26xAnchor:
    """One ffmpeg encoder configuration (see the module docstring); ``qps`` is its default sweep."""

    name: str
    label: str
    encoder: str  # libx264 or libx265
    stream_format: str  # ffmpeg's raw elementary stream format: h264 or hevc
    sei_nal_types: str  # NAL unit types of SEI messages, as filter_units takes them
    zerolatency: bool = False
    qps: tuple[float, ...] = DEFAULT_QPS

    def check_quality(self, qp: float) -> None:
        lo, hi = QP_RANGE
        if qp != int(qp) or not lo <= qp <= hi:
            raise LicodecError(f"{self.name}: the QP must be a whole number from {lo} to {hi}, got {qp:g}")

    def encoder_args(self, qp: float, i_period: int) -> list[str]:
        """The encoder's ffmpeg options for one QP and I-period ``N`` (frames between I-frames)."""
        self.check_quality(qp)
        if int(i_period) < 1:
            raise LicodecError(f"the I-period must be at least 1, got {i_period}")
        return self._options(str(int(qp)), str(int(i_period)))

    def _options(self, qp: str, n: str) -> list[str]:
        args = ["-c:v", self.encoder, "-preset", "medium"]
        if self.zerolatency:
            args += ["-tune", "zerolatency"]
        if self.encoder == "libx264":
            args += ["-bf", "0", "-g", n, "-keyint_min", n, "-sc_threshold", "0", "-qp", qp, "-threads", "1"]
        else:
            params = [f"keyint={n}", f"min-keyint={n}", "scenecut=0", "bframes=0", "open-gop=0", "pools=1",
                      "frame-threads=1", "log-level=error"]
            args += ["-qp", qp, "-x265-params", ":".join(params)]
        return args + ["-bsf:v", f"filter_units=remove_types={self.sei_nal_types}", "-f", self.stream_format]

    def encode_command(self, qp: float, i_period: int, width: int, height: int, fps: Fraction) -> list[str]:
        """The whole ffmpeg command line of :meth:`encode` (without the executable's path)."""
        fps = Fraction(fps)
        return ["-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s:v", f"{width}x{height}",
                "-r", f"{fps.numerator}/{fps.denominator}", "-i", "pipe:0",
                *self.encoder_args(qp, i_period), "pipe:1"]

    def describe(self, qp: float = 32, i_period: int = 32, width: int = 416, height: int = 240,
                 fps: Fraction = Fraction(50)) -> str:
        """``ffmpeg ...`` as a shell line, for reports."""
        return "ffmpeg " + shlex.join(self.encode_command(qp, i_period, width, height, fps))

    def version(self) -> str:
        """The ffmpeg build (which pins x264/x265) and the options: rows of another version are redone."""
        return f"{ffmpeg_version()} {' '.join(self._options('QP', 'N'))}"

    def encode(self, frames: Sequence[YUV420], qp: float, i_period: int, fps: Fraction = Fraction(25)) -> EncodedStream:
        """Code ``frames`` (all ``W x H``, W and H even) at ``qp`` with an I-frame every ``i_period``."""
        if not frames:
            raise LicodecError(f"{self.name}: no frames to code")
        width, height = frames[0].width, frames[0].height
        if width % 2 or height % 2:
            raise LicodecError(f"{self.name} codes 4:2:0 frames with even sides; {width}x{height} is not")
        for i, f in enumerate(frames):
            if (f.width, f.height) != (width, height):
                raise LicodecError(f"frame {i} is {f.width}x{f.height}, the video {width}x{height}")
        data, _ = run_ffmpeg(self.encode_command(qp, i_period, width, height, fps), (f.tobytes() for f in frames),
                             f"{self.name} encoding")
        sizes = packet_sizes(data, self.stream_format, self.name)
        if len(sizes) != len(frames):
            raise LicodecError(f"{self.name} wrote {len(sizes)} frames for {len(frames)} input frames")
        return EncodedStream(data, sizes)

    def decode(self, data: bytes, width: int, height: int) -> tuple[list[YUV420], list[str]]:
        """Decode an elementary stream to ``yuv420p`` frames; returns them and each frame's
        picture type as ffmpeg's decoder reports it (``"I"``, ``"P"``, ``"B"``)."""
        args = ["-loglevel", "info", "-threads", "1", "-f", self.stream_format, "-i", "pipe:0",
                "-vf", "showinfo", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"]
        raw, log = run_ffmpeg(args, [data], f"{self.name} decoding")
        size = frame_bytes(width, height)
        if len(raw) % size:
            raise LicodecError(f"{self.name} decoding gave {len(raw)} bytes, not whole {width}x{height} frames")
        frames = [YUV420.frombytes(raw[i : i + size], width, height) for i in range(0, len(raw), size)]
        types = dict(_SHOWINFO.findall(log.decode(errors="replace")))
        return frames, [types.get(str(i), "?") for i in range(len(frames))]


def packet_sizes(data: bytes, stream_format: str, what: str = "stream") -> list[int]:
    """Bytes of each access unit of an elementary stream, as ffmpeg's parser splits it
    (``-c copy -f framecrc``: one line per packet, its size in the 5th column)."""
    out, _ = run_ffmpeg(["-loglevel", "error", "-f", stream_format, "-i", "pipe:0", "-map", "0:v:0", "-c", "copy",
                         "-f", "framecrc", "pipe:1"], [data], f"{what} packet sizes")
    sizes = []
    for line in out.decode().splitlines():
        if line and not line.startswith("#"):
            sizes.append(int(line.split(",")[4]))
    return sizes


_VERSION: list[str] = []


def ffmpeg_version() -> str:
    """``ffmpeg n9.0.2-...``: the first line of ``ffmpeg -version``, cut to the version."""
    if not _VERSION:
        done = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True)
        first = done.stdout.decode(errors="replace").splitlines()[:1] or ["ffmpeg ?"]
        _VERSION.append(" ".join(first[0].split()[:3]))
    return _VERSION[0]


VIDEO_ANCHORS: dict[str, X26xAnchor] = {a.name: a for a in (
    X26xAnchor("x264", "x264 (medium, low delay)", "libx264", "h264", "6"),
    X26xAnchor("x265", "x265 (medium, low delay)", "libx265", "hevc", "39|40"),
    X26xAnchor("x264-zl", "x264 (medium, zerolatency)", "libx264", "h264", "6", zerolatency=True),
    X26xAnchor("x265-zl", "x265 (medium, zerolatency)", "libx265", "hevc", "39|40", zerolatency=True),
)}


def get_video_anchor(name: str) -> X26xAnchor:
    try:
        return VIDEO_ANCHORS[name]
    except KeyError:
        raise LicodecError(f"unknown video anchor {name!r} (known: {', '.join(VIDEO_ANCHORS)})") from None
