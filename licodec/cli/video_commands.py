"""The CLI's video paths: ``encode`` of a video, ``decode`` and ``info`` of a ``.lic`` video.

``licodec encode clip.y4m -q 4`` (also raw ``.yuv`` with ``--size WxH --fps F``, mp4/mkv/webm/
avi/mov, or a folder of PNG frames with ``--video``) writes ``clip.lic``; ``licodec decode
clip.lic -o out.y4m [--frames A:B]`` writes a y4m or, for an output without suffix, a folder of
PNG frames. Outputs appear only when complete. A damaged frame is named on stderr and concealed
by repeating the last decoded frame; decoding resumes at the next I-frame and the command exits 1.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from licodec.errors import LicodecError

VIDEO_SUFFIXES = {".y4m", ".yuv", ".mp4", ".mkv", ".webm", ".avi", ".mov"}
VIDEO_MAGIC = b"\x89LIV"


def is_video_input(path: str, video_flag: bool) -> bool:
    p = Path(path)
    return Path(path).suffix.lower() in VIDEO_SUFFIXES or (video_flag and p.is_dir())


def is_video_file(path: str) -> bool:
    """Whether ``path`` is a ``.lic`` video (by its magic)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == VIDEO_MAGIC
    except OSError:
        return False


def frame_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m:
        raise LicodecError(f"--size for a video is the frame size WxH (e.g. 416x240), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def frame_range(text: str | None) -> tuple[int, int | None]:
    """``A:B`` (B exclusive; either may be empty) -> ``(start, stop)``."""
    if text is None:
        return 0, None
    m = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", text)
    if not m:
        raise LicodecError(f"--frames takes A:B (frames A to B-1; either may be left out), got {text!r}")
    start = int(m.group(1)) if m.group(1) else 0
    stop = int(m.group(2)) if m.group(2) else None
    if stop is not None and stop <= start:
        raise LicodecError(f"--frames {text}: the range is empty")
    return start, stop


def _atomic_output(output: Path, force: bool):
    if output.exists() and not force:
        raise LicodecError(f"{output} exists; use --force to overwrite it")
    if not output.parent.is_dir():
        raise LicodecError(f"cannot write {output}: folder {output.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".part", dir=output.parent)
    return os.fdopen(fd, "wb"), Path(tmp)


def encode_video(source: str, output: str | None, quality: float, model: str | None, i_period: int | None,
                 size: str | None, fps: float | None, force: bool, verbose: bool, effort: int = 0) -> int:
    from licodec.video import coding
    from licodec.video.io import open_video

    reader = open_video(source, size=frame_size(size) if size else None, fps=fps)
    info = reader.info
    out = Path(output) if output else Path(source).with_suffix(".lic")
    codec = coding.load_video_codec(model or coding.DEFAULT_MODEL)
    codec.check_quality(quality)
    stats = []
    t0 = time.perf_counter()
    f, tmp = _atomic_output(out, force)
    try:
        with f:
            for piece in coding.compress(reader, quality, fps=info.fps, i_period=i_period, codec=codec,
                                         frame_count=info.frames or 0, pix_fmt=info.source_format.split()[0],
                                         stats=stats, effort=effort):
                f.write(piece)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - t0
    if verbose:
        total = out.stat().st_size
        pixels = info.width * info.height * len(stats)
        print(f"{source} -> {out}: {len(stats)} frames {info.width}x{info.height}, {total:,} bytes, "
              f"{8 * total / pixels:.4f} bpp, {8 * total * float(info.fps) / len(stats) / 1000:.1f} kbit/s, "
              f"encode {len(stats) / seconds:.2f} frames/s")
    return 0


def decode_video(source: str, output: str | None, frames: str | None, force: bool, verbose: bool) -> int:
    from licodec.entropy import video_container as vc
    from licodec.video import coding
    from licodec.video.io import Frame, VideoInfo, open_writer

    start, stop = frame_range(frames)
    reader = vc.VideoReader(source)
    header = reader.header
    out = Path(output) if output else Path(source).with_suffix(".y4m")
    if out.exists() and not force:
        raise LicodecError(f"{out} exists; use -o to name another output or --force to overwrite it")
    if reader.frame_count and start >= reader.frame_count:
        raise LicodecError(f"--frames {frames}: the video has {reader.frame_count} frames")
    info = VideoInfo(width=header.width, height=header.height, fps=header.fps, frames=None, source_format="rgb24")
    damaged, count, last = [], 0, None
    t0 = time.perf_counter()
    with open_writer(out, info, overwrite=force) as writer:
        for decoded in coding.decompress(reader, start=start, stop=stop):
            if decoded.rgb is None:
                damaged.append(decoded.number)
                print(f"licodec: frame {decoded.number} damaged: {decoded.damage}", file=sys.stderr)
                rgb = last if last is not None else np.full((header.height, header.width, 3), 128, np.uint8)
            else:
                rgb = last = decoded.rgb
            writer.write(Frame(rgb=rgb))
            count += 1
    seconds = time.perf_counter() - t0
    if verbose:
        print(f"{source} -> {out}: {count} frames, decode {count / seconds:.2f} frames/s")
    if damaged:
        raise LicodecError(f"{len(damaged)} damaged frame(s) ({', '.join(map(str, damaged[:10]))}"
                           f"{' ...' if len(damaged) > 10 else ''}) concealed by repeating the last good frame "
                           f"in {out}")
    return 0


def info_video(path: str) -> int:
    from licodec.entropy import video_container as vc

    reader = vc.VideoReader(path)
    h = reader.header
    rows = vc.describe(reader)
    total = Path(path).stat().st_size
    pixels = h.width * h.height
    n = max(len(rows), 1)
    print(f"file:       {path} ({total:,} bytes, {8 * total / (pixels * n):.4f} bpp, "
          f"{8 * total * float(h.fps) / n / 1000:.1f} kbit/s)")
    print(f"format:     licodec video v{vc.FORMAT_VERSION}")
    print(f"codec:      {h.codec_id} (weights {h.weights_sha256}); I-frames {h.intra_codec_id} "
          f"(weights {h.intra_weights_sha256})")
    print(f"quality:    {h.quality:g}")
    print(f"video:      {h.width}x{h.height}, {h.fps} fps, {reader.frame_count} frames, I-period {h.i_period}, "
          f"source {h.pix_fmt}")
    if reader.index_problem:
        print(f"index:      {reader.index_problem}")
    print("frame  type        bytes        bits    bpp")
    for r in rows:
        print(f"{r['number']:>5}  {r['type']:>4}  {r['bytes']:>11,}  {r['bits']:>10,}  {r['bits'] / pixels:.4f}")
    return 0
