"""Shared fixtures. Tests never download anything and keep caches in temporary folders."""

import os
import tempfile

_tmp = tempfile.mkdtemp(prefix="licodec-tests-")
for var in ("TORCH_HOME", "MPLCONFIGDIR", "TORCHINDUCTOR_CACHE_DIR"):
    os.environ[var] = os.path.join(_tmp, var.lower())
os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE = REPO / "licodec" / "samples" / "kodim23.png"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def kodak(shared_data) -> list:
    return sorted((shared_data / "kodak").glob("*.png"))


@pytest.fixture(scope="session")
def shipped():
    """The default codec with its shipped weights."""
    import licodec

    return licodec.load()


def make_untrained(name: str = "hyperprior-vr", **config_overrides):
    """A registered codec with random weights and frozen tables (fast structural tests)."""
    from licodec.zoo import create_model, get_entry

    entry = get_entry(name)
    torch.manual_seed(0)
    model = create_model(name, pretrained=False, config=entry.config_cls(**config_overrides))
    model.freeze()
    return model


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def random_image(rng, h: int, w: int) -> np.ndarray:
    """A smooth-ish random RGB image (uint8) so that codecs see photo-like statistics."""
    base = rng.integers(0, 256, size=(max(h // 8, 1) + 1, max(w // 8, 1) + 1, 3)).astype(np.float32)
    t = torch.from_numpy(base).permute(2, 0, 1)[None]
    up = torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)[0]
    noise = torch.from_numpy(rng.normal(0, 6, size=(3, h, w)).astype(np.float32))
    return (up + noise).clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def mutation_outcomes(codec, seeds: list, cases: int, seed: int = 0) -> dict:
    """Decode ``cases`` mutations (benchmarks/fuzz.py's kinds, forged CRCs included) of the
    bitstream bytes ``seeds`` with ``codec``; counts of ``decoded`` (garbage is fine) and
    ``rejected`` (a LicodecError). Any other exception propagates: that is the failure."""
    import importlib.util
    import random

    from licodec.entropy.container import Bitstream
    from licodec.errors import LicodecError

    spec = importlib.util.spec_from_file_location("licodec_benchmark_fuzz", REPO / "benchmarks" / "fuzz.py")
    fuzz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz)
    seeds = [{"data": data, "label": f"seed{i}", "variant": "default", "z_channels": 1} for i, data in enumerate(seeds)]
    r = random.Random(seed)
    outcomes = {"decoded": 0, "rejected": 0}
    for i in range(cases):
        kind = r.choices(list(fuzz.KINDS), list(fuzz.KINDS.values()))[0]
        data = fuzz.mutate(kind, seeds[i % len(seeds)], r, seeds, ["vqgan", "hyperprior-vr"])
        try:
            codec.decompress(Bitstream.from_bytes(data))
            outcomes["decoded"] += 1
        except LicodecError:
            outcomes["rejected"] += 1
    return outcomes


@pytest.fixture
def images(tmp_path, rng):
    """A training folder of three small photo-like PNGs (80 x 96)."""
    from PIL import Image

    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        Image.fromarray(random_image(rng, 80, 96)).save(data / f"{i}.png")
    return data
