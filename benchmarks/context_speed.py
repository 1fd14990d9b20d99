"""Coding speed of the context model against CompressAI's mbt2018-mean and serial-context mbt2018.

    python benchmarks/context_speed.py [--model hyperprior-ctx] [--image PATH] [--quality 4] [--repeats 5]

licodec's ``hyperprior-ctx`` (channel groups x checkerboard: 2 x groups parallel passes)
against CompressAI's ``MeanScaleHyperprior`` (mbt2018-mean: no context) and
``JointAutoregressiveHierarchicalPriors`` (mbt2018: a serial 5x5 masked-convolution context,
one latent position after another) built with the same N and M. CompressAI's models have
random weights here: their speed does not depend on training (the serial decoder's loop is
the same for any weights). Times are end to end (image in, bytes out; bytes in, 8-bit
image out), medians of interleaved repeats in one process; mbt2018's decode runs once.
Writes ``benchmarks/results/context_speed.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import licodec
from common import (KODAK, RESULTS, compressai_decode, compressai_encode, interleaved_medians, machine, read_rgb,
                    timed, write_json)
from licodec.image_io import SourceImage


def compressai_pair(N: int, M: int):
    from compressai.models import JointAutoregressiveHierarchicalPriors, MeanScaleHyperprior

    torch.manual_seed(0)
    mean = MeanScaleHyperprior(N, M).eval()
    serial = JointAutoregressiveHierarchicalPriors(N, M).eval()
    for m in (mean, serial):
        m.update(force=True)
    return mean, serial


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="hyperprior-ctx")
    p.add_argument("--image", default=str(KODAK / "kodim23.png"))
    p.add_argument("--quality", type=float, default=4.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=str(RESULTS / "context_speed.json"))
    args = p.parse_args()

    rgb = read_rgb(Path(args.image))
    src = SourceImage(rgb, channels=3, bit_depth=8)
    codec = licodec.load(args.model)
    mean, serial = compressai_pair(codec.config.N, codec.config.M)
    data = licodec.api.compress_bitstream(src, args.quality, args.model).to_bytes()
    enc_mean = compressai_encode(mean, rgb)
    t = interleaved_medians({
        "licodec_encode": lambda: licodec.api.compress_bitstream(src, args.quality, args.model).to_bytes(),
        "mbt2018_mean_encode": lambda: compressai_encode(mean, rgb),
        "licodec_decode": lambda: licodec.decompress(data),
        "mbt2018_mean_decode": lambda: compressai_decode(mean, enc_mean),
    }, args.repeats)
    t0 = time.perf_counter()
    enc_serial = compressai_encode(serial, rgb)
    t["mbt2018_encode"] = time.perf_counter() - t0
    t["mbt2018_decode"] = timed(lambda: compressai_decode(serial, enc_serial))
    payload = {
        "model": args.model,
        "config": {"N": codec.config.N, "M": codec.config.M, "context_groups": list(codec.config.context_groups)},
        "image": Path(args.image).name,
        "size": f"{rgb.shape[1]}x{rgb.shape[0]}",
        "quality": args.quality,
        "seconds": t,
        "encode_over_mbt2018_mean": t["licodec_encode"] / t["mbt2018_mean_encode"],
        "decode_over_mbt2018_mean": t["licodec_decode"] / t["mbt2018_mean_decode"],
        "mbt2018_decode_over_licodec_decode": t["mbt2018_decode"] / t["licodec_decode"],
        "repeats": args.repeats,
        "machine": machine(),
    }
    write_json(Path(args.out), payload)
    for k, v in t.items():
        print(f"{k:<22} {v * 1000:9.1f} ms")
    print(f"encode / mbt2018-mean {payload['encode_over_mbt2018_mean']:.2f}, decode / mbt2018-mean "
          f"{payload['decode_over_mbt2018_mean']:.2f}; mbt2018 (serial) decode is "
          f"{payload['mbt2018_decode_over_licodec_decode']:.1f}x slower than licodec's")


if __name__ == "__main__":
    main()
