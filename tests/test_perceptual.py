"""Perceptual metrics: MS-SSIM, HaarPSI, and LPIPS / DISTS plumbing with random-weight backbones.

The torch hub cache is an empty temporary folder here (conftest.py), so no ImageNet
weights exist: LPIPS and DISTS are checked for exact agreement with the reference
implementations (``lpips.LPIPS``, ``DISTS_pytorch.DISTS``) fed the same random backbone
through torchvision, which proves that our checkpoint-to-network mapping is right.
"""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import random_image
from licodec.errors import LicodecError
from licodec.eval import perceptual as P

ALEX_FILE = "alexnet-owt-7be5be79.pth"
VGG_FILE = "vgg16-397923af.pth"


def noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def img():
    return random_image(np.random.default_rng(7), 192, 192)


@pytest.fixture(scope="module")
def torchvision():
    from licodec._compat import patch_torchvision

    patch_torchvision()
    import torchvision

    return torchvision


@pytest.fixture(scope="module")
def alex_dir(tmp_path_factory, torchvision):
    """A random torchvision AlexNet, its checkpoint saved as torchvision names it.

    Saved in the legacy (non-zip) format of the real 2017 download; only ``features.*``
    (what LPIPS reads) plus a token classifier tensor, to keep the file small.
    """
    torch.manual_seed(0)
    model = torchvision.models.alexnet(weights=None).eval()
    state = {k: v for k, v in model.state_dict().items() if k.startswith("features.")}
    state["classifier.1.bias"] = torch.zeros(4096)  # extra keys are ignored
    folder = tmp_path_factory.mktemp("alex")
    torch.save(state, folder / ALEX_FILE, _use_new_zipfile_serialization=False)
    return folder, model


@pytest.fixture(scope="module")
def vgg_dir(tmp_path_factory, torchvision):
    """A random VGG16 ``features`` (VGG's own init, random biases so that their mapping shows)."""
    torch.manual_seed(1)
    vgg = torchvision.models.vgg
    features = vgg.make_layers(vgg.cfgs["D"])
    for m in features.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            torch.nn.init.normal_(m.bias, 0.0, 0.05)
    model = torch.nn.Module()
    model.features = features.eval()
    folder = tmp_path_factory.mktemp("vgg")
    torch.save(model.state_dict(), folder / VGG_FILE)
    return folder, model


# --------------------------------------------------------------------------- MS-SSIM


def test_ms_ssim_identity_noise_and_reference(img):
    import pytorch_msssim

    assert P.ms_ssim(img, img) == pytest.approx(1.0, abs=1e-6)
    low, high = P.ms_ssim(img, noisy(img, 5)), P.ms_ssim(img, noisy(img, 20))
    assert 0 < high < low < 1
    t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float()  # noqa: E731
    ref = pytorch_msssim.ms_ssim(t(img), t(noisy(img, 5)), data_range=255).item()
    assert low == pytest.approx(ref, abs=1e-7)


def test_ms_ssim_rejects_small_and_mismatched(rng):
    small = random_image(rng, 160, 300)
    with pytest.raises(LicodecError, match="160 px"):
        P.ms_ssim(small, small)
    a = random_image(rng, 192, 192)
    with pytest.raises(LicodecError, match="differ in size"):
        P.ms_ssim(a, a[:180])
    with pytest.raises(LicodecError, match="uint8"):
        P.ms_ssim(a.astype(np.float32), a.astype(np.float32))


def test_ms_ssim_db():
    assert P.ms_ssim_db(0.9) == pytest.approx(10.0)
    assert P.ms_ssim_db(0.99) == pytest.approx(20.0)
    assert P.ms_ssim_db(0.0) == 0.0
    assert P.ms_ssim_db(1.0) == math.inf


# --------------------------------------------------------------------------- HaarPSI


def test_haarpsi_identity_and_monotonic(img):
    assert P.haarpsi(img, img) == pytest.approx(1.0)
    scores = [P.haarpsi(img, noisy(img, s)) for s in (2, 8, 32)]
    assert 1 > scores[0] > scores[1] > scores[2] > 0
    black = np.zeros((32, 32, 3), np.uint8)
    assert P.haarpsi(black, black) == 1.0  # piq itself returns inf here


def test_haarpsi_small_image(rng):
    a = random_image(rng, 15, 64)
    with pytest.raises(LicodecError, match="16 px"):
        P.haarpsi(a, a)


# --------------------------------------------------------------------------- VIF


def test_vif_identity_monotonic_and_reference(img):
    import piq
    from PIL import Image, ImageFilter

    assert P.vif(img, img) == pytest.approx(1.0, abs=1e-6)
    scores = [P.vif(img, noisy(img, s)) for s in (2, 8, 32)]
    assert 1 > scores[0] > scores[1] > scores[2] > 0
    blurred = [np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(r))) for r in (0.7, 1.5, 3)]
    blur_scores = [P.vif(img, b) for b in blurred]
    assert 1 > blur_scores[0] > blur_scores[1] > blur_scores[2] > 0
    # piq takes the distorted image first; VIF is not symmetric
    t = lambda a: torch.from_numpy(np.array(a)).permute(2, 0, 1)[None].float()  # noqa: E731
    expected = piq.vif_p(t(blurred[1]), t(img), data_range=255.0).item()
    assert blur_scores[1] == pytest.approx(expected, rel=1e-6)
    assert P.vif(blurred[1], img) != pytest.approx(blur_scores[1], rel=1e-3)
    # more contrast than the reference: above 1 (VIF is a fidelity, not a distance)
    low_contrast = (128 + (img.astype(np.float64) - 128) * 0.5).round().astype(np.uint8)
    assert P.vif(low_contrast, img) > 1


