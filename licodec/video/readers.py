"""Reading video frame by frame: :func:`open_video` and :class:`VideoReader` (the formats are
listed in :mod:`licodec.video.io`). Memory stays bounded by a frame or two; every malformed input
raises :class:`~licodec.errors.LicodecError` with one line naming the file and what is wrong."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from licodec.errors import LicodecError
from licodec.image_io import open_image
from licodec.video.color import YUV420, Matrix, frame_bytes
from licodec.video.frames import FpsLike, Frame, VideoInfo, check_size, fps_fraction

CONTAINER_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov")
DEFAULT_PNG_FPS = Fraction(25)
Y4M_CHROMA_420 = (None, "420", "420jpeg", "420paldv", "420mpeg2")
_Y4M_MAGIC = b"YUV4MPEG2"
_Y4M_MAX_LINE = 4096  # a header or FRAME line longer than this is taken as garbage


def _require_size(name: str, expected: tuple[int, int] | None, width: int, height: int) -> None:
    if expected is not None and tuple(expected) != (width, height):
        raise LicodecError(f"{name} is {width}x{height}, not the {expected[0]}x{expected[1]} asked for")


def _read_exact(f: BinaryIO, n: int, name: str, index: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise LicodecError(f"{name}: frame {index} is truncated ({len(data)} of {n} bytes)")
    return data


# ----------------------------------------------------------------------------- sources


class _Source(ABC):
    """One kind of input: its whole-file :class:`VideoInfo` and frames by index."""

    path: Path
    info: VideoInfo

    @abstractmethod
    def frames(self, wanted: range) -> Iterator[Frame]:
        """The frames whose indices are in ``wanted`` (ascending), read one at a time."""


class _Y4MSource(_Source):
    def __init__(self, path: Path, size, fps) -> None:
        self.path, name = path, str(path)
        with open(path, "rb") as f:
            header = f.readline(_Y4M_MAX_LINE)
            if not header.startswith(_Y4M_MAGIC + b" ") or not header.endswith(b"\n"):
                raise LicodecError(f"{name} is not a YUV4MPEG2 file (bad header)")
            params = self._parse_header(header, name)
            self.width, self.height = params["W"], params["H"]
            self.frame_size = frame_bytes(self.width, self.height)
            self.offsets = self._scan_frames(f, name)
        _require_size(name, size, self.width, self.height)
        rate = fps if fps is not None else params.get("F")
        if rate is None:
            raise LicodecError(f"{name} does not give its frame rate (F tag); pass fps=")
        self.full_range = params.get("range") == "FULL"
        chroma = params.get("C") or "420"
        self.info = VideoInfo(
            self.width, self.height, fps_fraction(rate, name), len(self.offsets), f"y4m C{chroma}"
        )

    @staticmethod
    def _parse_header(header: bytes, name: str) -> dict:
        params: dict = {}
        try:
            tokens = header[len(_Y4M_MAGIC) :].decode("ascii").split()
        except UnicodeDecodeError:
            raise LicodecError(f"{name}: bad YUV4MPEG2 header (not ASCII)") from None
        for token in tokens:
            tag, value = token[0], token[1:]
            if tag in "WH":
                if not value.isdigit() or int(value) == 0:
                    raise LicodecError(f"{name}: bad YUV4MPEG2 header ({token!r} is not a positive size)")
                params[tag] = int(value)
            elif tag == "F":
                match = re.fullmatch(r"(\d+):(\d+)", value)
                if not match:
                    raise LicodecError(f"{name}: bad YUV4MPEG2 header (frame rate {token!r} is not F<num>:<den>)")
                num, den = int(match[1]), int(match[2])
                if num and den:  # F0:0 means "unknown"
                    params["F"] = Fraction(num, den)
            elif tag == "I":
                if value not in ("p", "?"):
                    raise LicodecError(f"{name} is interlaced (I{value}); licodec reads progressive video only")
            elif tag == "C":
                if value not in Y4M_CHROMA_420:
                    if re.fullmatch(r"\d+p\d+", value):
                        raise LicodecError(f"{name} is high bit depth (C{value}); licodec reads 8-bit 4:2:0 only")
                    raise LicodecError(f"{name} has chroma format C{value}; licodec reads 4:2:0 only")
                params["C"] = value
            elif tag == "X" and value.startswith("COLORRANGE="):
                params["range"] = value.split("=", 1)[1]
        for tag in "WH":
            if tag not in params:
                raise LicodecError(f"{name}: bad YUV4MPEG2 header (no {tag} tag)")
        return params

    def _scan_frames(self, f: BinaryIO, name: str) -> list[int]:
        """Byte offsets of every frame's planes; checks markers and sizes without reading pixels."""
        total = os.fstat(f.fileno()).st_size
        offsets = []
        while True:
            marker = f.readline(_Y4M_MAX_LINE)
            if not marker:
                break
            index = len(offsets)
            if not (marker.startswith(b"FRAME") and marker.endswith(b"\n") and marker[5:6] in (b"\n", b" ")):
                raise LicodecError(f"{name}: frame {index} does not start with a FRAME line")
            start = f.tell()
            if start + self.frame_size > total:
                raise LicodecError(f"{name}: frame {index} is truncated ({total - start} of {self.frame_size} bytes)")
            offsets.append(start)
            f.seek(self.frame_size, os.SEEK_CUR)
        if not offsets:
            raise LicodecError(f"{name} has no frames")
        return offsets

    def frames(self, wanted: range) -> Iterator[Frame]:
        with open(self.path, "rb") as f:
            for i in wanted:
                f.seek(self.offsets[i])
                data = _read_exact(f, self.frame_size, str(self.path), i)
                yuv = YUV420.frombytes(data, self.width, self.height)
                yield Frame(yuv=yuv, full_range=self.full_range, index=i)


