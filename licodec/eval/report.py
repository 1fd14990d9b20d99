"""RD plots (matplotlib) and BD-rate tables (markdown) from results curves."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

from licodec.errors import LicodecError
from licodec.eval.bdrate import bd_psnr, bd_rate
from licodec.eval.metric_registry import axis_label, by_key
from licodec.eval.results import Curve, lower_is_better


def bd_figures(anchor: Curve, test: Curve, key: str, method: str = "pchip") -> tuple[float, float, list[str]]:
    """``(BD-rate %, BD-quality, warnings)`` of ``test`` against ``anchor`` on metric ``key``.

    BD-rate is negative when ``test`` needs fewer bits for the same quality, whatever the
    metric's direction (lower-is-better metrics are negated before interpolation).
    BD-quality is the mean difference of the metric at equal rate in its own units and
    direction (MS-SSIM in dB): positive is better for PSNR or SSIMULACRA 2, negative is
    better for LPIPS, NLPD or SWD.
    """
    ra, da = anchor.points(key)
    rt, dt = test.points(key)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rate = bd_rate(ra, da, rt, dt, method=method)
        dist = bd_psnr(ra, da, rt, dt, method=method)
    if lower_is_better(key):
        dist = -dist
    return rate, dist, [str(w.message) for w in caught]


def _cell(fn) -> tuple[str, list[str]]:
    try:
        rate, _, notes = fn()
    except LicodecError as e:
        return "n/a", [str(e)]
    return f"{rate:+.1f}%" + (" *" if notes else ""), notes


def bd_table(curves: list[Curve], keys: list[str], anchor: Curve | None = None, test: Curve | None = None,
             method: str = "pchip") -> str:
    """A markdown table of BD-rates (pchip in the log-rate domain by default).

    With ``anchor`` (default: the first curve): one row per other curve, its BD-rate against
    the anchor. With ``test``: one row per other curve used as anchor, the BD-rate of ``test``
    against it. Negative means fewer bits for the same quality. ``*`` marks a small overlap.
    """
    cols = [k for k in keys if any(c.has(k) for c in curves)]
    if not cols:
        raise LicodecError(f"no curve has any of the metrics {', '.join(keys)}")
    head = ["anchor" if test else "codec"] + [f"BD-rate ({by_key(k).label if by_key(k) else k})" for k in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes: list[str] = []
    if test is not None:
        pairs = [(c, test, c.name) for c in curves if c is not test]
    else:
        anchor = anchor or curves[0]
        pairs = [(anchor, c, c.name) for c in curves if c is not anchor]
    for a, t, label in pairs:
        cells = []
        for k in cols:
            if not (a.has(k) and t.has(k)):
                cells.append("–")
                continue
            text, n = _cell(lambda: bd_figures(a, t, k, method))
            cells.append(text)
            notes += [f"{label} ({k}): {x}" for x in n]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    what = (f"BD-rate of {test.name} against each anchor" if test is not None
            else f"BD-rate against {anchor.name}")
    caption = f"{what} ({method}, log-rate domain; negative = fewer bits at equal quality)."
    out = caption + "\n\n" + "\n".join(lines) + "\n"
    if notes:
        out += "\n" + "\n".join(f"* {n}" for n in dict.fromkeys(notes)) + "\n"
    return out


def plot_curves(curves: list[Curve], keys: list[str], out: str | Path, title: str = "", force: bool = False,
                max_bpp: float | None = None) -> Path:
    """One panel per metric in ``keys`` (those some curve has): quality against bpp, each curve
    as a line with markers (dashed when its name says "published"). ``max_bpp`` crops the
    rate axis (each curve keeps its first point beyond it). Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from licodec.eval.results import to_db

    cols = [k for k in keys if any(c.has(k) for c in curves)]
    if not cols:
        raise LicodecError(f"no curve has any of the metrics {', '.join(keys)}")
    out = Path(out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("png", "pdf", "svg"):
        raise LicodecError(f"plot output must end in .png, .pdf or .svg, got {out.name!r}")
    fig, axes = plt.subplots(1, len(cols), figsize=(6.4 * len(cols), 4.8), squeeze=False)
    for ax, key in zip(axes[0], cols):
        for i, c in enumerate(curves):
            if not c.has(key):
                continue
            ys = to_db(key, c.results[key])
            pts = sorted((b, y) for b, y in zip(c.bpp, ys) if math.isfinite(y))
            if max_bpp:
                beyond = [i for i, p in enumerate(pts) if p[0] > max_bpp]
                pts = pts[: beyond[0] + 1] if beyond else pts
            style = "--" if "published" in c.name.lower() else "-"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", markersize=3,
                    label=c.name, color=f"C{i % 10}")
        if max_bpp:
            ax.set_xlim(0, max_bpp)
            visible = [y for c in curves if c.has(key) for b, y in zip(c.bpp, to_db(key, c.results[key]))
                       if b <= max_bpp and math.isfinite(y)]
            if visible:
                pad = 0.03 * (max(visible) - min(visible) or 1)
                ax.set_ylim(min(visible) - pad, max(visible) + pad)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(axis_label(key))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        if title:
            ax.set_title(title)
    return save_figure(fig, out, fmt, 120, force)


def save_figure(fig, out: Path, fmt: str, dpi: int, force: bool) -> Path:
    """Lay out ``fig``, write it to ``out`` atomically (refusing to overwrite unless ``force``)
    and close it."""
    import matplotlib.pyplot as plt

    from licodec.image_io import atomic_write

    fig.tight_layout()
    try:
        atomic_write(out, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi), force=force)
    finally:
        plt.close(fig)
    return out
