"""Lost-index restoration of the vqgan codec: image quality against the share of indices lost.

    python benchmarks/vq_loss.py --weights DIR [--images 24] [--quality 4 8] [--rates 0 0.05 0.1 0.2 0.3]
                                 [--rows] [--seed 0] [--crop N] [--metrics psnr,ms-ssim,ssimulacra2,swd]
                                 [--data ../shared/data/kodak] [--out benchmarks/results/vq_loss.json]

For each of the first N images (sorted names; ``--crop N``: their top-left N x N crop) and each
quality, the image is coded once with the weights in DIR. The bitstream is then decoded with
each loss rate: that share of the index positions (``--rows``: of whole index rows) is marked
lost by a RNG seeded with ``(seed + image number, tile number)``, as ``licodec decode --lose``
does, and restored (:meth:`licodec.codec.vq.VQCodec.restore_indices`): by the index prior when
the weights have one, and always also by the prior-free predictor (the most frequent known
neighbour), so the two can be compared. Loss rate 0 is checked to equal the plain decode.

Reported per quality, restorer and rate, as means over the images: the metrics (a metric whose
minimum image side the images do not reach is skipped and said so: MS-SSIM needs 161 px), the
share of lost indices restored exactly (``index_accuracy``), and the restoration time. Writes
JSON (default ``benchmarks/results/vq_loss.json``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import KODAK, RESULTS, machine, read_rgb, write_json  # noqa: E402
from licodec.codec.base import tile_prefix  # noqa: E402
from licodec.codec.vq_prior import loss_mask, restore_from_neighbours  # noqa: E402
from licodec.eval import metric_registry  # noqa: E402
from licodec.zoo import create_model  # noqa: E402
from licodec.zoo.registry import read_weights_config  # noqa: E402

DEFAULT_RATES = (0.0, 0.05, 0.1, 0.2, 0.3)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255


def to_rgb(x: torch.Tensor) -> np.ndarray:
    return (x[0] * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def tile_indices(codec, bitstream) -> list:
    """``[(top, left, th, tw, indices (h, w))]`` of every tile of ``bitstream``, decoded and checked."""
    grid = codec.check_geometry(bitstream)
    q = float(bitstream.quality)
    out = []
    for i, (top, left, th, tw) in enumerate(grid):
        name = tile_prefix(i, len(grid)) + "idx"
        out.append((top, left, th, tw, codec.read_indices(bitstream.stream(name), q, codec.grid_shape(th, tw), name)))
    return out


def restored_image(codec, bitstream, tiles: list, masks: list, method: str) -> tuple[np.ndarray, float, float]:
    """The decoded image with the ``masks`` positions restored by ``method`` ("prior" or
    "neighbour"), the share of lost indices restored exactly (None when none is lost), and the
    restoration's time in seconds."""
    q = float(bitstream.quality)
    rung = codec.rung(q)
    out = torch.empty(1, 3, bitstream.height, bitstream.width)
    right = lost = 0
    elapsed = 0.0
    for (top, left, th, tw, idx), mask in zip(tiles, masks):
        t0 = time.perf_counter()
        if not mask.any():
            fixed = idx
        elif method == "prior":
            fixed = codec.restore_indices(idx, mask, q)
        else:
            fixed = restore_from_neighbours(idx, mask, int(rung.codebook.ema_count.argmax()))
        elapsed += time.perf_counter() - t0
        right += int((fixed[mask] == idx[mask]).sum())
        lost += int(mask.sum())
        out[..., top : top + th, left : left + tw] = codec.decode_indices(torch.from_numpy(fixed)[None], q, (th, tw))
    return to_rgb(out), (right / lost if lost else None), elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True, help="a vqgan weights folder (a training run's export)")
    ap.add_argument("--data", default=str(KODAK), help="folder of test images (default: Kodak)")
    ap.add_argument("--images", type=int, default=24, help="the first N images (default 24)")
    ap.add_argument("--crop", type=int, default=0, help="code the top-left NxN crop of each image (0: whole)")
    ap.add_argument("--quality", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--rates", type=float, nargs="+", default=list(DEFAULT_RATES))
    ap.add_argument("--rows", action="store_true", help="lose whole index rows instead of single positions")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--metrics", default="psnr,ms-ssim,ssimulacra2,swd", help="comma-separated registry names")
    ap.add_argument("--out", default=str(RESULTS / "vq_loss.json"))
    args = ap.parse_args(argv)

    meta = read_weights_config(Path(args.weights))
    codec = create_model("vqgan", weights_dir=args.weights)
    paths = sorted(p for p in Path(args.data).iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp"})
    paths = paths[: args.images]
    if not paths:
        raise SystemExit(f"no images in {args.data}")
    images = [read_rgb(p) for p in paths]
    if args.crop:
        images = [im[: args.crop, : args.crop] for im in images]
    side = min(min(im.shape[:2]) for im in images)
    metrics, skipped = {}, {}
    for name in [m.strip() for m in args.metrics.split(",") if m.strip()]:
        spec = metric_registry.get(name)
        if spec.min_side > side:
            skipped[spec.key] = f"needs images of at least {spec.min_side} px a side, these have {side}"
            continue
        try:
            metrics[spec.key] = metric_registry.build(name)
        except Exception as e:  # a missing optional dependency: say so, measure the rest
            skipped[spec.key] = f"unavailable: {e}"
    methods = (["prior"] if codec.prior is not None else []) + ["neighbour"]

    per_image, summary = [], {}
    for q in args.quality:
        for n, (path, rgb) in enumerate(zip(paths, images)):
            bitstream = codec.compress(to_tensor(rgb), q)
            tiles = tile_indices(codec, bitstream)
            plain = to_rgb(codec.decompress(bitstream))
            bpp = 8 * bitstream.payload_bytes / (rgb.shape[0] * rgb.shape[1])
            for rate in args.rates:
                masks = [loss_mask(*idx.shape, rate, args.seed + n, args.rows, salt=i)
                         for i, (*_, idx) in enumerate(tiles)]
                for method in methods:
                    out, accuracy, seconds = restored_image(codec, bitstream, tiles, masks, method)
                    if rate == 0 and not np.array_equal(out, plain):
                        raise SystemExit(f"{path.name}: decoding with nothing lost differs from the plain decode")
                    row = {"image": path.name, "quality": q, "method": method, "rate": rate, "bpp": bpp,
                           "lost": int(sum(m.sum() for m in masks)), "index_accuracy": accuracy,
                           "restore_s": seconds, **{k: float(f(rgb, out)) for k, f in metrics.items()}}
                    per_image.append(row)
                    print(f"q{q} {path.name} {method:>9} lost {rate:4.0%}: " +
                          " ".join(f"{k} {row[k]:.4g}" for k in metrics), flush=True)
        for method in methods:
            for rate in args.rates:
                rows = [r for r in per_image if r["quality"] == q and r["method"] == method and r["rate"] == rate]
                keys = ["bpp", "index_accuracy", "restore_s", *metrics]
                values = {k: [r[k] for r in rows if r[k] is not None] for k in keys}
                summary.setdefault(str(q), {}).setdefault(method, {})[str(rate)] = {
                    k: float(np.mean(v)) if v else None for k, v in values.items()}
    payload = {
        "benchmark": "vq_loss",
        "description": "vqgan decoding with a share of the index positions lost (simulated after the sub-streams "
                       "were decoded) and restored; means over the images",
        "weights": str(args.weights), "weights_sha256": meta["sha256"][:16], "config": meta["config"],
        "prior": codec.prior is not None, "data": str(args.data), "images": [p.name for p in paths],
        "crop": args.crop, "qualities": args.quality, "rates": args.rates, "unit": "rows" if args.rows else "indices",
        "seed": args.seed, "metrics": list(metrics), "skipped_metrics": skipped, "machine": machine(),
        "results": summary, "per_image": per_image,
    }
    write_json(Path(args.out), payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