class _RawYUVSource(_Source):
    def __init__(self, path: Path, size, fps) -> None:
        self.path, name = path, str(path)
        if size is None:
            hint = re.search(r"(\d+)x(\d+)", path.name)
            guess = f" (the name suggests size=({hint[1]}, {hint[2]}))" if hint else ""
            raise LicodecError(f"{name} is raw YUV without a header; pass size=(width, height){guess}")
        if fps is None:
            raise LicodecError(f"{name} is raw YUV without a header; pass fps=")
        self.width, self.height = check_size(size, name)
        self.frame_size = frame_bytes(self.width, self.height)
        total = path.stat().st_size
        if total == 0:
            raise LicodecError(f"{name} is empty")
        if total % self.frame_size:
            raise LicodecError(
                f"{name} is {total} bytes, not a whole number of {self.width}x{self.height} I420 frames "
                f"({self.frame_size} bytes each); check size="
            )
        self.info = VideoInfo(
            self.width, self.height, fps_fraction(fps, name), total // self.frame_size, "yuv420p (raw)"
        )

    def frames(self, wanted: range) -> Iterator[Frame]:
        with open(self.path, "rb") as f:
            for i in wanted:
                f.seek(i * self.frame_size)
                data = _read_exact(f, self.frame_size, str(self.path), i)
                yield Frame(yuv=YUV420.frombytes(data, self.width, self.height), index=i)


class _PNGFolderSource(_Source):
    def __init__(self, path: Path, size, fps) -> None:
        self.path, name = path, str(path)
        pngs = (p for p in path.iterdir() if p.suffix.lower() == ".png" and p.is_file())
        self.files = sorted(pngs, key=lambda p: p.name)
        if not self.files:
            raise LicodecError(f"{name} is a folder with no PNG frames")
        sizes = {}
        for file in self.files:  # headers only: Pillow reads pixels on load()
            try:
                with Image.open(file) as im:
                    sizes[file] = im.size
            except Exception as e:
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise LicodecError(f"{file} is not a readable PNG ({reason})") from None
        first = self.files[0]
        self.width, self.height = sizes[first]
        for file in self.files:
            if sizes[file] != sizes[first]:
                w, h = sizes[file]
                raise LicodecError(
                    f"{name}: {file.name} is {w}x{h} but {first.name} is {self.width}x{self.height}; "
                    "all frames must be one size"
                )
        _require_size(name, size, self.width, self.height)
        rate = fps_fraction(fps if fps is not None else DEFAULT_PNG_FPS, name)
        self.info = VideoInfo(self.width, self.height, rate, len(self.files), "png folder")

    def frames(self, wanted: range) -> Iterator[Frame]:
        for i in wanted:
            file = self.files[i]
            with open_image(file) as im:
                if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
                    raise LicodecError(f"{file} is a {im.mode} (16-bit or float) image; video frames must be 8-bit")
                if im.size != (self.width, self.height):
                    raise LicodecError(f"{file} changed size while reading ({im.size[0]}x{im.size[1]})")
                rgb = np.asarray(im.convert("RGB"))  # gray and palette become RGB; alpha is dropped
            yield Frame(rgb=rgb, index=i)


