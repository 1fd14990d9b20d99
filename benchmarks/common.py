"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
KODAK = SHARED / "data" / "kodak"
REFERENCE = SHARED / "reference" / "compressai-results" / "kodak"
RESULTS = REPO / "benchmarks" / "results"


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d")}


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")


def load_published(name: str) -> dict:
    """A CompressAI results JSON (``{"name", "results": {"bpp", "psnr-rgb", ...}}``)."""
    return json.loads((REFERENCE / name).read_text())


def read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def timed(fn) -> float:
    """Seconds one call of ``fn`` takes."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved_medians(fns: dict, repeats: int) -> dict:
    """Median seconds per call of each ``name -> fn``, after one warm-up call each, the calls
    interleaved so that drifts in machine load hit every function alike."""
    for fn in fns.values():
        fn()
    rows = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            rows[k].append(timed(fn))
    import statistics

    return {k: statistics.median(v) for k, v in rows.items()}


def compressai_encode(model, rgb: np.ndarray):
    """A CompressAI model's ``compress`` of ``(H, W, 3)`` uint8, padded to 64; ``(out, (H, W))``."""
    import torch.nn.functional as F

    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
    h, w = x.shape[-2:]
    x = F.pad(x, (0, (-w) % 64, 0, (-h) % 64))
    with torch.no_grad():
        return model.compress(x), (h, w)


def compressai_decode(model, encoded) -> np.ndarray:
    """Back to ``(H, W, 3)`` uint8 from :func:`compressai_encode`'s result."""
    out, (h, w) = encoded
    with torch.no_grad():
        x_hat = model.decompress(out["strings"], out["shape"])["x_hat"][..., :h, :w].clamp(0, 1)
    return (x_hat[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
