"""The extreme-low-rate report of the vqgan codec: docs/vq.md and docs/vq_grid.png.

    python benchmarks/vq_report.py [--weights vqgan|DIR] [--jobs 1] [--limit N] [--grid kodim23.png]

1. ``licodec eval`` on Kodak (24) and the CLIC subset (8), in one run per set: every vqgan rung,
   hyperprior-vr at its lowest quality, JPEG 4:2:0, WebP and AVIF at their lowest settings (and
   a few more low ones); PSNR, MS-SSIM, SSIMULACRA 2, ColorVideoVDP and SWD. Results (resumable)
   in ``benchmarks/results/vq/<set>/``; bpp counts every byte of each file.
2. The issue's targets, read from those results: the cheapest rung's bpp on Kodak, and, at the
   lowest setting of AVIF and of WebP, whether the vqgan rung that spends the most bits while still
   spending fewer scores better SSIMULACRA 2 and SWD.
3. The index prior's saving against ``log2(K)`` bits per index, per rung: the payload bytes of
   each Kodak file against the bit-packed size of the same indices.
4. A picture grid at about 0.03 bpp: a crop of one Kodak image, the original and each codec at the
   setting whose bpp on that image is nearest 0.03 (its lowest, when it cannot get that low).
5. ``benchmarks/results/vq_loss.json`` (``benchmarks/vq_loss.py``), when present: quality against
   the share of lost indices.
Writes ``benchmarks/results/vq/summary.json`` and ``docs/vq.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import KODAK, REPO, RESULTS, SHARED, machine, read_rgb, write_json  # noqa: E402
from licodec import api  # noqa: E402
from licodec.cli.main import main as licodec_main  # noqa: E402
from licodec.codec.vq import packed_length  # noqa: E402
from licodec.eval.anchors import get_anchor  # noqa: E402
from licodec.eval.codecs import resolve_codec  # noqa: E402
from licodec.eval.results import load_curve, to_db  # noqa: E402
from licodec.zoo.registry import read_weights_config  # noqa: E402

SETS = {"Kodak (24)": ("kodak", KODAK), "CLIC subset (8)": ("clic", SHARED / "data" / "clic")}
ANCHOR_SWEEPS = {"jpeg420": (1, 5, 10), "webp": (0, 2, 5), "avif": (0, 5, 10)}
BASELINE = ("hyperprior-vr", 1)
METRICS = ["ms-ssim", "ssimulacra2", "cvvdp", "swd"]
KEYS = ["psnr-rgb", "ms-ssim-rgb", "ssimulacra2", "cvvdp", "swd"]
HEADS = {"psnr-rgb": "PSNR dB", "ms-ssim-rgb": "MS-SSIM dB", "ssimulacra2": "SSIMULACRA 2 ↑", "cvvdp": "CVVDP JOD ↑",
         "swd": "SWD ×1e3 ↓"}
GRID_BPP = 0.03
CROP = 288
OUT = RESULTS / "vq"
DOCS = REPO / "docs"


def _vq_spec(weights: str) -> tuple[str, str, list[int]]:
    """(codec argument for licodec eval, label, qualities) of the vqgan weights."""
    if Path(weights).is_dir():
        config = read_weights_config(Path(weights))["config"]
        return f"vqgan-eval={weights}", "vqgan-eval", list(range(1, len(config["rungs"]) + 1))
    return weights, weights, list(range(1, len(api.load(weights).config.rungs) + 1))


def _run_eval(set_name: str, root: Path, vq: str, vq_label: str, vq_q: list[int], jobs: int, limit: int) -> dict:
    out = OUT / set_name
    quality = [f"{vq_label}={','.join(map(str, vq_q))}", f"{BASELINE[0]}={BASELINE[1]}"]
    quality += [f"{name}={','.join(map(str, q))}" for name, q in ANCHOR_SWEEPS.items()]
    argv = ["eval", str(root), "-c", vq, BASELINE[0], *ANCHOR_SWEEPS, "-m", *METRICS, "-j", str(jobs),
            "--out", str(out), "--no-progress"]
    for q in quality:
        argv += ["-q", q]
    if limit:
        argv += ["--limit", str(limit)]
    if licodec_main(argv) != 0:
        raise SystemExit(f"licodec eval failed on {root}")
    return {name: load_curve(out / f"{name}.json") for name in [vq_label, BASELINE[0], *ANCHOR_SWEEPS]}


def _points(curve) -> list[dict]:
    r = curve.results
    rows = []
    for i, q in enumerate(r["quality"]):
        row = {"quality": q, "bpp": r["bpp"][i]}
        for k in KEYS:
            if k in r:
                row[k] = to_db(k, [r[k][i]])[0]
        rows.append(row)
    return sorted(rows, key=lambda row: row["bpp"])


def _table(points: dict, vq_label: str, rungs: list[int]) -> str:
    head = ["codec", "setting", "bpp"] + [HEADS[k] for k in KEYS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rows in points.items():
        for row in rows:
            setting = (f"K={rungs[int(row['quality']) - 1]} (q{row['quality']:g})" if name == vq_label
                       else f"q{row['quality']:g}")
            cells = [name, setting, f"{row['bpp']:.4f}"] + [f"{row[k]:.2f}" if k in row else "–" for k in KEYS]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _targets(points: dict, vq_label: str) -> dict:
    """The issue's targets on one set: VQ at its cheapest, and VQ against each anchor's lowest setting."""
    vq = points[vq_label]
    out = {"lowest_vq_bpp": vq[0]["bpp"], "against": {}}
    for name in ("avif", "webp"):
        lowest = points[name][0]  # smallest files of the sweep (the lowest setting is in it)
        cheaper = [row for row in vq if row["bpp"] < lowest["bpp"]]
        entry = {"anchor_setting": lowest["quality"], "anchor_bpp": lowest["bpp"],
                 "anchor_ssimulacra2": lowest.get("ssimulacra2"), "anchor_swd": lowest.get("swd")}
        if cheaper:
            best = cheaper[-1]
            entry.update(vq_quality=best["quality"], vq_bpp=best["bpp"], vq_ssimulacra2=best.get("ssimulacra2"),
                         vq_swd=best.get("swd"))
            entry["holds"] = bool(best["ssimulacra2"] > lowest["ssimulacra2"] and best["swd"] < lowest["swd"])
        else:
            entry["holds"] = False
        out["against"][name] = entry
    return out


def _prior_saving(model, paths: list[Path]) -> dict:
    """Per rung: payload bytes with the prior against bit-packed indices (log2 K bits each)."""
    from licodec.codec.base import tile_prefix, tiles

    out = {}
    for q in range(1, len(model.config.rungs) + 1):
        coded = packed = 0
        for path in paths:
            x = torch.from_numpy(read_rgb(path)).permute(2, 0, 1)[None].float().div(255)
            bs = model.compress(x, q)
            grid = list(tiles(*x.shape[-2:], model.config.tile))
            for i, (_, _, th, tw) in enumerate(grid):
                coded += len(bs.stream(tile_prefix(i, len(grid)) + "idx"))
                packed += packed_length(math.prod(model.grid_shape(th, tw)), model.bits_per_index(q))
        size = model.config.rungs[q - 1]
        out[str(size)] = {"quality": q, "bits_per_index": coded / packed * math.log2(size) if packed else None,
                          "log2_k": math.log2(size), "saving": 1 - coded / packed}
        print(f"prior K={size}: saving {out[str(size)]['saving']:.1%}", flush=True)
    return out


def _nearest(codec_name: str, rgb: np.ndarray, settings) -> tuple[float, float, np.ndarray]:
    """(setting, bpp, decoded) of the setting whose bpp is nearest GRID_BPP (ties: the smaller bpp)."""
    codec = resolve_codec(codec_name)
    best = None
    for s in settings:
        data = codec.encode(rgb, s)
        bpp = 8 * len(data) / (rgb.shape[0] * rgb.shape[1])
        key = (abs(bpp - GRID_BPP), bpp)
        if best is None or key < best[0]:
            best = (key, s, bpp, data)
    _, s, bpp, data = best
    return s, bpp, codec.decode(data)


def _grid(image: Path, vq: str, vq_label: str, rungs: list[int], out: Path) -> list[dict]:
    from PIL import Image, ImageDraw

    rgb = read_rgb(image)
    h, w = rgb.shape[:2]
    top, left = max(0, (h - CROP) // 2), max(0, (w - CROP) // 2)
    panels = [("original", None, 24.0, rgb)]
    for name, label, settings in ((vq, "vqgan", range(1, len(rungs) + 1)), (BASELINE[0], BASELINE[0], [BASELINE[1]]),
                                  ("avif", "AVIF", range(0, 31)), ("webp", "WebP", range(0, 31))):
        s, bpp, dec = _nearest(name, rgb, settings)
        setting = f"K={rungs[int(s) - 1]}" if label == "vqgan" else f"q{s:g}"
        panels.append((f"{label} {setting}", s, bpp, dec))
    pad, text_h = 6, 18
    sheet = Image.new("RGB", (len(panels) * (CROP + pad) + pad, CROP + text_h + 2 * pad), "white")
    draw = ImageDraw.Draw(sheet)
    rows = []
    for i, (label, s, bpp, img) in enumerate(panels):
        x0 = pad + i * (CROP + pad)
        sheet.paste(Image.fromarray(img[top : top + CROP, left : left + CROP]), (x0, pad))
        caption = label if s is None else f"{label}: {bpp:.3f} bpp"
        draw.text((x0, pad + CROP + 3), caption, fill="black")
        rows.append({"panel": label, "setting": s, "bpp": bpp})
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(f"wrote {out}")
    return rows


def _loss_section() -> str:
    path = RESULTS / "vq_loss.json"
    if not path.exists():
        return "Not measured yet: run `python benchmarks/vq_loss.py --weights vqgan`."
    data = json.loads(path.read_text())
    metrics = data["metrics"]
    head = ["quality", "restorer", "lost", "index accuracy"] + metrics
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for q, methods in data["results"].items():
        for method, rates in methods.items():
            for rate, row in rates.items():
                cells = [q, method, f"{float(rate):.0%}", f"{row['index_accuracy']:.3f}" if row["index_accuracy"] is not None
                         else "–"] + [f"{row[m]:.3f}" if row.get(m) is not None else "–" for m in metrics]
                lines.append("| " + " | ".join(cells) + " |")
    crop = f", top-left {data['crop']}×{data['crop']} crops" if data.get("crop") else ""
    return (f"{len(data['images'])} Kodak images{crop}, weights {data['weights_sha256']}, losses of single "
            f"{data['unit']} drawn by a seeded RNG after the sub-streams decoded (`benchmarks/vq_loss.py`; "
            f"`licodec decode --lose F`). Means over the images.\n\n" + "\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="vqgan", help="zoo name or weights folder (a run's export)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="only the first N images of each set")
    parser.add_argument("--grid", default="kodim23.png", help="Kodak image of the picture grid")
    args = parser.parse_args()

    t0 = time.time()
    vq, vq_label, vq_q = _vq_spec(args.weights)
    if Path(args.weights).is_dir():
        model = api.load(read_weights_config(Path(args.weights))["codec"], args.weights)
    else:
        model = api.load(args.weights)
    rungs = list(model.config.rungs)
    summary = {"benchmark": "vq_report", "weights": args.weights, "weights_sha256": model.weights_sha256[:16],
               "rungs": rungs, "machine": machine(), "sets": {}}
    sections = []
    for title, (name, root) in SETS.items():
        curves = _run_eval(name, root, vq, vq_label, vq_q, args.jobs, args.limit)
        points = {label: _points(c) for label, c in curves.items()}
        targets = _targets(points, vq_label)
        summary["sets"][title] = {"points": points, "targets": targets}
        sections.append((title, name, _table(points, vq_label, rungs), targets))
    paths = sorted(KODAK.glob("*.png"))[: args.limit or None]
    summary["prior_saving"] = _prior_saving(model, paths) if model.prior is not None else None
    summary["grid"] = _grid(KODAK / args.grid, vq, vq_label, rungs, DOCS / "vq_grid.png")
    summary["wall_s"] = time.time() - t0
    write_json(OUT / "summary.json", summary)

    def target_lines(t: dict) -> str:
        lines = [f"- cheapest rung: {t['lowest_vq_bpp']:.4f} bpp (every byte of the file)"]
        for name, e in t["against"].items():
            anchor = f"{get_anchor(name).label} at its lowest setting (q{e['anchor_setting']:g}): {e['anchor_bpp']:.4f} bpp, " \
                     f"SSIMULACRA 2 {e['anchor_ssimulacra2']:.2f}, SWD {e['anchor_swd']:.2f}"
            if "vq_bpp" in e:
                lines.append(f"- {anchor}; vqgan q{e['vq_quality']:g}: {e['vq_bpp']:.4f} bpp, SSIMULACRA 2 "
                             f"{e['vq_ssimulacra2']:.2f}, SWD {e['vq_swd']:.2f}: **{'holds' if e['holds'] else 'fails'}**")
            else:
                lines.append(f"- {anchor}; no vqgan rung spends fewer bits: **fails**")
        return "\n".join(lines)

    saving = summary["prior_saving"]
    saving_text = "The weights have no index prior: every index costs log2(K) bits." if saving is None else (
        "| K | log2 K | bits per index with the prior | saving |\n|---|---|---|---|\n" + "\n".join(
            f"| {k} | {v['log2_k']:.0f} | {v['bits_per_index']:.3f} | {v['saving']:.1%} |" for k, v in saving.items()))
    grid_text = ", ".join(f"{r['panel']}" + (f" {r['bpp']:.3f} bpp" if r["setting"] is not None else "")
                          for r in summary["grid"])
    m = summary["machine"]
    body = "\n\n".join(
        f"## {title}\n\n{table}\n\nTargets:\n\n{target_lines(t)}\n\nRaw results: `benchmarks/results/vq/{name}/`."
        for title, name, table, t in sections)
    page = f"""# vqgan at extreme low bitrates

