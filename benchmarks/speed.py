"""Encode/decode speed of licodec against CompressAI's ``mbt2018_mean`` of the same N and M.

    python benchmarks/speed.py [--image PATH] [--quality 4] [--repeats 7]

CompressAI's ``MeanScaleHyperprior`` has the very transforms of licodec's
``hyperprior-vr``; the licodec weights are copied into it with the quality's gain
vectors folded into the last analysis and first synthesis layers, so both code the
same latents with the same tables and differ only in their coding paths. Timings are
medians of interleaved repeats in one process (end to end: image in, bytes out; bytes
in, 8-bit image out). Also reports the ratio of bytes on disk to the model's
estimated bits.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import licodec
from common import KODAK, RESULTS, compressai_decode, compressai_encode, interleaved_medians, machine, read_rgb, write_json
from licodec.image_io import SourceImage


def compressai_twin(codec, quality: float):
    """CompressAI MeanScaleHyperprior(N, M) computing exactly what ``codec`` does at ``quality``."""
    from compressai.models import MeanScaleHyperprior

    cfg = codec.config
    twin = MeanScaleHyperprior(cfg.N, cfg.M)
    gain, inv_gain = codec._gains(torch.tensor([float(quality)]))
    gain, inv_gain = gain.reshape(-1), inv_gain.reshape(-1)
    rename = {"latent.h_a.": "h_a.", "latent.h_s.": "h_s.", "latent.z_model.": "entropy_bottleneck.",
              "latent.y_model.": "gaussian_conditional."}
    state = {}
    for key, value in codec.state_dict().items():
        if key.startswith("log_") or key.endswith("tables_fingerprint"):
            continue
        for old, new in rename.items():
            if key.startswith(old):
                key = new + key[len(old):]
        state[key] = value.clone()
    state["g_a.6.weight"] *= gain[:, None, None, None]
    state["g_a.6.bias"] *= gain
    state["g_s.0.weight"] *= inv_gain[:, None, None, None]
    twin.load_state_dict(state)
    twin.update(force=True)
    return twin.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=str(KODAK / "kodim23.png"))
    parser.add_argument("--model", default="hyperprior-vr")
    parser.add_argument("--quality", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=str(RESULTS / "speed.json"))
    args = parser.parse_args()

    rgb = read_rgb(Path(args.image))
    src = SourceImage(rgb, channels=3, bit_depth=8)
    codec = licodec.load(args.model)
    twin = compressai_twin(codec, args.quality)
    encoded = compressai_encode(twin, rgb)
    data = licodec.api.compress_bitstream(src, args.quality, args.model).to_bytes()
    ours_dec = lambda: licodec.decompress(data)  # noqa: E731
    theirs_dec = lambda: compressai_decode(twin, encoded)  # noqa: E731
    t = interleaved_medians({
        "licodec_encode": lambda: licodec.api.compress_bitstream(src, args.quality, args.model).to_bytes(),
        "compressai_encode": lambda: compressai_encode(twin, rgb),
        "licodec_decode": ours_dec,
        "compressai_decode": theirs_dec,
    }, args.repeats)
    import numpy as np

    from licodec.eval.metrics import psnr

    ours_img = np.asarray(ours_dec())
    theirs_img = theirs_dec()
    theirs_bytes = sum(len(s[0]) for s in encoded[0]["strings"])
    estimate = codec.estimate_bits(src.tensor(), args.quality)
    payload = {
        "image": Path(args.image).name,
        "size": f"{rgb.shape[1]}x{rgb.shape[0]}",
        "quality": args.quality,
        "seconds": t,
        "encode_ratio_licodec_over_compressai": t["licodec_encode"] / t["compressai_encode"],
        "decode_ratio_licodec_over_compressai": t["licodec_decode"] / t["compressai_decode"],
        "licodec_bytes": len(data),
        "compressai_payload_bytes": theirs_bytes,
        "licodec_psnr": psnr(ours_img, rgb),
        "compressai_psnr": psnr(theirs_img, rgb),
        "bytes_on_disk_over_estimated_bits": 8 * len(data) / estimate,
        "repeats": args.repeats,
        "machine": machine(),
    }
    write_json(Path(args.out), payload)
    for k, v in t.items():
        print(f"{k:<20} {v * 1000:8.1f} ms")
    print(f"encode ratio {payload['encode_ratio_licodec_over_compressai']:.3f}, decode ratio "
          f"{payload['decode_ratio_licodec_over_compressai']:.3f}; bytes {len(data)} vs {theirs_bytes} (+header); "
          f"disk/estimate {payload['bytes_on_disk_over_estimated_bits']:.4f}")


if __name__ == "__main__":
    main()
