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
