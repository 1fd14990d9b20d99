"""Full-reference metrics computed by third-party packages: SSIMULACRA 2 and ColorVideoVDP.

Both take two ``numpy.uint8`` arrays of shape ``(H, W, 3)`` (sRGB, the reference first)
and return a Python ``float``; higher is better for both. Neither needs a network or
learned weights downloaded at run time: their parameters ship inside the packages.

``ssimulacra2``
    SSIMULACRA 2.1 (J. Sneyers, Cloudinary / libjxl, 2022-2023: multi-scale SSIM and
    edge-difference maps in the XYB colour space, 6 scales, 1- and 4-norms, weights tuned
    on CID22, TID2013, KADID-10k and KonFiG-IQA), computed by the ``ssimulacra2`` PyPI
    package (BSD-3-Clause), a NumPy/SciPy port of libjxl's tool. 100 for identical
    images; about 90 "visually lossless", 70 high, 50 medium, 30 low quality; can be
    negative. Images must be at least 8 px on each side (the first scale needs 8).
``cvvdp``
    ColorVideoVDP (R. K. Mantiuk, P. Hanji, M. Ashraf, Y. Asano, A. Chapiro,
    "ColorVideoVDP: A visual difference predictor for image, video and display
    distortions", ACM TOG 43(4), SIGGRAPH 2024), the base (non-ML) metric of the ``cvvdp``
    PyPI package (MIT), in JOD (just-objectionable differences): 10 for identical
    images, lower for visible differences. Images are taken as display-encoded sRGB
    shown on the ``standard_4k`` display model (30-inch 4K monitor, 200 cd/m^2 peak,
    250 lux ambient, viewed from 0.75 m, 75 pixels per degree).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from licodec.errors import LicodecError
from licodec.eval import metric_registry as registry


def _to_ppm(a: np.ndarray) -> io.BytesIO:
    """An ``(H, W, 3)`` uint8 array as an in-memory binary PPM (lossless, no compression work)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PPM")
    buf.seek(0)
    return buf


def ssimulacra2(ref: np.ndarray, dist: np.ndarray) -> float:
    """SSIMULACRA 2 score of ``dist`` against ``ref`` (``(H, W, 3)`` uint8 sRGB); 100 when identical.

    ``ssimulacra2.compute_ssimulacra2`` reads images through Pillow, so each array is
    handed over as an in-memory PPM (no file is written). Not symmetric.
    """
    registry.check_pair(ref, dist, "ssimulacra2")
    try:
        from ssimulacra2 import compute_ssimulacra2
    except ImportError as exc:
        raise LicodecError(f"SSIMULACRA 2 needs the ssimulacra2 package ({exc}): pip install ssimulacra2") from None
    return float(compute_ssimulacra2(_to_ppm(ref), _to_ppm(dist)))


def _import_pycvvdp():
    """``import pycvvdp`` with torchvision patched first, leaving ``os.environ`` as it was
    (pycvvdp's ML module sets ``HF_HUB_TOKEN`` at import; its ML variants are never used here)."""
    from licodec._compat import patch_torchvision

    patch_torchvision()
    saved = os.environ.get("HF_HUB_TOKEN")
    try:
        import pycvvdp
    except ImportError as exc:
        raise LicodecError(f"ColorVideoVDP needs the cvvdp package ({exc}): pip install cvvdp") from None
    finally:
        if saved is None:
            os.environ.pop("HF_HUB_TOKEN", None)
        else:
            os.environ["HF_HUB_TOKEN"] = saved
    return pycvvdp


class CVVDP:
    """ColorVideoVDP (base metric) between two ``(H, W, 3)`` uint8 sRGB images, in JOD; 10 when identical.

    Built once (display model, CSF tables, pyramid), then called per image pair on the
    CPU in fp32 under ``torch.no_grad()``. The parameter and display files are read from
    the installed package's ``vvdp_data`` folder explicitly, so ``$CVVDP_PATH`` cannot
    change the result; nothing is downloaded or written. Images must be at least 16 px
    on each side (fewer pyramid bands below that; 1 px fails inside cvvdp).

    Args:
        display_name: a display model of cvvdp's ``display_models.json``.
        weights_dir: ignored (the registry passes it to every factory).
    """

    name = "ColorVideoVDP"

    def __init__(self, display_name: str = "standard_4k", weights_dir=None):
        import torch

        pycvvdp = _import_pycvvdp()
        self.config_dir = Path(pycvvdp.__file__).resolve().parent / "vvdp_data"
        try:
            self.model = pycvvdp.cvvdp(display_name=display_name, quiet=True, device=torch.device("cpu"),
                                       config_paths=[str(self.config_dir)])
        except Exception as exc:  # unknown display name, a broken install
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LicodecError(f"ColorVideoVDP: cannot build the metric for display {display_name!r}: {msg}") from None
        self.display_name = display_name

    def __call__(self, ref: np.ndarray, dist: np.ndarray) -> float:
        """JOD of ``dist`` against ``ref`` (uint8, ``(H, W, 3)``)."""
        import torch

        registry.check_pair(ref, dist, "cvvdp")
        with torch.no_grad():
            jod, _ = self.model.predict(np.ascontiguousarray(dist), np.ascontiguousarray(ref), dim_order="HWC")
        return float(jod)
