"""The one table of quality metrics: name, results key, direction, unit, minimum size, builder.

``licodec eval -m``, ``licodec bdrate --metric``, ``licodec plot --metrics``, the CSV/JSON
columns, the BD-rate sign and the axis labels are all read from :data:`METRICS`. This
module imports neither torch nor numpy (``bdrate`` and ``plot`` must stay light): a
metric's code is imported only when :func:`build` is called.

A built metric is ``metric(ref, dist) -> float`` on two ``numpy.uint8`` arrays of shape
``(H, W, 3)`` (sRGB, reference first); it raises :class:`~licodec.errors.LicodecError`
for images smaller than the entry's ``min_side`` on their smaller side.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Optional

from licodec.errors import LicodecError


@dataclass(frozen=True)
class MetricSpec:
    """One metric.

    name: what users type (``-m NAME``); key: the column in per_image.csv and the key in
    results JSON files; label: for axes and tables; higher_is_better: its direction;
    unit: of the value as plotted and compared ("dB", "JOD", "" for a plain index);
    min_side: smallest image side accepted; builder: ``"module:attribute"``, imported on
    :func:`build`; factory: the attribute is ``f(weights_dir=None) -> metric`` rather
    than the metric itself; in_db: stored in [0, 1], plotted and compared as
    ``-10 log10(1 - x)`` dB (MS-SSIM); always: measured by every ``licodec eval`` run
    (PSNR), so not selectable with ``-m``; aliases: other accepted spellings.
    """

    name: str
    key: str
    label: str
    higher_is_better: bool
    unit: str
    min_side: int
    builder: str
    factory: bool = False
    in_db: bool = False
    always: bool = False
    aliases: tuple[str, ...] = ()


_P = "licodec.eval.perceptual"
_PYR = "licodec.eval.pyramid_metrics"
_EXT = "licodec.eval.external_metrics"

#: name -> spec, in the order shown to users. Minimum sides: MS-SSIM's 4 halvings with an
#: 11-px window; HaarPSI's 16-px Haar kernel; the LPIPS trunks' convolutions; SSIMULACRA 2's
#: first scale (8 px); ColorVideoVDP's pyramid; NLPD's 1/16 band >= 2 px; piq's VIFp windows
#: (41 px); SWD's coarsest level (16 px, as ProGAN).
METRICS: dict[str, MetricSpec] = {s.name: s for s in (
    MetricSpec("psnr", "psnr-rgb", "PSNR (RGB)", True, "dB", 1, "licodec.eval.metrics:psnr", always=True,
               aliases=("psnr-rgb",)),
    MetricSpec("psnr-y", "psnr-y", "PSNR (Y)", True, "dB", 1, "licodec.eval.metrics:psnr_y", always=True),
    MetricSpec("ms-ssim", "ms-ssim-rgb", "MS-SSIM", True, "dB", 161, f"{_P}:ms_ssim", in_db=True,
               aliases=("ms-ssim-rgb", "msssim")),
    MetricSpec("haarpsi", "haarpsi", "HaarPSI", True, "", 16, f"{_P}:haarpsi"),
    MetricSpec("lpips", "lpips", "LPIPS", False, "", 31, f"{_P}:lpips_alex", factory=True,
               aliases=("lpips-alex",)),
    MetricSpec("lpips-vgg", "lpips-vgg", "LPIPS-VGG", False, "", 16, f"{_P}:lpips_vgg", factory=True),
    MetricSpec("dists", "dists", "DISTS", False, "", 1, f"{_P}:dists_metric", factory=True),
    MetricSpec("ssimulacra2", "ssimulacra2", "SSIMULACRA 2", True, "score", 8, f"{_EXT}:ssimulacra2"),
    MetricSpec("cvvdp", "cvvdp", "ColorVideoVDP", True, "JOD", 16, f"{_EXT}:CVVDP", factory=True,
               aliases=("colorvideovdp",)),
    MetricSpec("nlpd", "nlpd", "NLPD", False, "", 32, f"{_PYR}:nlpd"),
    MetricSpec("vif", "vif", "VIF (pixel)", True, "", 41, f"{_P}:vif", aliases=("vifp", "vif-p")),
    MetricSpec("swd", "swd", "SWD", False, "x1e3", 16, f"{_PYR}:swd", aliases=("sliced-wasserstein",)),
)}

#: Metrics of video evaluation only (``licodec eval --video``, :mod:`licodec.eval.video_runner`): in
#: results files and known to ``bdrate`` and ``plot``, but not measured per image, so neither
#: selectable with ``-m`` nor in :func:`names` unless asked for. ``psnr-yuv`` is the (6 Y + U + V) / 8
#: mean of the per-plane PSNRs of 8-bit YUV 4:2:0 (:func:`licodec.video.color.yuv420_psnr`); its
#: builder converts RGB with BT.601 limited range. (In video results ``psnr-y`` is the Y plane's PSNR.)
VIDEO_METRICS: dict[str, MetricSpec] = {s.name: s for s in (
    MetricSpec("psnr-yuv", "psnr-yuv", "PSNR (YUV 6:1:1)", True, "dB", 1, "licodec.eval.video_metrics:psnr_yuv",
               always=True, aliases=("yuv-psnr",)),
)}

_LOOKUP = {}
for _s in (*METRICS.values(), *VIDEO_METRICS.values()):
    for _alias in (_s.name, _s.key) + _s.aliases:
        _LOOKUP[_alias] = _s
_BY_KEY = {s.key: s for s in (*METRICS.values(), *VIDEO_METRICS.values())}


def names(selectable: bool = False, video: bool = False) -> list[str]:
    """All image metric names; with ``selectable``, those ``licodec eval -m`` takes (PSNR is always
    measured); with ``video``, the video-only ones (:data:`VIDEO_METRICS`) after them."""
    image = [s.name for s in METRICS.values() if not (selectable and s.always)]
    return image + (list(VIDEO_METRICS) if video else [])


def get(name: str, selectable: bool = False) -> MetricSpec:
    """The spec for a name, results key or alias (case, ``_`` and ``-`` do not matter)."""
    spec = _LOOKUP.get(str(name).strip().lower().replace("_", "-"))
    if selectable and spec is not None and spec.name in VIDEO_METRICS:
        raise LicodecError(f"{spec.name} is a video metric: licodec eval --video measures it, not the image eval")
    if spec is None or (selectable and spec.always):
        extra = "; PSNR is always measured" if spec is not None else ""
        raise LicodecError(f"unknown metric {name!r}; valid: {', '.join(names(selectable))}{extra}")
    return spec


def by_key(key: str) -> Optional[MetricSpec]:
    """The spec whose results key is ``key``, or None (files may hold other columns)."""
    return _BY_KEY.get(key)


def higher_is_better(name: str) -> bool:
    return get(name).higher_is_better


def axis_label(key: str) -> str:
    """``"MS-SSIM [dB]"``, ``"LPIPS (lower is better)"``...; the key itself when unknown."""
    spec = by_key(key)
    if spec is None:
        return key
    unit = f" [{spec.unit}]" if spec.unit else ""
    return spec.label + unit + ("" if spec.higher_is_better else " (lower is better)")


def build(name: str, weights_dir=None) -> Callable:
    """Import and build a metric: ``metric(ref, dist) -> float``. Networks are built here,
    once; reuse the result across images. ``weights_dir`` goes to factories (LPIPS/DISTS
    backbones); the others ignore it."""
    spec = get(name)
    module, _, attr = spec.builder.partition(":")
    target = getattr(importlib.import_module(module), attr)
    return target(weights_dir=weights_dir) if spec.factory else target


def check_pair(ref, dist, name: str) -> None:
    """Raise LicodecError unless ``ref`` and ``dist`` are same-shape ``(H, W, 3)`` uint8
    arrays at least ``min_side`` of metric ``name`` on their smaller side."""
    spec = get(name)
    check_arrays(ref, dist, spec.label, spec.min_side)


def check_arrays(ref, dist, label: str, min_side: int = 1) -> None:
    """:func:`check_pair` with an explicit metric label and minimum side."""
    import numpy as np

    for which, a in (("reference", ref), ("distorted", dist)):
        if not isinstance(a, np.ndarray) or a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
            desc = f"{a.dtype} array of shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
            raise LicodecError(f"{label}: the {which} image must be a uint8 (H, W, 3) RGB array, got {desc}")
    if ref.shape != dist.shape:
        raise LicodecError(f"{label}: images differ in size: reference {ref.shape[1]}x{ref.shape[0]}, "
                           f"distorted {dist.shape[1]}x{dist.shape[0]}")
    h, w = ref.shape[:2]
    if min(h, w) < min_side:
        raise LicodecError(f"{label} needs images at least {min_side} px on their smaller side, got {w}x{h}")
