"""Peak memory and time of encoding and decoding a 4000x3000 photo (tiled coding).

    python benchmarks/memory.py [--source PATH] [--quality 4]

The 12-megapixel test photo is made by upscaling a ~1 MP photo of
../shared/data/hires_test with Pillow's Lanczos filter. Encode and decode each run in
a fresh process, which reports its peak resident memory (ru_maxrss) and wall time; a
Kodak-sized image gives the baseline.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

from common import KODAK, RESULTS, SHARED, machine, write_json

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from licodec.cli.main import main
code = main(sys.argv[1:])
wall = time.perf_counter() - t0
print(json.dumps({"code": code, "wall_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(argv: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise SystemExit(f"licodec {' '.join(argv)} failed: {proc.stderr}")
    return result


def measure(image: Path, quality: float, tmp: Path) -> dict:
    lic, png = tmp / (image.stem + ".lic"), tmp / (image.stem + ".out.png")
    enc = run(["encode", str(image), "-o", str(lic), "-q", str(quality), "--force"])
    dec = run(["decode", str(lic), "-o", str(png), "--force"])
    with Image.open(image) as im:
        w, h = im.size
    return {"size": f"{w}x{h}", "bytes": lic.stat().st_size, "bpp": 8 * lic.stat().st_size / (w * h),
            "encode": enc, "decode": dec}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(SHARED / "data" / "hires_test" / "wiki_001.png"))
    parser.add_argument("--quality", type=float, default=4.0)
    parser.add_argument("--out", default=str(RESULTS / "memory.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big = tmp / "photo_4000x3000.png"
        with Image.open(args.source) as im:
            im.convert("RGB").resize((4000, 3000), Image.LANCZOS).save(big)
        payload = {
            "kodak_768x512": measure(KODAK / "kodim23.png", args.quality, tmp),
            "photo_4000x3000": measure(big, args.quality, tmp),
            "source": Path(args.source).name,
            "quality": args.quality,
            "machine": machine(),
        }
    write_json(Path(args.out), payload)
    for key in ("kodak_768x512", "photo_4000x3000"):
        r = payload[key]
        print(f"{key}: {r['bpp']:.3f} bpp; encode {r['encode']['wall_s']:.1f} s, peak {r['encode']['peak_rss_mb']:.0f} MB; "
              f"decode {r['decode']['wall_s']:.1f} s, peak {r['decode']['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
