"""Regenerate ``tests/golden.json``: bpp and PSNR of the bundled sample for every shipped codec.

    python benchmarks/golden.py

Run after shipping new weights; the golden tests (tests/test_shipped.py) check the weights'
hash against the one recorded here, so stale golden values fail loudly instead of passing.
"""

from __future__ import annotations

import json

import numpy as np

import licodec
from common import REPO
from licodec.eval.metrics import psnr
from licodec.image_io import read_image
from licodec.zoo import get_entry, list_models

SAMPLE = REPO / "licodec" / "samples" / "kodim23.png"
QUALITIES = (1.0, 4.0, 8.0)


def is_generative(name: str) -> bool:
    """A generative decoder (:mod:`licodec.codec.flow`): it has a base codec and writes its files."""
    return get_entry(name).family == "generative"


def main() -> None:
    src = read_image(SAMPLE)
    pixels = src.rgb.shape[0] * src.rgb.shape[1]
    models = {}
    for name in list_models():
        if not get_entry(name).has_weights or get_entry(name).family == "video":
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
    path = REPO / "tests" / "golden.json"
    path.write_text(json.dumps({"image": "licodec/samples/kodim23.png", "models": models}, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
