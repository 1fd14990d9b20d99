"""Encoder settings of the video codec, A/B in one run on the start of BasketballPass: the I-frames'
quality offset and the encode effort. The encoder's own closed loop (its references are exactly what
the decoder rebuilds); bpp from the real bytes of every frame record, PSNR-RGB per frame, averaged.

    python benchmarks/video_encoder_ab.py offset --frames 32 --offsets 0,1,2 --qualities 3
    python benchmarks/video_encoder_ab.py effort --frames 8 --efforts 0,2 --qualities 2,4,6

``offset`` sets the codec's ``intra_quality_offset`` (I-frames at quality q+offset, on both
sides) to each value in turn; ``effort`` runs :meth:`~licodec.codec.video.VideoCodecBase.encode_frame` at each
effort. Arms run one after another in this process; writes OUT (default
benchmarks/results/video/encoder_ab_<mode>.json) with the BD-rate of each arm against the first
where it has two or more qualities.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
from PIL import Image

from common import RESULTS, SHARED, machine, write_json

CLIP = SHARED / "data" / "video" / "BasketballPass_416x240_100f_rgb"


def code(codec, frames, quality: float, effort: int = 0) -> dict:
    from licodec.codec.video import frame_tensor

    t0 = time.perf_counter()
    bits, psnrs, reference = 0, [], None
    for f in frames:
        streams, reference = codec.encode_frame(frame_tensor(f), quality, reference, effort)
        bits += 8 * sum(len(s) for s in streams.values())
        decoded = reference[0].permute(1, 2, 0).numpy().astype(np.float64)
        psnrs.append(10 * np.log10(255**2 / np.mean((decoded - f) ** 2)))
    h, w = frames[0].shape[:2]
    return {"quality": quality, "bpp": round(bits / (len(frames) * h * w), 5), "psnr_rgb": round(float(np.mean(psnrs)), 3),
            "psnr_first_p": round(psnrs[1], 3) if len(psnrs) > 1 else None, "psnr_last": round(psnrs[-1], 3),
            "encode_s": round(time.perf_counter() - t0, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["offset", "effort"])
    parser.add_argument("--frames", type=int, default=32, help="P-frames after the I-frame")
    parser.add_argument("--offsets", default="0,1,2")
    parser.add_argument("--efforts", default="0,2")
    parser.add_argument("--qualities", default="3")
    parser.add_argument("--model", default="video-dvc")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from licodec.eval.bdrate import bd_rate
    from licodec.video.coding import load_video_codec

    codec = load_video_codec(args.model)
    shipped = codec.config
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(CLIP.glob("*.png"))[: args.frames + 1]]
    qualities = [float(v) for v in args.qualities.split(",")]
    values = args.offsets if args.mode == "offset" else args.efforts
    arms = {}
    for v in values.split(","):
        if args.mode == "offset":
            codec.config = dataclasses.replace(shipped, intra_quality_offset=float(v))
        arms[v] = [code(codec, frames, q, effort=0 if args.mode == "offset" else int(v)) for q in qualities]
        print(args.mode, v, arms[v], flush=True)
    first = arms[values.split(",")[0]]
    for v, points in arms.items():
        if len(qualities) > 1 and points is not first:
            bd = bd_rate([p["bpp"] for p in first], [p["psnr_rgb"] for p in first],
                         [p["bpp"] for p in points], [p["psnr_rgb"] for p in points])
            arms[v] = {"points": points, "bd_rate_vs_first_pct": round(bd, 2)}
        else:
            arms[v] = {"points": points}
    write_json(RESULTS / "video" / f"encoder_ab_{args.mode}.json" if args.out is None else args.out,
               {"clip": f"{CLIP.name}, frames 0-{args.frames}", "model": args.model,
                "weights": codec.weights_sha256, "intra_weights": codec.config.intra_weights,
                "shipped_intra_quality_offset": shipped.intra_quality_offset, "mode": args.mode,
                "arms": arms, "machine": machine()})


if __name__ == "__main__":
    main()
