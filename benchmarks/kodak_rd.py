"""Kodak rate-distortion of licodec against JPEG and WebP (Pillow, measured in this run)
and against CompressAI's published curves; BD-rates with pchip in the log-rate domain.

    python benchmarks/kodak_rd.py [--limit N] [--out benchmarks/results/kodak_rd.json]

bpp comes from the real bytes of each file (the whole .lic container for licodec);
PSNR is RGB PSNR on 8-bit images; each point is the mean over images of bpp and PSNR
(CompressAI's convention).
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image

import licodec
from common import KODAK, RESULTS, load_published, machine, read_rgb, write_json
from licodec.eval.bdrate import bd_psnr, bd_rate
from licodec.eval.metrics import psnr
from licodec.image_io import SourceImage

PUBLISHED = {
    "VTM (published)": "vtm.json",
    "BPG 4:4:4 (published)": "bpg_444_x265_ycbcr.json",
    "CompressAI bmshj2018-hyperprior (published)": "compressai-bmshj2018-hyperprior_mse_cpu.json",
    "CompressAI mbt2018-mean (published)": "compressai-mbt2018-mean_mse_cpu.json",
    "JPEG (published)": "jpeg.json",
}


def pillow_point(rgb: np.ndarray, fmt: str, quality: int, **options) -> tuple[float, float]:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, quality=quality, **options)
    data = buf.getvalue()
    with Image.open(io.BytesIO(data)) as im:
        decoded = np.asarray(im.convert("RGB"))
    return 8 * len(data) / (rgb.shape[0] * rgb.shape[1]), psnr(decoded, rgb)


def mean_curve(per_image: list[list[tuple[float, float]]], labels: list) -> dict:
    arr = np.asarray(per_image)  # images x points x (bpp, psnr)
    return {"quality": labels, "bpp": arr[:, :, 0].mean(0).tolist(), "psnr-rgb": arr[:, :, 1].mean(0).tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hyperprior-vr")
    parser.add_argument("--qualities", type=float, nargs="+", default=[1, 2, 3, 4, 5, 6, 7, 8])
    parser.add_argument("--jpeg", type=int, nargs="+", default=[5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95])
    parser.add_argument("--webp", type=int, nargs="+", default=[1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95])
    parser.add_argument("--limit", type=int, default=0, help="only the first N images")
    parser.add_argument("--out", default=str(RESULTS / "kodak_rd.json"))
    args = parser.parse_args()

    images = sorted(KODAK.glob("*.png"))[: args.limit or None]
    codec = licodec.load(args.model)
    ours, jpeg420, jpeg444, webp, overhead = [], [], [], [], []
    t0 = time.time()
    for path in images:
        rgb = read_rgb(path)
        src = SourceImage(rgb, channels=3, bit_depth=8)
        row = []
        for q in args.qualities:
            data = licodec.api.compress_bitstream(src, q, args.model).to_bytes()
            decoded = np.asarray(licodec.decompress(data))
            row.append((8 * len(data) / (rgb.shape[0] * rgb.shape[1]), psnr(decoded, rgb)))
            overhead.append(8 * len(data) / codec.estimate_bits(src.tensor(), q))
        ours.append(row)
        jpeg420.append([pillow_point(rgb, "JPEG", q, subsampling=2) for q in args.jpeg])
        jpeg444.append([pillow_point(rgb, "JPEG", q, subsampling=0) for q in args.jpeg])
        webp.append([pillow_point(rgb, "WEBP", q, method=6) for q in args.webp])
        print(f"{path.name}: " + " ".join(f"{b:.3f}/{p:.2f}" for b, p in row), flush=True)

    curves = {
        f"licodec {args.model}": mean_curve(ours, args.qualities),
        "JPEG 4:2:0 (Pillow, this run)": mean_curve(jpeg420, args.jpeg),
        "JPEG 4:4:4 (Pillow, this run)": mean_curve(jpeg444, args.jpeg),
        "WebP (Pillow, this run)": mean_curve(webp, args.webp),
    }
    if len(images) == 24:  # published curves are full-Kodak averages
        for label, name in PUBLISHED.items():
            res = load_published(name)["results"]
            curves[label] = {"bpp": res["bpp"], "psnr-rgb": res["psnr-rgb"]}
    mine = curves[f"licodec {args.model}"]
    comparisons = {}
    for label, c in curves.items():
        if label.startswith("licodec"):
            continue
        comparisons[label] = {
            "bd_rate_percent": bd_rate(c["bpp"], c["psnr-rgb"], mine["bpp"], mine["psnr-rgb"]),
            "bd_psnr_db": bd_psnr(c["bpp"], c["psnr-rgb"], mine["bpp"], mine["psnr-rgb"]),
        }
    payload = {
        "name": f"licodec {args.model}",
        "dataset": f"Kodak ({len(images)} images)",
        "description": "mean over images of bpp (real file bytes) and RGB PSNR; BD figures are licodec against each anchor (negative BD-rate = licodec needs fewer bits)",
        "results": mine,
        "bytes_over_estimate": {"mean": float(np.mean(overhead)), "max": float(np.max(overhead)),
                                "min": float(np.min(overhead))},
        "curves": curves,
        "bd": comparisons,
        "wall_time_s": round(time.time() - t0, 1),
        "machine": machine(),
    }
    write_json(__import__("pathlib").Path(args.out), payload)
    print(f"\n{'anchor':<48} {'BD-rate %':>10} {'BD-PSNR dB':>11}")
    for label, c in comparisons.items():
        print(f"{label:<48} {c['bd_rate_percent']:>10.2f} {c['bd_psnr_db']:>11.2f}")
    print(f"bytes on disk / estimated bits: mean {np.mean(overhead):.4f}, max {np.max(overhead):.4f}")


if __name__ == "__main__":
    main()
