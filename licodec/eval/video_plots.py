"""Per-frame plots of a video evaluation: PSNR (YUV) and bits of every frame, so drift shows.

From the rows of ``per_frame.csv`` (:mod:`licodec.eval.video_runner`) for one clip, each codec is
drawn at one of its rate points: the one whose sequence bpp is nearest (in log) to a target,
by default the geometric mean of every point's bpp on that clip. Top panel: PSNR-YUV per frame;
bottom: bits per frame (log scale); I-frames are marked.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from licodec.errors import LicodecError
from licodec.eval.video_anchors import VIDEO_ANCHORS


def read_per_frame(path: str | Path) -> list[dict]:
    """Rows of a ``per_frame.csv``; a one-line error for anything else."""
    p = Path(path)
    if not p.is_file():
        raise LicodecError(f"no such file: {p}")
    with open(p, newline="") as f:
        rows = list(csv.DictReader(f))
    needed = {"clip", "codec", "quality", "frame", "type", "bits", "psnr_yuv", "sequence_bytes", "width", "height"}
    if not rows or not needed <= set(rows[0]):
        raise LicodecError(f"{p} is not a per_frame.csv of licodec eval --video")
    return rows


def _points(rows: list[dict], clip: str) -> dict[tuple[str, float], list[dict]]:
    points: dict[tuple[str, float], list[dict]] = {}
    for r in rows:
        if r["clip"] == clip:
            points.setdefault((r["codec"], float(r["quality"])), []).append(r)
    for frames in points.values():
        frames.sort(key=lambda r: int(r["frame"]))
    return points


def _bpp(frames: list[dict]) -> float:
    first = frames[0]
    return 8 * int(first["sequence_bytes"]) / (len(frames) * int(first["width"]) * int(first["height"]))


def choose_points(rows: list[dict], clip: str, target_bpp: float | None = None) -> tuple[float, dict]:
    """``(target bpp, {codec: (quality, frame rows)})``: each codec's point nearest the target."""
    points = _points(rows, clip)
    if not points:
        clips = sorted({r["clip"] for r in rows})
        raise LicodecError(f"no rows for clip {clip!r} (clips: {', '.join(clips)})")
    if target_bpp is None:
        target_bpp = math.exp(sum(math.log(_bpp(f)) for f in points.values()) / len(points))
    if target_bpp <= 0:
        raise LicodecError(f"--bpp must be positive, got {target_bpp:g}")
    chosen: dict[str, tuple[float, list[dict]]] = {}
    for (codec, quality), frames in points.items():
        distance = abs(math.log(_bpp(frames) / target_bpp))
        if codec not in chosen or distance < abs(math.log(_bpp(chosen[codec][1]) / target_bpp)):
            chosen[codec] = (quality, frames)
    return target_bpp, chosen


def plot_per_frame(rows: list[dict], clip: str, out: str | Path, target_bpp: float | None = None,
                   force: bool = False) -> Path:
    """Write the per-frame figure of ``clip`` (.png, .pdf or .svg) atomically; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    out = Path(out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("png", "pdf", "svg"):
        raise LicodecError(f"plot output must end in .png, .pdf or .svg, got {out.name!r}")
    target, chosen = choose_points(rows, clip, target_bpp)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.4), sharex=True)
    for i, (codec, (quality, frames)) in enumerate(sorted(chosen.items())):
        x = [int(r["frame"]) for r in frames]
        knob = "QP" if codec in VIDEO_ANCHORS else "q"
        label = f"{codec} {knob} {quality:g} ({_bpp(frames):.4f} bpp)"
        style = dict(color=f"C{i % 10}", linewidth=1)
        top.plot(x, [float(r["psnr_yuv"]) for r in frames], label=label, **style)
        bottom.plot(x, [int(r["bits"]) for r in frames], **style)
        intra = [(int(r["frame"]), float(r["psnr_yuv"]), int(r["bits"])) for r in frames if r["type"] == "I"]
        top.plot([p[0] for p in intra], [p[1] for p in intra], "o", markersize=3, **style)
        bottom.plot([p[0] for p in intra], [p[2] for p in intra], "o", markersize=3, **style)
    top.set_ylabel("PSNR (YUV 6:1:1) [dB]")
    top.set_title(f"{clip}: each codec at its point nearest {target:.4f} bpp (dots: I-frames)")
    top.legend(fontsize=8)
    bottom.set_yscale("log")
    bottom.set_ylabel("bits per frame")
    bottom.set_xlabel("frame")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    from licodec.eval.report import save_figure

    return save_figure(fig, out, fmt, 110, force)
