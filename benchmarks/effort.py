"""Encode effort levels: BD-rate against effort 0 and encode seconds per image, on real bytes.

    python benchmarks/effort.py [--model hyperprior-ctx | --weights LABEL=DIR] [--limit 4]
                                [--levels 0,1,...,9] [--qualities 1,3,5,8] [--threads 2]

Runs ``licodec eval`` on Kodak with the codec at every effort level (``NAME:eN``), then
BD-rate (PSNR-RGB, pchip) of each level against effort 0 and the mean encode time per
image (over images and qualities; decode time does not depend on the effort). The
per-image rows stay in ``--out`` (resumable). Writes ``benchmarks/results/effort.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from common import KODAK, RESULTS, machine, write_json


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="hyperprior-ctx", help="a zoo codec")
    p.add_argument("--weights", help="instead of --model: LABEL=DIR, weights in a folder")
    p.add_argument("--limit", type=int, default=0, help="the first N Kodak images (0: all 24)")
    p.add_argument("--levels", default="0,1,2,3,4,5,6,7,8,9")
    p.add_argument("--qualities", default="1,3,5,8")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="/work/runs/effort", help="licodec eval folder (rows, curves)")
    p.add_argument("--json", default=str(RESULTS / "effort.json"))
    args = p.parse_args()

    from licodec.codec.refine import EFFORT_ITERATIONS
    from licodec.eval.bdrate import bd_psnr, bd_rate
    from licodec.eval.codecs import resolve_codec
    from licodec.eval.datasets import load_dataset
    from licodec.eval.results import load_curve
    from licodec.eval.runner import evaluate

    torch.set_num_threads(args.threads)
    base = args.weights or args.model
    levels = [int(v) for v in args.levels.split(",")]
    qualities = tuple(float(q) for q in args.qualities.split(","))
    names = [resolve_codec(f"{base}:e{e}").name for e in levels]  # LABEL=DIR:eN is named LABEL:eN
    dataset = load_dataset("kodak", KODAK, limit=args.limit)
    t0 = time.time()
    specs = [f"{base}:e{e}" for e in levels]
    written = evaluate(dataset, specs, args.out, {n: qualities for n in names}, metrics=(), jobs=1, progress=True)
    curves = {n: load_curve(path) for n, path in written.items()}
    ref = curves[names[0]]
    rows = {}
    for level, name in zip(levels, names):
        c = curves[name]
        row = {"iterations": EFFORT_ITERATIONS[level],
               "encode_s_per_image": round(statistics.mean(c.results["encoding_time"]), 3),
               "bpp": [round(b, 4) for b in c.bpp], "psnr_rgb": [round(v, 3) for v in c.results["psnr-rgb"]]}
        if name != names[0]:
            row["bd_rate_vs_effort0_pct"] = round(bd_rate(ref.bpp, ref.results["psnr-rgb"], c.bpp, c.results["psnr-rgb"]), 2)
            row["bd_psnr_vs_effort0_db"] = round(bd_psnr(ref.bpp, ref.results["psnr-rgb"], c.bpp, c.results["psnr-rgb"]), 3)
        rows[str(level)] = row
        print(f"effort {level} ({EFFORT_ITERATIONS[level]:>3} it): encode {row['encode_s_per_image']:7.2f} s/image"
              + (f", BD-rate vs effort 0 {row['bd_rate_vs_effort0_pct']:+.2f}%" if "bd_rate_vs_effort0_pct" in row else ""))
    write_json(Path(args.json), {
        "codec": base,
        "dataset": dataset.label,
        "qualities": ref.results["quality"],
        "metric": "PSNR-RGB on real bytes; BD-rate pchip against effort 0",
        "levels": rows,
        "wall_s": round(time.time() - t0, 1),
        "command": "python benchmarks/effort.py " + " ".join(
            f"--{k} {v}" for k, v in vars(args).items() if v not in (None, "") and k not in ("json",)),
        "machine": machine(),
    })


if __name__ == "__main__":
    main()
