"""The video rate-distortion runner behind ``licodec eval --video``: clips x codecs x qualities.

Every codec codes the same frames of each clip (the first ``frames``) with the same I-period.
Each (clip, codec, quality) is encoded to real bytes, decoded and scored frame by frame
(:mod:`licodec.eval.video_metrics`); its rows go to ``OUT/per_frame.csv`` as soon as it is done,
so an interrupted run resumes where it stopped (rows carry the coder's version, the I-period and
the frame count; rows of other settings are not reused). Then:

- ``OUT/sequences.csv``: per (clip, codec, quality) the sequence's bpp (all bytes stored x 8 /
  (frames x W x H)), mean PSNRs and MS-SSIM over its frames, encode and decode frames per second;
- ``OUT/<codec>.json`` (``intra:NAME`` -> ``intra-NAME.json``): the curve, in the CompressAI format
  ``licodec bdrate`` and ``licodec plot`` read: per quality the mean over clips of those values (keys
  ``bpp``, ``psnr-yuv``, ``psnr-y``, ``psnr-u``, ``psnr-v``, ``psnr-rgb``, ``ms-ssim-rgb`` when every
  clip is large enough for it, ``encoding_fps``, ``decoding_fps``);
- ``OUT/per_frame_<clip>.png``: PSNR (YUV) and bits of every frame, each codec at its point
  nearest a common rate (:mod:`licodec.eval.video_plots`), so drift within a GOP shows.

Clips are read whole into memory (RGB and YUV of every frame) before coding, so times measure
coding only; bound long clips with ``frames``.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from licodec.errors import LicodecError
from licodec.eval.results import Curve, curve_to_dict, write_json, write_rows
from licodec.eval.video_codecs import VideoEvalCodec, resolve_video_codec
from licodec.eval.video_metrics import SCORE_NAMES, frame_scores
from licodec.video.io import Frame, open_video

CSV_NAME = "per_frame.csv"
SEQUENCES_NAME = "sequences.csv"
DEFAULT_I_PERIOD = 32
UNIT_COLUMNS = ["clip", "codec", "version", "i_period", "frames", "quality"]
COLUMNS = UNIT_COLUMNS + ["width", "height", "frame", "type", "bits", *SCORE_NAMES,
                          "sequence_bytes", "encode_seconds", "decode_seconds"]
SEQUENCE_COLUMNS = ["clip", "codec", "quality", "frames", "width", "height", "bpp", "psnr_yuv", "psnr_y", "psnr_u",
                    "psnr_v", "psnr_rgb", "ms_ssim", "encode_fps", "decode_fps"]
# sequences.csv column -> results JSON key
CURVE_KEYS = {"bpp": "bpp", "psnr_yuv": "psnr-yuv", "psnr_y": "psnr-y", "psnr_u": "psnr-u", "psnr_v": "psnr-v",
              "psnr_rgb": "psnr-rgb", "ms_ssim": "ms-ssim-rgb", "encode_fps": "encoding_fps",
              "decode_fps": "decoding_fps"}


@dataclass
class Clip:
    """A clip's frames in memory: ``frames`` (RGB and YUV both made), ``fps``, ``width`` x ``height``."""

    name: str
    path: Path
    frames: list[Frame]
    fps: Fraction
    width: int
    height: int


def clip_names(paths: list[Path]) -> list[str]:
    """Short distinct names: the last path component, or the last two (``00001/0001``) and so on
    when the last ones collide."""
    resolved = [Path(p).resolve() for p in paths]
    for depth in range(1, max(len(p.parts) for p in resolved) + 1):
        names = ["/".join(p.parts[-depth:]) for p in resolved]
        if len(set(names)) == len(names):
            return names
    raise LicodecError("a clip is given twice")


def load_clip(path: str | Path, name: str, max_frames: int | None = None, fps=None,
              size: tuple[int, int] | None = None) -> Clip:
    """The first ``max_frames`` frames (all when None) of a video :func:`open_video` reads."""
    reader = open_video(path, size=size, fps=fps, frames=slice(0, max_frames))
    frames = []
    for frame in reader:
        frame.rgb(), frame.yuv()  # both forms now, so coding times exclude conversions
        frames.append(frame)
    if not frames:
        raise LicodecError(f"{path} has no frames")
    info = reader.info
    return Clip(name, Path(path), frames, info.fps, frames[0].width, frames[0].height)


