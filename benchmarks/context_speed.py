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
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import licodec
from common import KODAK, RESULTS, machine, read_rgb, write_json
from licodec.image_io import SourceImage


def compressai_pair(N: int, M: int):
    from compressai.models import JointAutoregressiveHierarchicalPriors, MeanScaleHyperprior

    torch.manual_seed(0)
    mean = MeanScaleHyperprior(N, M).eval()
    serial = JointAutoregressiveHierarchicalPriors(N, M).eval()
    for m in (mean, serial):
        m.update(force=True)
    return mean, serial


def ca_encode(model, rgb):
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
    h, w = x.shape[-2:]
    x = F.pad(x, (0, (-w) % 64, 0, (-h) % 64))
    with torch.no_grad():
        return model.compress(x), (h, w)


def ca_decode(model, encoded):
    out, (h, w) = encoded
    with torch.no_grad():
        x_hat = model.decompress(out["strings"], out["shape"])["x_hat"][..., :h, :w].clamp(0, 1)
    return (x_hat[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


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
    enc_mean = ca_encode(mean, rgb)
    fns = {
        "licodec_encode": lambda: licodec.api.compress_bitstream(src, args.quality, args.model).to_bytes(),
        "mbt2018_mean_encode": lambda: ca_encode(mean, rgb),
        "licodec_decode": lambda: licodec.decompress(data),
        "mbt2018_mean_decode": lambda: ca_decode(mean, enc_mean),
    }
    for fn in fns.values():  # warm up
        fn()
    rows = {k: [] for k in fns}
    for _ in range(args.repeats):  # interleaved: load drifts hit every codec alike
        for k, fn in fns.items():
            rows[k].append(timed(fn))
    t = {k: statistics.median(v) for k, v in rows.items()}
    t0 = time.perf_counter()
    enc_serial = ca_encode(serial, rgb)
    t["mbt2018_encode"] = time.perf_counter() - t0
    t["mbt2018_decode"] = timed(lambda: ca_decode(serial, enc_serial))
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
