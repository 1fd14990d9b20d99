"""Rate-distortion curves as JSON files, in CompressAI's results format.

A curve file looks like CompressAI's published results (so those load the same way)::

    {"name": "JPEG 4:2:0", "description": "...",
     "results": {"bpp": [...], "psnr-rgb": [...], "ms-ssim-rgb": [...], ...}}

Every list in ``results`` has one value per point; ``bpp`` is required. licodec adds
``dataset`` and ``codec`` at the top level and ``quality`` (the codec's knob) in ``results``.
Metric keys, directions and units come from :mod:`licodec.eval.metric_registry`. MS-SSIM
is stored as a value in [0, 1] and compared in dB, ``-10 log10(1 - MS-SSIM)``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from licodec.errors import LicodecError
from licodec.eval import metric_registry as registry


def metric_key(name: str) -> str:
    """The results key of a metric name or alias (``psnr`` -> ``psnr-rgb``, ``ms-ssim`` -> ``ms-ssim-rgb``)."""
    return registry.get(name).key


def lower_is_better(key: str) -> bool:
    """True for distances (LPIPS, DISTS, NLPD, SWD): BD figures use their negation."""
    spec = registry.by_key(key)
    return spec is not None and not spec.higher_is_better


def to_db(key: str, values: list[float]) -> list[float]:
    """The values as plotted and compared: MS-SSIM in dB, the others unchanged."""
    spec = registry.by_key(key)
    if spec is not None and spec.in_db:
        return [math.inf if v >= 1 else -10 * math.log10(1 - v) for v in values]
    return list(values)


@dataclass(frozen=True)
class Curve:
    """One codec's RD points: ``bpp`` and any metrics, one value per point."""

    name: str
    results: dict
    source: str = ""
    dataset: str = ""

    @property
    def bpp(self) -> list[float]:
        return self.results["bpp"]

    def has(self, key: str) -> bool:
        return key in self.results

    def points(self, key: str) -> tuple[list[float], list[float]]:
        """``(bpp, quality)`` for metric ``key``, the quality in the domain BD figures use
        (MS-SSIM in dB; lower-is-better metrics negated so that higher is better)."""
        if key not in self.results:
            raise LicodecError(f"{self.source or self.name} has no {key!r} values "
                               f"(it has: {', '.join(k for k in self.results if k != 'bpp')})")
        values = to_db(key, self.results[key])
        if lower_is_better(key):
            values = [-v for v in values]
        return list(self.bpp), values


def _numbers(values, where: str) -> list[float]:
    if not isinstance(values, list):
        raise LicodecError(f"{where} must be a list of numbers")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise LicodecError(f"{where} holds a non-numeric or non-finite value: {v!r}")
        out.append(float(v))
    return out


def curve_from_dict(data, source: str = "") -> Curve:
    """Validate a parsed results JSON; raises :class:`LicodecError` with one line on any defect."""
    where = source or "results"
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise LicodecError(f"{where}: not a results file (expected an object with a 'results' object)")
    res = data["results"]
    if "bpp" not in res:
        raise LicodecError(f"{where}: results have no 'bpp'")
    results = {}
    n = None
    for key, values in res.items():
        if key == "quality":
            results[key] = values if isinstance(values, list) else []
            continue
        nums = _numbers(values, f"{where}: results[{key!r}]")
        if n is None:
            n = len(nums)
        elif len(nums) != n:
            raise LicodecError(f"{where}: results[{key!r}] has {len(nums)} values, 'bpp' has {len(res['bpp'])}")
        results[key] = nums
    if not results["bpp"]:
        raise LicodecError(f"{where}: the curve is empty")
    if any(b <= 0 for b in results["bpp"]):
        raise LicodecError(f"{where}: bpp values must be positive")
    name = data.get("name") or (Path(source).stem if source else "curve")
    return Curve(name=str(name), results=results, source=source, dataset=str(data.get("dataset", "")))


def load_curve(path: str | Path) -> Curve:
    p = Path(path)
    if not p.is_file():
        raise LicodecError(f"no such file: {p}")
    try:
        data = json.loads(p.read_text())
    except UnicodeDecodeError:
        raise LicodecError(f"{p} is not a text JSON file") from None
    except json.JSONDecodeError as e:
        raise LicodecError(f"{p} is not valid JSON (line {e.lineno}: {e.msg})") from None
    return curve_from_dict(data, str(p))


def curve_to_dict(curve: Curve, description: str = "", codec: str = "") -> dict:
    out = {"name": curve.name, "description": description}
    if curve.dataset:
        out["dataset"] = curve.dataset
    if codec:
        out["codec"] = codec
    out["results"] = curve.results
    return out


def write_json(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` atomically (temporary file, then rename)."""
    from licodec.image_io import atomic_write

    return atomic_write(path, (json.dumps(payload, indent=2) + "\n").encode(), force=True)


def write_rows(csv_path: Path, columns: list[str], rows: list[dict], append: bool = True) -> None:
    """Write ``rows`` to ``csv_path`` (a header first if the file is new or ``append`` is False),
    floats as ``repr`` (exact), then fsync: an interrupted run keeps every row it finished."""
    new = not append or not csv_path.exists() or csv_path.stat().st_size == 0
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    if new:
        writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    with open(csv_path, "a" if append else "w") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())
