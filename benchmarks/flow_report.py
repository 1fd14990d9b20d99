"""The generative decoder's report: docs/flow.md and docs/flow_grid.png.

    python benchmarks/flow_report.py [--weights vqgan-flow|DIR] [--jobs 1] [--limit N]
                                     [--realism 0.5 1] [--qualities Q ...] [--clic-qualities Q ...]
                                     [--grid kodim23.png]

1. ``licodec eval`` on Kodak (24) and the CLIC subset (8), one run per set: the base codec at
   every quality the decoder was trained at (realism 0, which is exactly the base decode), and
   the same files decoded at each ``--realism``; PSNR, MS-SSIM, SSIMULACRA 2, ColorVideoVDP and
   SWD. Results (resumable) in ``benchmarks/results/flow/<set>/``. The bits are the same files'.
2. The issue's targets, per set and quality: SWD at realism 1 at least 30% below the base
   decode's with PSNR at most 2 dB lower; SWD and PSNR monotonic in the realism.
3. Decode time of one Kodak image (interleaved medians of 3, this machine's cores): the base decode, and
   the generative decode at 1, 2, 4 and 8 steps; seconds per step.
4. A picture grid: the original, the base decode, realism 0.5 and realism 1, with close-ups.
Writes ``benchmarks/results/flow/summary.json`` and ``docs/flow.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import KODAK, REPO, RESULTS, SHARED, interleaved_medians, machine, read_rgb, write_json  # noqa: E402
from licodec import api  # noqa: E402
from licodec.cli.main import main as licodec_main  # noqa: E402
from licodec.codec.flow import texture_code  # noqa: E402
from licodec.entropy.container import Bitstream  # noqa: E402
from licodec.eval.results import load_curve, to_db  # noqa: E402
from licodec.zoo.registry import read_weights_config  # noqa: E402

SETS = {"Kodak (24)": ("kodak", KODAK), "CLIC subset (8)": ("clic", SHARED / "data" / "clic")}
METRICS = ["ms-ssim", "ssimulacra2", "cvvdp", "swd"]
KEYS = ["psnr-rgb", "ms-ssim-rgb", "ssimulacra2", "cvvdp", "swd"]
HEADS = {"psnr-rgb": "PSNR dB", "ms-ssim-rgb": "MS-SSIM dB", "ssimulacra2": "SSIMULACRA 2 ↑", "cvvdp": "CVVDP JOD ↑",
         "swd": "SWD ×1e3 ↓"}
SWD_GAIN, PSNR_COST = 0.30, 2.0  # the targets
CROP, CLOSE = 256, 96
OUT = RESULTS / "flow"
DOCS = REPO / "docs"


def _spec(weights: str) -> tuple[str, str, torch.nn.Module]:
    """(codec argument for licodec eval, label, loaded decoder) of the generative decoder."""
    if Path(weights).is_dir():
        model = api.load(read_weights_config(Path(weights))["codec"], weights)
        return f"flow={weights}", "flow", model
    return weights, weights, api.load(weights)


def _run_eval(set_name: str, root: Path, spec: str, label: str, base: str, qualities: list[float],
              realisms: list[float], jobs: int, limit: int) -> dict:
    out = OUT / set_name
    qs = ",".join(f"{q:g}" for q in qualities)
    names = {0.0: base, **{r: label if r == 1.0 else f"{label}:r{r:g}" for r in realisms}}
    specs = [base] + [spec if r == 1.0 else f"{spec}:r{r:g}" for r in realisms]
    argv = ["eval", str(root), "-c", *specs, "-m", *METRICS, "-j", str(jobs), "--out", str(out), "--no-progress"]
    for name in names.values():
        argv += ["-q", f"{name}={qs}"]
    if limit:
        argv += ["--limit", str(limit)]
    if licodec_main(argv) != 0:
        raise SystemExit(f"licodec eval failed on {root}")
    return {r: load_curve(out / f"{name}.json") for r, name in names.items()}


def _points(curve) -> dict:
    """quality -> {bpp, metrics in their display units}."""
    r = curve.results
    return {f"{q:g}": {"bpp": r["bpp"][i], **{k: to_db(k, [r[k][i]])[0] for k in KEYS if k in r}}
            for i, q in enumerate(r["quality"])}


def _targets(points: dict) -> dict:
    """Per base quality: the SWD gain and PSNR cost of realism 1 over the base decode, and whether
    SWD falls and PSNR falls with every step up in realism."""
    realisms = sorted(points)
    out = {}
    for q in points[0.0]:
        rows = [points[r][q] for r in realisms]
        base, full = rows[0], points[max(realisms)][q]
        gain = 1 - full["swd"] / base["swd"]
        cost = base["psnr-rgb"] - full["psnr-rgb"]
        out[q] = {"bpp": base["bpp"], "swd_gain": gain, "psnr_cost_db": cost,
                  "holds": bool(gain >= SWD_GAIN and cost <= PSNR_COST),
                  "monotonic": bool(all(a["swd"] >= b["swd"] and a["psnr-rgb"] >= b["psnr-rgb"]
                                        for a, b in zip(rows, rows[1:])))}
    return out


def _speed(model, image: Path, quality: float) -> dict:
    rgb = read_rgb(image)
    x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float().div(255)
    bitstream = Bitstream.from_bytes(model.compress(x, quality).to_bytes())
    fns = {"base_s": lambda: model.decompress(bitstream, realism=0.0)}
    for steps in (1, 2, 4, 8):
        fns[f"steps_{steps}_s"] = lambda steps=steps: model.decompress(bitstream, realism=1.0, steps=steps)
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)  # the machine's cores, whatever the eval workers used
    try:
        out = {"image": image.name, "size": f"{rgb.shape[1]}x{rgb.shape[0]}", "quality": quality,
               "threads": torch.get_num_threads(), **interleaved_medians(fns, repeats=3)}
    finally:
        torch.set_num_threads(threads)
    out["per_step_s"] = (out["steps_8_s"] - out["steps_4_s"]) / 4
    print(f"decode {image.name}: base {out['base_s']:.2f} s, 4 steps {out['steps_4_s']:.2f} s, "
          f"{out['per_step_s']:.2f} s per step", flush=True)
    return out


def _grid(model, image: Path, quality: float, realisms: list[float], out: Path) -> list[dict]:
    from PIL import Image, ImageDraw

    from licodec.eval.metrics import psnr

    rgb = read_rgb(image)
    x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float().div(255)
    bitstream = Bitstream.from_bytes(model.compress(x, quality).to_bytes())
    bpp = 8 * len(bitstream.to_bytes()) / (rgb.shape[0] * rgb.shape[1])
    panels = [("original", rgb)]
    for r in [0.0, *realisms]:
        x_hat = model.decompress(bitstream, realism=r)
        dec = (x_hat[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        panels.append(("base decode" if r == 0 else f"realism {r:g}", dec))
    h, w = rgb.shape[:2]
    top, left = max(0, (h - CROP) // 2), max(0, (w - CROP) // 2)
    ct, cl = top + (CROP - CLOSE) // 2, left + (CROP - CLOSE) // 2
    pad, text_h = 6, 18
    sheet = Image.new("RGB", (len(panels) * (CROP + pad) + pad, 2 * CROP + text_h + 3 * pad), "white")
    draw = ImageDraw.Draw(sheet)
    rows = []
    for i, (label, img) in enumerate(panels):
        x0 = pad + i * (CROP + pad)
        sheet.paste(Image.fromarray(img[top : top + CROP, left : left + CROP]), (x0, pad))
        close = Image.fromarray(img[ct : ct + CLOSE, cl : cl + CLOSE]).resize((CROP, CROP), Image.NEAREST)
        sheet.paste(close, (x0, 2 * pad + CROP))
        value = None if label == "original" else psnr(img, rgb)
        draw.text((x0, 2 * pad + 2 * CROP + 3), label if value is None else f"{label}: {value:.2f} dB", fill="black")
        rows.append({"panel": label, "psnr": value})
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(f"wrote {out}")
    return [{"bpp": bpp, "quality": quality}, *rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="vqgan-flow", help="zoo name or weights folder (a run's export)")
    parser.add_argument("--realism", type=float, nargs="+", default=[0.5, 1.0],
                        help="realism values besides 0 (the base decode); 1 must be among them")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="only the first N images of each set")
    parser.add_argument("--grid", default="kodim23.png", help="Kodak image of the picture grid and the timing")
    parser.add_argument("--qualities", type=float, nargs="+", default=None,
                        help="base qualities to report (default: every integer the decoder was trained at)")
    parser.add_argument("--clic-qualities", type=float, nargs="+", default=None,
                        help="base qualities on the CLIC subset, whose images are 7x Kodak's (default: --qualities)")
    parser.add_argument("--reuse-speed", action="store_true",
                        help="take the decode times from the previous summary.json when it measured the same "
                             "weights and sampler settings on as many cores (for a rerun on a machine busy with training)")
    args = parser.parse_args()
    if 1.0 not in args.realism or any(not 0 < r <= 1 for r in args.realism):
        parser.error("--realism takes values in (0, 1], 1 among them")

    t0 = time.time()
    spec, label, model = _spec(args.weights)
    base = model.config.base
    lo, hi = model.quality_range
    qualities = args.qualities or [float(q) for q in range(int(lo), int(hi) + 1)]
    if any(not lo <= q <= hi for q in qualities):
        parser.error(f"--qualities must lie in the decoder's range {lo:g}-{hi:g}")
    realisms = sorted(set(args.realism))
    summary = {"benchmark": "flow_report", "weights": args.weights, "weights_sha256": model.weights_sha256[:16],
               "base": base, "base_weights": model.config.base_weights, "decode_settings": model.decode_settings,
               "machine": machine(), "sets": {}}
    sections = []
    for title, (name, root) in SETS.items():
        set_qualities = args.clic_qualities if name == "clic" and args.clic_qualities else qualities
        curves = _run_eval(name, root, spec, label, base, set_qualities, realisms, args.jobs, args.limit)
        points = {r: _points(c) for r, c in curves.items()}
        targets = _targets(points)
        encode = {label_r: dict(zip((f"{q:g}" for q in curves[r].results["quality"]), curves[r].results["encoding_time"]))
                  for label_r, r in (("base", 0.0), ("generative", 1.0))}
        summary["sets"][title] = {"points": {f"{r:g}": p for r, p in points.items()}, "targets": targets,
                                  "encode_s": encode}
        sections.append((title, name, points, targets))
    shown = qualities[(len(qualities) - 1) // 2]  # the grid's and the timing's quality: a middle one
    previous = json.loads((OUT / "summary.json").read_text()) if (OUT / "summary.json").is_file() else {}
    old_speed = previous.get("speed", {})
    if (args.reuse_speed and previous.get("weights_sha256") == summary["weights_sha256"]
            and previous.get("decode_settings") == summary["decode_settings"]
            and previous.get("machine", {}).get("cores") == summary["machine"]["cores"]
            and old_speed.get("image") == args.grid and old_speed.get("quality") == shown):
        summary["speed"] = {"measured": previous["machine"]["date"], **old_speed}
    else:
        if args.reuse_speed:
            print("no earlier decode times of these weights: measuring them", flush=True)
        summary["speed"] = {"measured": summary["machine"]["date"], **_speed(model, KODAK / args.grid, shown)}
    summary["grid"] = _grid(model, KODAK / args.grid, shown, realisms, DOCS / "flow_grid.png")
    summary["wall_s"] = time.time() - t0
    write_json(OUT / "summary.json", summary)

    def table(points: dict) -> str:
        head = ["base quality", "realism", "bpp"] + [HEADS[k] for k in KEYS]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for q in points[0.0]:
            for r in sorted(points):
                row = points[r][q]
                lines.append("| " + " | ".join([q, f"{r:g}", f"{row['bpp']:.4f}"]
                                                + [f"{row[k]:.2f}" if k in row else "–" for k in KEYS]) + " |")
        return "\n".join(lines)

    def target_lines(t: dict) -> str:
        return "\n".join(
            f"- q{q} ({e['bpp']:.3f} bpp): SWD {e['swd_gain']:+.1%} better at realism 1, PSNR {e['psnr_cost_db']:.2f} dB "
            f"lower: **{'holds' if e['holds'] else 'fails'}** (≥ {SWD_GAIN:.0%}, ≤ {PSNR_COST:g} dB); "
            f"monotonic in realism: {'yes' if e['monotonic'] else 'no'}" for q, e in t.items())

    s = summary["speed"]
    m = summary["machine"]
    body = "\n\n".join(f"## {title}\n\n{table(points)}\n\nTargets:\n\n{target_lines(t)}\n\n"
                       f"Raw results: `benchmarks/results/flow/{name}/`." for title, name, points, t in sections)
    grid = summary["grid"]
    command = " ".join(["python", "benchmarks/flow_report.py", *sys.argv[1:]])
    c = model.config
    code_bytes = len(texture_code(c, 1.0)) if c.texture_temperatures else 0
    texture = (", identical across a quality's rows" if not c.texture_temperatures else
               ": the realism-0 rows are the base codec's files; the generative decoder's files add the encoder's "
               "texture side information (the image's sampling temperature"
               + (f" and the gain of the generated residual, chosen among {len(c.texture_temperatures)} x "
                  f"{len(c.texture_gains)} candidates from {len(c.texture_temperatures)} samples"
                  if c.texture_gains else f", chosen by sampling {len(c.texture_temperatures)} candidates")
               + (f", then the best of {c.texture_draws} noise draws at that temperature" if c.texture_draws > 1 else "")
               + (f", then the deviation of a synthesized grain, {len(c.texture_grains)} candidates "
                  f"({', '.join(f'{s:g}' for s in c.texture_grains)} code values) added to the whole image's decode at that temperature"
                  if c.texture_grains else "")
               + f"; {('one byte', 'two bytes', 'three bytes', 'four bytes')[code_bytes - 1]} plus its sub-stream's name and length, "
               f"{9 + code_bytes} bytes), which their bpp counts")
    encode_lines = "\n".join(
        f"- {title}: " + ", ".join(f"q{q} {e['base'][q]:.1f} s → {e['generative'][q]:.1f} s"
                                   for q in e["base"])
        for title, e in ((t, summary["sets"][t]["encode_s"]) for t in summary["sets"]))
    page = f"""# Generative decoding: {label} on {base} files

