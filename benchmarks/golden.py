"""Regenerate ``tests/golden.json``: bpp and PSNR of the bundled sample for every shipped codec
(image codecs: the sample photo; video codecs: the panned clip of :mod:`licodec.video.samples`).

    python benchmarks/golden.py [--only NAME ...]

With ``--only``, only those codecs' entries are computed anew (the others are kept as they are).

Run after shipping new weights; the golden tests (tests/test_shipped.py) check the weights'
hash against the one recorded here, so stale golden values fail loudly instead of passing.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import licodec
from common import REPO
from licodec.eval.metrics import psnr
from licodec.image_io import read_image
from licodec.zoo import get_entry, list_models

SAMPLE = REPO / "licodec" / "samples" / "kodim23.png"
QUALITIES = (1.0, 4.0, 8.0)
CLIP = dict(frames=8, height=192, width=256, step=(1, 2))  # one I-frame and 7 P-frames


def video_golden(name: str) -> dict:
    """bpp of the whole ``.lic`` video and mean RGB PSNR of its decoded frames, per quality."""
    from licodec.video import coding
    from licodec.video.samples import panned_clip

    frames = panned_clip(**CLIP)
    codec = coding.load_video_codec(name)
    entry = {"weights": codec.weights_sha256}
    for q in QUALITIES:
        data = b"".join(coding.compress(frames, q, i_period=CLIP["frames"], codec=codec))
        decoded = [d.rgb for d in coding.decompress(data, codec=codec)]
        entry[f"{q:g}"] = {"bpp": round(8 * len(data) / (frames[0].shape[0] * frames[0].shape[1] * len(frames)), 5),
                           "psnr": round(float(np.mean([psnr(d, f) for d, f in zip(decoded, frames)])), 3)}
    return entry


def is_generative(name: str) -> bool:
    """A generative decoder (:mod:`licodec.codec.flow`): it has a base codec and writes its files."""
    return get_entry(name).family == "generative"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="recompute only these codecs' entries")
    args = parser.parse_args()
    path = REPO / "tests" / "golden.json"
    src = read_image(SAMPLE)
    pixels = src.rgb.shape[0] * src.rgb.shape[1]
    models, videos = {}, {}
    if args.only:
        unknown = sorted(set(args.only) - {n for n in list_models() if get_entry(n).has_weights})
        if unknown:
            raise SystemExit(f"golden.py: no shipped weights named {', '.join(unknown)}")
        old = json.loads(path.read_text())
        models, videos = old["models"], old["video_models"]
    for name in list_models():
        if not get_entry(name).has_weights or (args.only and name not in args.only):
            continue
        if get_entry(name).family == "video":
            videos[name] = video_golden(name)
            print(name, {k: v for k, v in videos[name].items() if k != "weights"})
            continue
        codec = licodec.load(name)
        entry = {"weights": codec.weights_sha256}
        realism = 1.0 if is_generative(name) else None  # a generative decoder: its full sample
        for q in QUALITIES:
            data = licodec.compress(src, q, model=name)
            decoded = licodec.decompress(data, realism=realism)
            entry[f"{q:g}"] = {"bpp": round(8 * len(data) / pixels, 5),
                               "psnr": round(psnr(np.asarray(decoded), src.rgb), 3)}
        models[name] = entry
        print(name, {k: v for k, v in entry.items() if k != "weights"})
    path.write_text(json.dumps({"image": "licodec/samples/kodim23.png", "models": models,
                                "video_clip": CLIP, "video_models": videos}, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