# ---------------------------------------------------------------- one point
def run_point(clip: Clip, codec: VideoEvalCodec, version: str, quality: float, i_period: int) -> list[dict]:
    """Code ``clip`` with ``codec`` at ``quality``; one row per frame, in CSV column order."""
    try:
        coded = codec.code(clip.frames, quality, i_period, clip.fps)
        if not (len(coded.decoded) == len(coded.frame_types) == len(coded.frame_bits) == len(clip.frames)):
            raise LicodecError(f"{len(coded.decoded)} frames came back for {len(clip.frames)}")
        rows = []
        for number, (source, decoded) in enumerate(zip(clip.frames, coded.decoded)):
            scores = frame_scores(source, decoded)
            rows.append({"clip": clip.name, "codec": codec.name, "version": version, "i_period": i_period,
                         "frames": len(clip.frames), "quality": quality, "width": clip.width, "height": clip.height,
                         "frame": number, "type": coded.frame_types[number], "bits": coded.frame_bits[number],
                         **{k: ("" if v is None else v) for k, v in scores.items()},
                         "sequence_bytes": coded.sequence_bytes, "encode_seconds": coded.encode_seconds,
                         "decode_seconds": coded.decode_seconds})
        return rows
    except LicodecError as e:
        raise LicodecError(f"{clip.name}, {codec.name} at {codec.knob} {quality:g}: {e}") from None
    except Exception as e:  # a codec library failing on one clip: say where, in one line
        raise LicodecError(f"{clip.name}, {codec.name} at {codec.knob} {quality:g}: {type(e).__name__}: {e}") from None


# ---------------------------------------------------------------- CSV store
def _unit_key(row: dict) -> tuple:
    return tuple(str(row[c]) for c in UNIT_COLUMNS[:-1]) + (repr(float(row["quality"])),)


def read_complete_rows(csv_path: Path) -> list[dict]:
    """Rows of every finished (clip, codec, quality); rows of an interrupted one (fewer rows
    than its frame count, or a last line cut short) are dropped from the file."""
    if not csv_path.exists():
        return []
    text = csv_path.read_bytes().decode()
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        return []
    if list(reader.fieldnames) != COLUMNS:
        raise LicodecError(f"{csv_path} holds other columns ({', '.join(reader.fieldnames)}); use another --out folder")
    rows = list(reader)
    if text and not text.endswith("\n"):
        rows = rows[:-1]
    counts: dict[tuple, int] = {}
    for r in rows:
        counts[_unit_key(r)] = counts.get(_unit_key(r), 0) + 1
    complete = [r for r in rows if counts[_unit_key(r)] == int(r["frames"])]
    if len(complete) != len(rows) or (text and not text.endswith("\n")):
        write_rows(csv_path, COLUMNS, complete, append=False)
    return complete


# ---------------------------------------------------------------- aggregation
def sequence_summary(rows: list[dict]) -> dict:
    """One (clip, codec, quality)'s frame rows -> its SEQUENCE_COLUMNS values."""
    first = rows[0]
    n, w, h = len(rows), int(first["width"]), int(first["height"])
    out = {"clip": first["clip"], "codec": first["codec"], "quality": float(first["quality"]), "frames": n,
           "width": w, "height": h, "bpp": 8 * int(first["sequence_bytes"]) / (n * w * h)}
    for key in ("psnr_yuv", "psnr_y", "psnr_u", "psnr_v", "psnr_rgb", "ms_ssim"):
        values = [r[key] for r in rows]
        out[key] = float(np.mean([float(v) for v in values])) if all(v != "" for v in values) else None
    out["encode_fps"] = n / max(float(first["encode_seconds"]), 1e-9)
    out["decode_fps"] = n / max(float(first["decode_seconds"]), 1e-9)
    return out


def summarize(rows: list[dict], codecs: list[VideoEvalCodec], versions: dict[str, str], sweep: dict,
              clips: list[Clip], i_period: int) -> list[dict]:
    """The sequence summaries of this run's settings, in (clip, codec, quality) order."""
    units: dict[tuple, list[dict]] = {}
    for r in rows:
        units.setdefault(_unit_key(r), []).append(r)
    out = []
    for clip in clips:
        for c in codecs:
            for q in sweep[c.name]:
                key = (clip.name, c.name, versions[c.name], str(i_period), str(len(clip.frames)), repr(float(q)))
                if key not in units:
                    raise LicodecError(f"{clip.name}, {c.name} at {c.knob} {q:g} has no results")
                out.append(sequence_summary(sorted(units[key], key=lambda r: int(r["frame"]))))
    return out


def codec_curve(summaries: list[dict], codec: VideoEvalCodec, qualities: tuple[float, ...], label: str) -> Curve:
    """Per quality, the mean over clips of every CURVE_KEYS value (MS-SSIM only if every clip has it)."""
    results: dict[str, list] = {"quality": list(qualities)}
    for q in qualities:
        points = [s for s in summaries if s["codec"] == codec.name and s["quality"] == q]
        for column, key in CURVE_KEYS.items():
            values = [s[column] for s in points]
            if any(v is None for v in values):
                continue
            results.setdefault(key, []).append(float(np.mean(values)))
    results = {k: v for k, v in results.items() if len(v) == len(qualities)}
    if any(not math.isfinite(v) for k, vs in results.items() if k != "quality" for v in vs):
        raise LicodecError(f"{codec.name}: a mean is not finite; drop that quality")
    return Curve(name=codec.label, results=results, dataset=label)