def test_vif_small_image(rng):
    a = random_image(rng, 40, 64)
    with pytest.raises(LicodecError, match="41 px"):
        P.vif(a, a)


# --------------------------------------------------------------------------- LPIPS


def _distance_behaviour(metric, img):
    """0 on identical images, positive and growing with noise, deterministic on reuse."""
    dist = noisy(img, 10)
    assert metric(img, img) == pytest.approx(0.0, abs=1e-6)
    ours = metric(img, dist)
    assert ours > 0
    assert metric(img, noisy(img, 30)) > ours
    assert metric(img, dist) == ours
    return dist, ours


def test_lpips_matches_reference(alex_dir, img, monkeypatch):
    import lpips

    folder, model = alex_dir
    metric = P.build_metric("lpips", weights_dir=folder)
    dist, ours = _distance_behaviour(metric, img)

    # Reference: lpips slices a torchvision alexnet itself; hand it the same random model.
    monkeypatch.setattr(lpips.pretrained_networks.tv, "alexnet", lambda *a, **k: model)
    ref_model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
    with torch.no_grad():
        expected = ref_model(lpips.im2tensor(img), lpips.im2tensor(dist)).item()
    assert ours == pytest.approx(expected, abs=1e-6, rel=1e-5)
    assert abs(expected) > 1e-4  # the comparison is not vacuous


def test_lpips_explicit_file_and_small_image(alex_dir, img):
    folder, _ = alex_dir
    metric = P.load_lpips("alex", backbone=folder / ALEX_FILE)
    assert metric.backbone == folder / ALEX_FILE
    tiny = img[:30, :64]
    with pytest.raises(LicodecError, match="31 px"):
        metric(tiny, tiny)


def test_lpips_missing_backbone(tmp_path):
    with pytest.raises(LicodecError) as err:
        P.build_metric("lpips")  # the (empty) torch hub cache
    msg = str(err.value)
    assert ALEX_FILE in msg and "\n" not in msg
    assert str(Path(torch.hub.get_dir()) / "checkpoints") in msg
    assert f"https://download.pytorch.org/models/{ALEX_FILE}" in msg
    with pytest.raises(LicodecError, match=VGG_FILE):
        P.build_metric("lpips-vgg", weights_dir=tmp_path)


def test_lpips_wrong_checkpoint(vgg_dir, tmp_path):
    folder, _ = vgg_dir
    wrong = tmp_path / ALEX_FILE
    wrong.write_bytes((folder / VGG_FILE).read_bytes())
    with pytest.raises(LicodecError, match="shape"):
        P.load_lpips(backbone=wrong)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / ALEX_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(LicodecError, match="cannot read"):
        P.load_lpips(backbone=tmp_path / "junk")


# --------------------------------------------------------------------------- DISTS


@pytest.mark.filterwarnings("error::UserWarning")
def test_dists_matches_reference(vgg_dir, img, monkeypatch):
    import torchvision
    from PIL import Image, ImageFilter

    folder, model = vgg_dir
    metric = P.build_metric("dists", weights_dir=folder)
    dist, ours = _distance_behaviour(metric, img)

    # Reference: DISTS_pytorch builds from torchvision.models.vgg16(pretrained=True): hand it
    # the random model instead, and its alpha/beta from the package's weights.pt.
    import DISTS_pytorch.DISTS_pt as ref_mod

    monkeypatch.setattr(torchvision.models, "vgg16", lambda *a, **k: model)
    ref_model = ref_mod.DISTS(load_weights=False).eval()
    head = Path(importlib.util.find_spec("DISTS_pytorch").submodule_search_locations[0]) / "weights.pt"
    weights = torch.load(head, weights_only=True)
    ref_model.alpha.data, ref_model.beta.data = weights["alpha"], weights["beta"]
    blurred = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(2)))  # read-only array
    for d in (dist, blurred):
        x, y = (ref_mod.prepare_image(Image.fromarray(a)) for a in (img, d))
        expected = ref_model(x, y).item()
        assert metric(img, d) == pytest.approx(expected, abs=1e-6, rel=1e-5)
        assert expected > 1e-3  # the comparison is not vacuous


def test_dists_missing_files(vgg_dir, tmp_path):
    with pytest.raises(LicodecError) as err:
        P.load_dists()
    assert VGG_FILE in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(LicodecError, match=VGG_FILE):
        P.build_metric("dists", weights_dir=tmp_path)
    folder, _ = vgg_dir
    with pytest.raises(LicodecError, match="alpha/beta"):
        P.load_dists(backbone=folder, head=tmp_path / "nope.pt")


# --------------------------------------------------------------------------- registry


def test_registry():
    from licodec.eval import metric_registry

    assert set(metric_registry.names(selectable=True)) >= {"ms-ssim", "haarpsi", "lpips", "dists", "vif"}
    assert P.build_metric("ms-ssim") is P.ms_ssim and P.build_metric("HaarPSI") is P.haarpsi
    assert P.build_metric("vif") is P.vif and P.higher_is_better("vif")
    assert [P.higher_is_better(n) for n in ("ms-ssim", "haarpsi", "lpips", "dists")] == [True, True, False, False]
    with pytest.raises(LicodecError, match="valid: ms-ssim, haarpsi"):
        P.build_metric("vmaf")
    with pytest.raises(LicodecError, match="unknown metric"):
        P.higher_is_better("psnr-hvs")


def test_import_is_lazy():
    import subprocess
    import sys

    code = ("import sys, licodec.eval.perceptual; "
            "print(sorted(m for m in ('lpips', 'piq', 'pytorch_msssim', 'torchvision', 'DISTS_pytorch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
