"""SSIMULACRA 2 and ColorVideoVDP through licodec.eval.external_metrics: the packages' own
APIs give the same numbers, identity and monotonicity hold, nothing is downloaded or written."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLE
from licodec.errors import LicodecError
from licodec.eval import external_metrics as EM


@pytest.fixture(scope="module")
def kodim23():
    return np.asarray(Image.open(SAMPLE).convert("RGB"))


@pytest.fixture(scope="module")
def crop(kodim23):
    return kodim23[128:384, 256:512].copy()


def jpeg(img, quality):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def noisy(img, sigma, seed=1):
    return np.clip(img + np.random.default_rng(seed).normal(0, sigma, img.shape), 0, 255).round().astype(np.uint8)


# --------------------------------------------------------------------------- SSIMULACRA 2


def test_ssimulacra2_matches_the_package_on_files(crop, tmp_path):
    from ssimulacra2 import compute_ssimulacra2

    d = jpeg(crop, 30)
    Image.fromarray(crop).save(tmp_path / "ref.png")
    Image.fromarray(d).save(tmp_path / "dist.png")
    assert EM.ssimulacra2(crop, d) == compute_ssimulacra2(str(tmp_path / "ref.png"), str(tmp_path / "dist.png"))


def test_ssimulacra2_identity_and_monotonicity(crop):
    assert EM.ssimulacra2(crop, crop) == 100.0
    by_quality = [EM.ssimulacra2(crop, jpeg(crop, q)) for q in (95, 70, 40, 10)]
    assert 100 > by_quality[0] > by_quality[1] > by_quality[2] > by_quality[3]
    by_noise = [EM.ssimulacra2(crop, noisy(crop, s)) for s in (2, 8, 32)]
    assert 100 > by_noise[0] > by_noise[1] > by_noise[2]


def test_ssimulacra2_scale_on_kodim23(kodim23):
    """libjxl's guide: ~30 is "low quality", the average of libjpeg-turbo q20 4:2:0 (Pillow's
    JPEG is libjpeg-turbo, 4:2:0 by default); ~90 is visually lossless."""
    assert 15 < EM.ssimulacra2(kodim23, jpeg(kodim23, 20)) < 40
    assert 80 < EM.ssimulacra2(kodim23, jpeg(kodim23, 95)) < 95


def test_ssimulacra2_small_image(rng):
    a = rng.integers(0, 256, (7, 40, 3), dtype=np.uint8)
    with pytest.raises(LicodecError, match="8 px"):
        EM.ssimulacra2(a, a)
    b = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert EM.ssimulacra2(b, b) == 100.0


# --------------------------------------------------------------------------- ColorVideoVDP


@pytest.fixture(scope="module")
def cvvdp():
    return EM.CVVDP()


def test_cvvdp_matches_the_package(cvvdp, crop):
    import torch

    import pycvvdp

    d = jpeg(crop, 20)
    ours = cvvdp(crop, d)
    ref_metric = pycvvdp.cvvdp(display_name="standard_4k", quiet=True, device=torch.device("cpu"))
    with torch.no_grad():
        expected, _ = ref_metric.predict(d, crop, dim_order="HWC")
    assert ours == pytest.approx(float(expected), abs=1e-5)
    assert 0 < ours < 10 and cvvdp.model.quality_unit() == "JOD"


def test_cvvdp_identity_and_monotonicity(cvvdp, crop):
    assert cvvdp(crop, crop) == pytest.approx(10.0, abs=1e-4)
    by_quality = [cvvdp(crop, jpeg(crop, q)) for q in (90, 50, 10)]
    assert 10 > by_quality[0] > by_quality[1] > by_quality[2]
    by_noise = [cvvdp(crop, noisy(crop, s)) for s in (2, 8, 32)]
    assert 10 > by_noise[0] > by_noise[1] > by_noise[2]


def test_cvvdp_small_image_and_bad_display(cvvdp, rng):
    a = rng.integers(0, 256, (15, 40, 3), dtype=np.uint8)
    with pytest.raises(LicodecError, match="16 px"):
        cvvdp(a, a)
    with pytest.raises(LicodecError, match="no-such-display"):
        EM.CVVDP(display_name="no-such-display")


def test_cvvdp_and_ssimulacra2_need_no_network_and_write_nothing(tmp_path, crop):
    """In a fresh process with an empty HOME, sockets disabled and no HF_HUB_OFFLINE: both
    metrics run, HOME stays empty, and the environment is left as it was."""
    home, mpl = tmp_path / "home", tmp_path / "mpl"
    home.mkdir()
    np.save(tmp_path / "ref.npy", crop)
    np.save(tmp_path / "dist.npy", jpeg(crop, 20))
    code = f"""
import json, os, socket, sys
import numpy as np
def refuse(*a, **k):
    raise OSError("network disabled in this test")
socket.socket.connect = socket.create_connection = refuse
from licodec.eval import metric_registry as R
ref, dist = np.load({str(tmp_path / 'ref.npy')!r}), np.load({str(tmp_path / 'dist.npy')!r})
before = dict(os.environ)
out = {{name: R.build(name)(ref, dist) for name in ("cvvdp", "ssimulacra2")}}
out["env_changed"] = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))
print(json.dumps(out))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "XDG_"))}
    env.update(HOME=str(home), MPLCONFIGDIR=str(mpl), OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert 0 < out["cvvdp"] < 10 and 0 < out["ssimulacra2"] < 100
    assert out["env_changed"] == []
    assert list(home.rglob("*")) == []