def _write_sequences(path: Path, summaries: list[dict]) -> None:
    from licodec.image_io import atomic_write

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SEQUENCE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for s in summaries:
        writer.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in s.items()})
    atomic_write(path, buf.getvalue().encode(), force=True)


def plot_name(clip: str) -> str:
    """``per_frame_<clip>.png`` with the clip's name made file-safe."""
    return "per_frame_" + re.sub(r"[^A-Za-z0-9._-]+", "_", clip) + ".png"


# ---------------------------------------------------------------- driver
def evaluate_video(clip_paths: list[str | Path], codec_specs: list[str], out_dir: str | Path,
                   qualities: dict[str, tuple[float, ...]] | None = None, i_period: int = DEFAULT_I_PERIOD,
                   frames: int | None = None, fps=None, size: tuple[int, int] | None = None,
                   progress: bool = True, plots: bool = True) -> dict[str, Path]:
    """Measure ``codec_specs`` (:func:`~licodec.eval.video_codecs.resolve_video_codec`) on the clips;
    returns ``{codec name: results JSON path}``.

    qualities: per codec name, the settings to run (default: the codec's own sweep; QPs for x26x).
    i_period: frames from one I-frame to the next, for every codec; frames: at most this many
    frames of each clip (default all); fps, size: for PNG folders and raw ``.yuv`` (open_video).
    """
    if not clip_paths:
        raise LicodecError("no clip to evaluate")
    if not codec_specs:
        raise LicodecError("no codec to evaluate")
    if int(i_period) < 1:
        raise LicodecError(f"--i-period must be at least 1, got {i_period}")
    if frames is not None and int(frames) < 1:
        raise LicodecError(f"--frames must be at least 1, got {frames}")
    codecs = [resolve_video_codec(s) for s in codec_specs]
    names = [c.name for c in codecs]
    if len(set(names)) != len(names):
        raise LicodecError("a codec is named twice")
    unknown = [n for n in (qualities or {}) if n not in names]
    if unknown:
        raise LicodecError(f"--quality names {unknown[0]!r}, which is not among the codecs evaluated")
    sweep = {}
    for c in codecs:
        qs = tuple(dict.fromkeys(float(q) for q in (qualities or {}).get(c.name, c.qualities)))
        for q in qs:
            c.check_quality(q)
        sweep[c.name] = qs
    versions = {c.name: c.version() for c in codecs}
    clips = [load_clip(p, n, frames, fps, size) for p, n in zip(clip_paths, clip_names([Path(p) for p in clip_paths]))]

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise LicodecError(f"{out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / CSV_NAME
    done = {_unit_key(r) for r in read_complete_rows(csv_path)}
    todo = [(clip, c, q) for clip in clips for c in codecs for q in sweep[c.name]
            if (clip.name, c.name, versions[c.name], str(i_period), str(len(clip.frames)), repr(q)) not in done]

    from tqdm import tqdm

    for clip, c, q in tqdm(todo, unit="point", desc="licodec eval --video", disable=not progress, leave=False):
        write_rows(csv_path, COLUMNS, run_point(clip, c, versions[c.name], q, int(i_period)))

    rows = read_complete_rows(csv_path)
    summaries = summarize(rows, codecs, versions, sweep, clips, int(i_period))
    _write_sequences(out / SEQUENCES_NAME, summaries)
    label = (clips[0].name if len(clips) == 1 else f"{len(clips)} clips") + \
        f", {'/'.join(sorted({str(len(c.frames)) for c in clips}))} frames, I-period {i_period}"
    written = {}
    for c in codecs:
        curve = codec_curve(summaries, c, sweep[c.name], label)
        description = (f"{c.label} on {', '.join(clip.name for clip in clips)}: per {c.knob}, the mean over clips "
                       f"of the sequence bpp (all bytes stored) and of the mean per-frame metrics; PSNR-YUV = "
                       f"(6Y+U+V)/8 on 8-bit YUV 4:2:0; {versions[c.name]}")
        payload = curve_to_dict(curve, description, codec=c.name)
        payload.update(i_period=int(i_period), frames={clip.name: len(clip.frames) for clip in clips})
        written[c.name] = write_json(out / f"{_file_safe(c.name)}.json", payload)
    if plots:
        from licodec.eval.video_plots import plot_per_frame

        for clip in clips:
            plot_per_frame([r for r in rows if _current(r, versions, i_period, clip)], clip.name,
                           out / plot_name(clip.name), force=True)
    return written


def _current(row: dict, versions: dict[str, str], i_period: int, clip: Clip) -> bool:
    return (row["clip"] == clip.name and versions.get(row["codec"]) == row["version"]
            and row["i_period"] == str(i_period) and row["frames"] == str(len(clip.frames)))


def _file_safe(name: str) -> str:
    """A codec name as a file name (``intra:hyperprior-ctx`` -> ``intra-hyperprior-ctx``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)