Regenerated with `{command}` (resumable `licodec eval` runs; this run took
{summary['wall_s']:.0f} s on {m['cores']} cores). Decoder weights {summary['weights_sha256']}, trained on
{base} weights {summary['base_weights']}; written {m['date']}, torch {m['torch']}.

The same `.lic` files decoded three ways: realism 0 (exactly the base decode), and the generative
decoder at each realism (`licodec decode --realism R`; the sampler's defaults from config.json:
{summary['decode_settings']}, the last being the octaves of the generated residual's low band
that are removed). Bits are the files' real
bytes{texture}. SSIMULACRA 2 and ColorVideoVDP: higher is better; SWD
(sliced Wasserstein distance between Laplacian-pyramid patch distributions, ×1e3): lower is
better, a measure of realism rather than fidelity.

![picture grid](flow_grid.png)

Picture grid: the centre {CROP}×{CROP} crop of Kodak {args.grid} at base quality {grid[0]['quality']:g}
({grid[0]['bpp']:.3f} bpp), and below it the centre {CLOSE}×{CLOSE} enlarged; PSNR of the whole image.

{body}

## Decode time

Kodak {s['image']} ({s['size']}), base quality {s['quality']:g}, {s['threads']} threads, interleaved medians of 3
(measured {s['measured']}):
base decode {s['base_s']:.2f} s; generative decode 1 step {s['steps_1_s']:.2f} s, 2 steps {s['steps_2_s']:.2f} s,
4 steps {s['steps_4_s']:.2f} s, 8 steps {s['steps_8_s']:.2f} s ({s['per_step_s']:.2f} s per step).

## Encode time

Seconds per image in the eval runs above ({args.jobs} parallel processes of {max(1, (os.cpu_count() or 1) // args.jobs)}
thread(s) each), base codec → generative decoder's file (with its texture search, if any):

{encode_lines}
"""
    DOCS.mkdir(exist_ok=True)
    (DOCS / "flow.md").write_text(page)
    print(f"wrote {DOCS / 'flow.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
