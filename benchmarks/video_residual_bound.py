"""How much would residual coding with the image codec save, if motion were free? BasketballPass
frames 0..N-1 at a few qualities: one I-frame by the image codec, then P-frames whose residual over
the DIS-flow prediction (uncoded flow) is coded by the same image codec, closed loop; against the
image codec on every frame (all-intra). RGB PSNR; bpp of the P-frames only.

    python benchmarks/video_residual_bound.py [--frames 9] [-q 2 5 8] [--codec hyperprior-ctx]

Writes benchmarks/results/video/residual_bound.json. This is the measurement that chose residual
P-frames (video-dvc) over conditional ones for the shipped video codec (docs/video.md).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

import licodec
from common import RESULTS, SHARED, machine
from licodec.codec.motion import estimate_flow, warp
from licodec.video.io import open_video

CLIP = SHARED / "data" / "video" / "BasketballPass_416x240_100f_rgb"


def tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * np.log10(1 / float(((a - b) ** 2).mean())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("-q", "--qualities", type=float, nargs="+", default=[2.0, 5.0, 8.0])
    parser.add_argument("--codec", default="hyperprior-ctx")
    args = parser.parse_args()
    frames = [f.rgb() for f in open_video(CLIP, fps=50, frames=slice(0, args.frames))]
    codec = licodec.load(args.codec)
    pixels = frames[0].shape[0] * frames[0].shape[1]
    rows = []
    for q in args.qualities:
        first = codec.compress(tensor(frames[0]), q)
        ref = codec.decompress(first).clamp(0, 1).mul(255).round() / 255
        p_bpp, p_psnr, pred_psnr, intra_bpp, intra_psnr = [], [], [], [], []
        for rgb in frames[1:]:
            cur = tensor(rgb)
            flow = torch.from_numpy(estimate_flow(rgb, (ref[0].permute(1, 2, 0) * 255).round().byte().numpy()))[None]
            prediction = warp(ref, flow)
            coded = codec.compress((cur - prediction + 0.5).clamp(0, 1), q)
            ref = (prediction + codec.decompress(coded) - 0.5).clamp(0, 1).mul(255).round() / 255
            p_bpp.append(8 * len(coded.to_bytes()) / pixels)
            p_psnr.append(psnr(ref, cur))
            pred_psnr.append(psnr(prediction, cur))
            intra = codec.compress(cur, q)
            intra_bpp.append(8 * len(intra.to_bytes()) / pixels)
            intra_psnr.append(psnr(codec.decompress(intra), cur))
        i_frame = codec.decompress(first).clamp(0, 1).mul(255).round() / 255
        row = {"quality": q, "i_frame": {"bpp": 8 * len(first.to_bytes()) / pixels, "psnr": psnr(i_frame, tensor(frames[0]))},
               "residual_p": {"bpp": float(np.mean(p_bpp)), "psnr": float(np.mean(p_psnr)),
                              "prediction_psnr": float(np.mean(pred_psnr)), "psnr_per_frame": [round(p, 3) for p in p_psnr]},
               "all_intra_p": {"bpp": float(np.mean(intra_bpp)), "psnr": float(np.mean(intra_psnr))}}
        rows.append(row)
        print(f"q{q:g}: residual P {row['residual_p']['bpp']:.3f} bpp {row['residual_p']['psnr']:.2f} dB "
              f"(prediction {row['residual_p']['prediction_psnr']:.2f}); all-intra {row['all_intra_p']['bpp']:.3f} bpp "
              f"{row['all_intra_p']['psnr']:.2f} dB", flush=True)
    out = RESULTS / "video" / "residual_bound.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "clip": CLIP.name, "frames": args.frames, "codec": args.codec,
                               "flow": "DIS medium, uncoded (0 bits)", "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