class _FFmpegSource(_Source):
    """Containers decoded by imageio-ffmpeg's static ffmpeg (first video stream, no frame dropping)."""

    _OUTPUT_PARAMS = ["-map", "0:v:0", "-fps_mode", "passthrough"]

    def __init__(self, path: Path, size, fps) -> None:
        self.path, name = path, str(path)
        meta = self._probe()
        self.width, self.height = meta["size"]
        _require_size(name, size, self.width, self.height)
        stream_pix_fmt = str(meta.get("pix_fmt", "")).split("(")[0].strip()
        self.matrix: Matrix = "bt709" if "bt709" in str(meta.get("pix_fmt", "")) else "bt601"
        even = self.width % 2 == 0 and self.height % 2 == 0
        self.read_as_yuv = stream_pix_fmt in ("yuv420p", "yuvj420p") and even
        rate = fps if fps is not None else (meta.get("fps") or None)
        if rate is None:
            raise LicodecError(f"{name}: ffmpeg cannot tell its frame rate; pass fps=")
        self.info = VideoInfo(
            self.width,
            self.height,
            fps_fraction(rate, name),
            self._count_frames(),
            f"{path.suffix.lower().lstrip('.')} {str(meta.get('codec', '?')).rstrip(',')} {stream_pix_fmt or '?'}",
        )

    def _reader(self, pix_fmt: str = "rgb24", bits_per_pixel: int = 24):
        import imageio_ffmpeg

        return imageio_ffmpeg.read_frames(
            str(self.path), pix_fmt=pix_fmt, bits_per_pixel=bits_per_pixel, output_params=list(self._OUTPUT_PARAMS)
        )

    def _probe(self) -> dict:
        gen = self._reader()
        try:
            return next(gen)
        except Exception as e:
            raise LicodecError(f"{self.path}: ffmpeg cannot read it as a video ({_last_ffmpeg_line(e)})") from None
        finally:
            gen.close()

    def _count_frames(self) -> int | None:
        """Frames counted by demuxing the first video stream (no decoding); None if ffmpeg cannot tell."""
        import imageio_ffmpeg

        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(self.path)]
        cmd += ["-map", "0:v:0", "-c", "copy", "-f", "null", "-"]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired):
            return None
        counts = re.findall(rb"frame=\s*(\d+)", done.stderr)
        return int(counts[-1]) if done.returncode == 0 and counts else None

    def frames(self, wanted: range) -> Iterator[Frame]:
        if self.read_as_yuv:
            gen = self._reader("yuv420p", 12)
        else:
            gen = self._reader("rgb24", 24)
        try:
            next(gen)  # metadata
            last = wanted[-1] if len(wanted) else -1
            for i, data in enumerate(gen):
                if i > last:
                    break
                if i not in wanted:
                    continue
                if self.read_as_yuv:
                    yield Frame(yuv=YUV420.frombytes(data, self.width, self.height), matrix=self.matrix, index=i)
                else:
                    rgb = np.frombuffer(data, dtype=np.uint8).reshape(self.height, self.width, 3)
                    yield Frame(rgb=rgb, matrix=self.matrix, index=i)
        except LicodecError:
            raise
        except Exception as e:
            raise LicodecError(f"{self.path}: ffmpeg failed while decoding ({_last_ffmpeg_line(e)})") from None
        finally:
            gen.close()


