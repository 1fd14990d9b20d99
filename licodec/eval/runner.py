"""The rate-distortion runner behind ``licodec eval``: codecs x qualities x images -> CSV and JSON curves.

For every image and codec, each quality is encoded to real bytes, decoded, and measured
(PSNR on RGB and Y always; the other metrics of :mod:`licodec.eval.metric_registry` on
request). Codecs that write the same file (a generative decoder at several realisms, which
differ only in the decode) share one encode per image and quality. One row per (image, codec,
quality) goes to ``OUT/per_image.csv`` as soon as that image is done, so an interrupted run resumes where it stopped; rows carry the
encoder's version (weights hash, library versions), and rows of another version are not
reused. When all rows are there, ``OUT/<codec>.json`` holds the curve in CompressAI's
format: per quality, the mean over images of bpp and of each metric (CompressAI's
convention; for SWD this is the mean of per-image distances, not a pooled-set SWD).

Images run in parallel processes (``jobs``), each with ``cores // jobs`` torch threads.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from licodec.errors import LicodecError
from licodec.eval import metric_registry as registry
from licodec.eval.codecs import EvalCodec, resolve_codec
from licodec.eval.datasets import Dataset
from licodec.eval.results import Curve, curve_to_dict, write_json, write_rows

CSV_NAME = "per_image.csv"
BASE_COLUMNS = ["image", "codec", "version", "quality", "width", "height", "bytes", "bpp", "psnr-rgb", "psnr-y"]
TIME_COLUMNS = ["encoding_time", "decoding_time"]


@dataclass(frozen=True)
class Unit:
    """One image through codecs that write the same file (one encoder; a generative decoder's
    realism settings), at the qualities still missing: each quality is encoded once and decoded
    by each codec."""

    path: str
    name: str  # path relative to the dataset root, as written in the CSV
    codecs: tuple[EvalCodec, ...]
    qualities: tuple[float, ...]


def columns_for(metrics: tuple[str, ...]) -> list[str]:
    """CSV columns for registry metric names (the column is each metric's results key)."""
    return BASE_COLUMNS + [registry.get(m).key for m in metrics] + TIME_COLUMNS


# ---------------------------------------------------------------- worker side
_metric_cache: dict = {}


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _metric(name: str, weights_dir):
    key = (name, weights_dir)
    if key not in _metric_cache:
        _metric_cache[key] = registry.build(name, weights_dir=weights_dir)
    return _metric_cache[key]


def run_unit(unit: Unit, metrics: tuple[str, ...], weights_dir: str | None) -> list[dict]:
    """Encode each quality once, decode it with each of the unit's codecs and measure; rows in
    CSV column order (every codec's row carries the shared encode's time)."""
    from licodec.eval.metrics import psnr, psnr_y
    from licodec.image_io import read_image

    try:
        rgb = read_image(unit.path).rgb
    except LicodecError as e:
        raise LicodecError(f"{unit.name}: {e}") from None
    h, w = rgb.shape[:2]
    versions = [codec.version() for codec in unit.codecs]
    rows = []
    for q in unit.qualities:
        codec = unit.codecs[0]
        try:
            t0 = time.perf_counter()
            data = codec.encode(rgb, q)
            encoding_time = time.perf_counter() - t0
            for codec, version in zip(unit.codecs, versions):
                t1 = time.perf_counter()
                decoded = codec.decode(data)
                t2 = time.perf_counter()
                if decoded.shape != rgb.shape:
                    raise LicodecError(f"decoded shape {decoded.shape} differs from the source {rgb.shape}")
                row = {"image": unit.name, "codec": codec.name, "version": version,
                       "quality": q, "width": w, "height": h, "bytes": len(data), "bpp": 8 * len(data) / (w * h),
                       "psnr-rgb": psnr(rgb, decoded), "psnr-y": psnr_y(rgb, decoded)}
                for m in metrics:
                    row[registry.get(m).key] = _metric(m, weights_dir)(rgb, decoded)
                row["encoding_time"], row["decoding_time"] = encoding_time, t2 - t1
                rows.append(row)
        except LicodecError as e:
            raise LicodecError(f"{unit.name}, {codec.name} at quality {q:g}: {e}") from None
        except Exception as e:  # a codec library failing on one image: say where, in one line
            raise LicodecError(f"{unit.name}, {codec.name} at quality {q:g}: {type(e).__name__}: {e}") from None
    return rows


# ---------------------------------------------------------------- CSV store
def _quality_key(q) -> str:
    return repr(float(q))


def read_rows(csv_path: Path, columns: list[str]) -> list[dict]:
    """Rows already measured. A last line cut short by an interruption is dropped from the file."""
    if not csv_path.exists():
        return []
    raw = csv_path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        raw = raw[: raw.rfind(b"\n") + 1]
        csv_path.write_bytes(raw)
    reader = csv.DictReader(io.StringIO(raw.decode()))
    if reader.fieldnames is None:
        return []
    if list(reader.fieldnames) != columns:
        raise LicodecError(f"{csv_path} holds other columns ({', '.join(reader.fieldnames)}); "
                           "use another --out folder or the same --metrics as that run")
    return list(reader)


# ---------------------------------------------------------------- aggregation
def aggregate(rows: list[dict], codec: EvalCodec, version: str, qualities: tuple[float, ...],
              images: list[str], metric_keys: list[str], dataset_label: str) -> Curve:
    """Mean over images, per quality, of bpp and every metric; every image must be present."""
    by_q: dict[str, dict[str, dict]] = {}
    for r in rows:
        if r["codec"] == codec.name and r["version"] == version:
            by_q.setdefault(r["quality"], {})[r["image"]] = r
    results: dict[str, list] = {"quality": [], "bpp": []}
    for key in metric_keys + TIME_COLUMNS:
        results[key] = []
    for q in qualities:
        got = by_q.get(_quality_key(q), {})
        missing = [name for name in images if name not in got]
        if missing:
            raise LicodecError(f"{codec.name} at quality {q:g} lacks {len(missing)} images (e.g. {missing[0]})")
        results["quality"].append(q)
        for key in ["bpp"] + metric_keys + TIME_COLUMNS:
            values = [float(got[name][key]) for name in images]
            results[key].append(float(np.mean(values)))
    if any(not math.isfinite(v) for key in metric_keys for v in results[key]):
        raise LicodecError(f"{codec.name}: a mean metric is not finite (a lossless point?); drop that quality")
    return Curve(name=codec.label, results=results, dataset=dataset_label)


# ---------------------------------------------------------------- driver
def evaluate(dataset: Dataset, codec_names: list[str], out_dir: str | Path,
             qualities: dict[str, tuple[float, ...]] | None = None, metrics: tuple[str, ...] = ("ms-ssim",),
             jobs: int = 1, weights_dir: str | None = None, progress: bool = True) -> dict[str, Path]:
    """Measure ``codec_names`` on ``dataset``; returns ``{codec name: results JSON path}``.

    qualities: per codec name, the settings to run (default: the codec's own sweep).
    metrics: names of :func:`licodec.eval.metric_registry.names` ``(selectable=True)``, e.g.
        ``ms-ssim``, ``lpips``, ``ssimulacra2``, ``cvvdp``, ``nlpd``, ``vif``, ``swd`` (aliases
        accepted; PSNR is always measured).
    jobs: parallel worker processes (1 runs in this process).
    """
    metrics = tuple(registry.get(m, selectable=True).name for m in metrics)
    if len(set(codec_names)) != len(codec_names):
        raise LicodecError("a codec is named twice")
    if not codec_names:
        raise LicodecError("no codec to evaluate")
    metrics = tuple(dict.fromkeys(metrics))
    codecs = [resolve_codec(n) for n in codec_names]
    sweep = {}
    for c in codecs:
        qs = tuple(float(q) for q in (qualities or {}).get(c.name, c.qualities))
        if not qs:
            raise LicodecError(f"{c.name}: no quality to run")
        for q in qs:
            c.check_quality(q)
        sweep[c.name] = tuple(dict.fromkeys(qs))
    for m in metrics:  # fail now, not after an hour, when a network's weights are missing
        _metric(m, weights_dir)
    versions = {c.name: c.version() for c in codecs}

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise LicodecError(f"{out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / CSV_NAME
    columns = columns_for(metrics)
    rows = read_rows(csv_path, columns)
    done = {(r["image"], r["codec"], r["version"], r["quality"]) for r in rows}

    names = [p.relative_to(dataset.root).as_posix() if p.is_relative_to(dataset.root) else p.name
             for p in dataset.paths]
    units = []
    for path, name in zip(dataset.paths, names):
        shared: dict[tuple, list[EvalCodec]] = {}  # codecs writing the same file at the same missing qualities
        for c in codecs:
            todo = tuple(q for q in sweep[c.name] if (name, c.name, versions[c.name], _quality_key(q)) not in done)
            if todo:
                shared.setdefault((c.encoder_key(), todo), []).append(c)
        units += [Unit(str(path), name, tuple(group), todo) for (_, todo), group in shared.items()]

    jobs = max(1, min(jobs, len(units) or 1))
    _run_units(units, metrics, weights_dir, jobs, csv_path, columns, progress)

    rows = read_rows(csv_path, columns)
    metric_keys = ["psnr-rgb", "psnr-y"] + [registry.get(m).key for m in metrics]
    written = {}
    for c in codecs:
        curve = aggregate(rows, c, versions[c.name], sweep[c.name], names, metric_keys, dataset.label)
        description = (f"{c.label} on {dataset.label}: mean over images of bpp (real bytes) and metrics; "
                       f"{versions[c.name]}; times in seconds per image"
                       + (f" with {jobs} parallel processes" if jobs > 1 else ""))
        written[c.name] = write_json(out / f"{c.name}.json", curve_to_dict(curve, description, codec=c.name))
    return written


def _run_units(units, metrics, weights_dir, jobs, csv_path, columns, progress) -> None:
    if not units:
        return
    from tqdm import tqdm

    bar = tqdm(total=len(units), unit="image", desc="licodec eval", disable=not progress, leave=False)
    try:
        if jobs == 1:
            for unit in units:
                write_rows(csv_path, columns, run_unit(unit, metrics, weights_dir))
                bar.update(1)
            return
        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                                 initializer=_init_worker, initargs=(threads,)) as pool:
            futures = [pool.submit(run_unit, u, metrics, weights_dir) for u in units]
            try:
                for fut in as_completed(futures):
                    write_rows(csv_path, columns, fut.result())
                    bar.update(1)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    except BrokenProcessPool:
        raise LicodecError("a worker process died (out of memory?); rerun the same command to resume") from None
    finally:
        bar.close()