Regenerate with `python benchmarks/vq_report.py` (resumable `licodec eval` runs; this run took
{summary['wall_s']:.0f} s on {m['cores']} cores, reusing rows already measured). Weights
{summary['weights_sha256']} (rungs K = {', '.join(map(str, rungs))}); written {m['date']}, torch {m['torch']}.

Each table is one `licodec eval` run on the same images: bpp from the real bytes of every file
(the whole `.lic` container for licodec), metrics on the 8-bit decoded image, means over the
images. hyperprior-vr is shown at its lowest quality; JPEG 4:2:0, WebP (method 6) and AVIF
(speed 4) at their lowest settings and two more. SSIMULACRA 2 and ColorVideoVDP: higher is
better; SWD (sliced Wasserstein distance between Laplacian-pyramid patch distributions,
×1e3): lower is better, a measure of realism rather than fidelity.

![picture grid at about 0.03 bpp](vq_grid.png)

Picture grid: the centre {CROP}×{CROP} crop of Kodak {args.grid}, each codec at the setting whose
bpp on this whole image is nearest {GRID_BPP} (its lowest when it cannot get that low): {grid_text}.

{body}

## The index prior

Bits per index of the learned prior (a masked transformer, `licodec.codec.vq_prior`), from the
payload bytes of {len(paths)} Kodak files against the same indices bit-packed at log2(K) bits.

{saving_text}

## Lost indices

{_loss_section()}
"""
    DOCS.mkdir(exist_ok=True)
    (DOCS / "vq.md").write_text(page)
    print(f"wrote {DOCS / 'vq.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