def _last_ffmpeg_line(error: Exception) -> str:
    """The most telling line of an imageio-ffmpeg error (ffmpeg's own complaint when there is one)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip() and not line.startswith("===")]
    return lines[-1] if lines else type(error).__name__


# ----------------------------------------------------------------------------- reader


class VideoReader:
    """Frames of one video, read on demand. Iterating yields :class:`Frame` objects and may be
    repeated (each pass reopens the source). ``reader[a:b:c]`` (or :meth:`select`) gives a reader of
    a range of frames and ``reader[i]`` one frame; ``info`` describes exactly what iteration yields.
    """

    def __init__(self, source: _Source, wanted: range | None = None, matrix: Matrix | None = None) -> None:
        self._source = source
        self._matrix = matrix
        self._live: weakref.WeakSet = weakref.WeakSet()
        total = source.info.frames
        if wanted is None:
            wanted = range(total) if total is not None else range(sys.maxsize)
        self._range = wanted
        self.info = replace(
            source.info, frames=len(wanted) if total is not None else None, fps=source.info.fps / wanted.step
        )

    @property
    def path(self) -> Path:
        return self._source.path

    def select(self, frames: slice) -> VideoReader:
        """A reader of the frames ``frames`` picks from this one's (its fps is divided by the step)."""
        if not isinstance(frames, slice):
            raise LicodecError(f"{self.path}: frames must be a slice such as slice(0, 10), got {frames!r}")
        if frames.step is not None and frames.step <= 0:
            raise LicodecError(f"{self.path}: frames can only be taken forwards (step {frames.step})")
        unknown = self._source.info.frames is None
        if unknown and any(v is not None and v < 0 for v in (frames.start, frames.stop)):
            raise LicodecError(f"{self.path}: its frame count is unknown, so frames cannot count from the end")
        return VideoReader(self._source, self._range[frames], self._matrix)

    def __getitem__(self, key: slice | int) -> VideoReader | Frame:
        if isinstance(key, slice):
            return self.select(key)
        index = int(key)
        chosen = self.select(slice(index, index + 1) if index != -1 else slice(-1, None))
        for frame in chosen:
            return frame
        raise IndexError(f"{self.path} has no frame {index}")

    def __iter__(self) -> Iterator[Frame]:
        frames = self._frames()
        self._live.add(frames)
        return frames

    def _frames(self) -> Iterator[Frame]:
        for frame in self._source.frames(self._range):
            if self._matrix is not None:
                frame.matrix = self._matrix
            yield frame

    def close(self) -> None:
        """Stop any iteration still running (closes its file or ffmpeg process)."""
        for frames in list(self._live):
            frames.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VideoReader({str(self.path)!r}, {self.info})"


def open_video(
    path: str | Path,
    size: tuple[int, int] | None = None,
    fps: FpsLike | None = None,
    *,
    frames: slice | None = None,
    matrix: Matrix | None = None,
) -> VideoReader:
    """Open a video for frame-by-frame reading (formats in the module docstring).

    ``size=(width, height)`` is required for raw ``.yuv`` and otherwise checked against the file;
    ``fps`` is required for raw ``.yuv``, defaults to 25 for PNG folders and otherwise overrides the
    file's rate; ``frames=slice(start, stop, step)`` selects frames; ``matrix`` overrides the colour
    matrix used for RGB <-> YUV (default BT.601, or BT.709 when a container's stream says so).
    Opening checks the whole file's structure (y4m frame markers and sizes, PNG sizes) but reads no pixels.
    """
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise LicodecError(f"no such file or folder: {name}")
    if path.is_dir():
        source: _Source = _PNGFolderSource(path, size, fps)
    else:
        suffix = path.suffix.lower()
        if path.stat().st_size == 0:
            raise LicodecError(f"{name} is empty")
        if suffix == ".y4m":
            source = _Y4MSource(path, size, fps)
        elif suffix == ".yuv":
            source = _RawYUVSource(path, size, fps)
        elif suffix in CONTAINER_SUFFIXES:
            source = _FFmpegSource(path, size, fps)
        else:
            known = ", ".join((".y4m", ".yuv", *CONTAINER_SUFFIXES))
            raise LicodecError(
                f"{name}: unknown video extension {suffix or '(none)'!r}; licodec reads {known} or a folder of PNGs"
            )
    reader = VideoReader(source, matrix=matrix)
    return reader.select(frames) if frames is not None else reader
