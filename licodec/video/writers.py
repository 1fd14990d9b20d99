"""Writing video frame by frame: :func:`open_writer` and :class:`VideoWriter` (``.y4m`` or a folder
of PNG frames). The output appears only when the writer closes; a failed or abandoned write
leaves no partial output."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import weakref
from abc import ABC, abstractmethod
from dataclasses import replace
from pathlib import Path

from PIL import Image

from licodec.errors import LicodecError
from licodec.image_io import output_mode
from licodec.transaction import CloseOrAbort
from licodec.video.frames import Frame, VideoInfo, fps_fraction

PNG_FRAME_NAME = "frame_{:05d}.png"
_PNG_FRAME_RE = re.compile(r"frame_\d{5,}\.png")


class VideoWriter(CloseOrAbort, ABC):
    """Writes :class:`Frame` objects of one size to a file or folder that appears only on :meth:`close`.

    Use as a context manager: leaving the block by an exception calls :meth:`abort` instead, which
    removes everything written so far. ``frames_written`` counts the frames accepted.
    """

    def __init__(self, path: Path, info: VideoInfo) -> None:
        self.path, self.info = path, info
        self.frames_written = 0
        self.closed = False

    def _refuse_empty(self) -> None:
        if self.frames_written == 0:
            self.abort()
            raise LicodecError(f"{self.path}: no frames were written, so nothing was saved")

    def write(self, frame: Frame) -> None:
        if self.closed:
            raise LicodecError(f"{self.path}: the writer is closed")
        if not isinstance(frame, Frame):
            raise LicodecError(f"{self.path}: write() takes a Frame, got {type(frame).__name__}")
        if (frame.width, frame.height) != (self.info.width, self.info.height):
            raise LicodecError(
                f"{self.path}: frame {self.frames_written} is {frame.width}x{frame.height}, "
                f"the video is {self.info.width}x{self.info.height}"
            )
        self._write(frame)
        self.frames_written += 1

    @abstractmethod
    def _write(self, frame: Frame) -> None:
        """Store one frame already checked by :meth:`write`."""

    @abstractmethod
    def close(self) -> None:
        """Finish: move the output into place."""

    @abstractmethod
    def abort(self) -> None:
        """Drop everything written; the destination is left as it was."""


def _remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class _Y4MWriter(VideoWriter):
    def __init__(self, path: Path, info: VideoInfo) -> None:
        super().__init__(path, info)
        try:
            fd, self._tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        except OSError as e:
            raise LicodecError(f"cannot write {path}: {e.strerror}") from None
        self._file = os.fdopen(fd, "wb")
        self._cleanup = weakref.finalize(self, _remove_file, self._tmp)  # if never closed
        fps = info.fps  # a Fraction (open_writer)
        self._file.write(
            f"YUV4MPEG2 W{info.width} H{info.height} F{fps.numerator}:{fps.denominator} Ip A1:1 C420\n".encode("ascii")
        )

    def _write(self, frame: Frame) -> None:
        self._file.write(b"FRAME\n")
        self._file.write(frame.yuv().tobytes())

    def close(self) -> None:
        if self.closed:
            return
        self._refuse_empty()
        try:
            self._file.close()
            os.chmod(self._tmp, output_mode(self.path))
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self.closed = True
        self._cleanup.detach()

    def abort(self) -> None:
        self.closed = True
        self._file.close()
        self._cleanup()


class _PNGFolderWriter(VideoWriter):
    def __init__(self, path: Path, info: VideoInfo, overwrite: bool) -> None:
        super().__init__(path, info)
        self._overwrite = overwrite
        try:
            self._staging = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        except OSError as e:
            raise LicodecError(f"cannot write {path}: {e.strerror}") from None
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._staging, True)  # if never closed

    def _write(self, frame: Frame) -> None:
        name = PNG_FRAME_NAME.format(self.frames_written)
        try:
            Image.fromarray(frame.rgb(), "RGB").save(os.path.join(self._staging, name), format="PNG")
        except OSError as e:
            raise LicodecError(f"{self.path}: cannot write {name}: {e}") from None

    def close(self) -> None:
        if self.closed:
            return
        self._refuse_empty()
        try:
            if not self.path.exists():
                file_mode = output_mode(self.path)  # 0666 less the umask
                os.chmod(self._staging, file_mode | (file_mode & 0o444) >> 2)  # a folder: x where r
                os.replace(self._staging, self.path)
            else:
                self._merge_into_existing()
        except BaseException:
            self.abort()
            raise
        self.closed = True
        self._cleanup.detach()

    def _merge_into_existing(self) -> None:
        """Target folder exists (empty, or ``overwrite``): move new frames in, drop stale ``frame_*.png``."""
        if any(self.path.iterdir()) and not self._overwrite:
            raise LicodecError(f"{self.path} is not empty; pass overwrite=True to replace its frames")
        new = set(os.listdir(self._staging))
        for name in sorted(new):
            os.replace(os.path.join(self._staging, name), self.path / name)
        for stale in self.path.iterdir():
            if _PNG_FRAME_RE.fullmatch(stale.name) and stale.name not in new:
                stale.unlink()
        os.rmdir(self._staging)

    def abort(self) -> None:
        self.closed = True
        self._cleanup()


def open_writer(path: str | Path, info: VideoInfo, *, overwrite: bool = False) -> VideoWriter:
    """A writer for ``.y4m`` (any other suffix is refused) or, for a path without suffix or an
    existing folder, a folder of ``frame_00000.png`` ... (created if absent).

    Only ``info``'s width, height and fps are used. An existing ``.y4m`` or non-empty folder is
    refused unless ``overwrite``; overwriting a folder replaces its ``frame_NNNNN.png`` files only.
    A y4m gets each frame's :meth:`Frame.yuv` planes as they are (no range tag is written: frames read
    from a full-range source stay full range); closing a writer that got no frames saves nothing and
    raises.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise LicodecError(f"cannot write {path}: folder {parent} does not exist")
    if info.width <= 0 or info.height <= 0:
        raise LicodecError(f"cannot write {path}: frame size {info.width}x{info.height} must be positive")
    info = replace(info, fps=fps_fraction(info.fps, f"cannot write {path}"))
    if path.is_dir() or (not path.exists() and path.suffix == ""):
        if path.is_dir() and any(path.iterdir()) and not overwrite:
            raise LicodecError(f"{path} is a folder that is not empty; pass overwrite=True to replace its frames")
        return _PNGFolderWriter(path, info, overwrite)
    if path.suffix.lower() != ".y4m":
        raise LicodecError(
            f"cannot write {path}: unknown video extension {path.suffix!r}; use .y4m or a folder name (PNG frames)"
        )
    if path.exists() and not overwrite:
        raise LicodecError(f"{path} exists; pass overwrite=True to replace it")
    return _Y4MWriter(path, info)
