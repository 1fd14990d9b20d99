"""Full-reference perceptual quality metrics on 8-bit RGB images.

Every metric takes two ``numpy.uint8`` arrays of shape ``(H, W, 3)``, the reference
first and the distorted image second, and returns a Python ``float``:

``ms-ssim``
    Multi-scale SSIM (Z. Wang, E. P. Simoncelli, A. C. Bovik, "Multiscale structural
    similarity for image quality assessment", Asilomar 2003), computed by
    ``pytorch_msssim`` on the 0..255 range: 5 scales, 11-px Gaussian window (sigma 1.5).
    In [0, 1], higher is better; :func:`ms_ssim_db` maps it to dB.
``haarpsi``
    HaarPSI (R. Reisenhofer, S. Bosse, G. Kutyniok, T. Wiegand, "A Haar wavelet-based
    perceptual similarity index for image quality assessment", Signal Processing: Image
    Communication 61, 2018), computed by ``piq``. In [0, 1], higher is better. Needs no
    learned weights: the perceptual metric that always works offline.
``lpips`` / ``lpips-vgg``
    LPIPS v0.1 (R. Zhang, P. Isola, A. A. Efros, E. Shechtman, O. Wang, "The
    unreasonable effectiveness of deep features as a perceptual metric", CVPR 2018) on
    an AlexNet / VGG16 trunk, computed by the ``lpips`` package. >= 0, lower is better.
``dists``
    DISTS (K. Ding, K. Ma, S. Wang, E. P. Simoncelli, "Image quality assessment:
    unifying structure and texture similarity", IEEE TPAMI 44(5), 2022; arXiv 2020),
    our own implementation (:class:`DISTSNet`) of the authors' architecture. In [0, 1]
    in practice, lower is better.
``vif``
    Pixel-domain Visual Information Fidelity, VIFp (H. R. Sheikh, A. C. Bovik, "Image
    information and visual quality", IEEE TIP 15(2), 2006; the authors' pixel-domain
    version), computed by ``piq.vif_p`` on BT.601 luma: 4 scales, sigma_n^2 = 2. 1 for
    identical images, lower for losses of information, above 1 for contrast enhancement;
    higher is better.

Names, directions, units and minimum sizes of all metrics (these and the others, in
:mod:`licodec.eval.pyramid_metrics` and :mod:`licodec.eval.external_metrics`) live in
:mod:`licodec.eval.metric_registry`.

LPIPS and DISTS need ImageNet-trained torchvision backbones that are never downloaded
here. They are read from a local torchvision checkpoint: an explicit path, else
``<weights_dir>/<file>``, else the torch hub cache ``$TORCH_HOME/hub/checkpoints/<file>``
(see :func:`backbone_path`); when it is missing, :class:`~licodec.errors.LicodecError`
says which file, where it was looked for, and the URL to fetch it from. Their learned
heads ship with the ``lpips`` and ``DISTS_pytorch`` packages.

All networks run in fp32 on the CPU, in eval mode and under ``torch.no_grad()``; a
built metric (:func:`build_metric`, :func:`load_lpips`, :func:`load_dists`) holds its
network and is meant to be reused across many images. ``lpips``, ``piq`` and
``pytorch_msssim`` are imported lazily, so importing this module is cheap.
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from licodec.errors import LicodecError
from licodec.eval import metric_registry as registry

PathLike = Union[str, Path]
Metric = Callable[[np.ndarray, np.ndarray], float]


#: torchvision's checkpoint file name for each ImageNet backbone used here.
BACKBONE_FILES = {
    "alexnet": "alexnet-owt-7be5be79.pth",
    "vgg16": "vgg16-397923af.pth",
    "squeezenet1_1": "squeezenet1_1-b8a52dc0.pth",
}
_DOWNLOAD_ROOT = "https://download.pytorch.org/models/"

#: lpips trunk name -> (torchvision architecture, smallest image side the trunk accepts)
_LPIPS_NETS = {"alex": ("alexnet", registry.get("lpips").min_side),
               "vgg": ("vgg16", registry.get("lpips-vgg").min_side),
               "squeeze": ("squeezenet1_1", 17)}

_MS_SSIM_MIN_SIDE = registry.get("ms-ssim").min_side  # pytorch_msssim: side > (win_size - 1) * 2**4 = 160
_HAARPSI_MIN_SIDE = registry.get("haarpsi").min_side  # piq.haarpsi, 3 scales: Haar kernel of 2**(3 + 1) px


# --------------------------------------------------------------------------- helpers


def _import(module: str, pip_name: str, metric: str):
    """Import an optional dependency, with torchvision's missing-extension patch applied first."""
    from licodec._compat import patch_torchvision

    patch_torchvision()
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise LicodecError(f"{metric} needs the {pip_name} package ({exc}): pip install {pip_name}") from None


def _check_pair(ref: np.ndarray, dist: np.ndarray, metric: str, min_side: int = 1) -> None:
    """Raise LicodecError unless ``ref`` and ``dist`` are same-shape ``(H, W, 3)`` uint8 arrays."""
    registry.check_arrays(ref, dist, metric, min_side)


def _to_tensor(a: np.ndarray, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(1, 3, H, W)`` float32 tensor ``a * scale + shift``."""
    if not (a.flags.writeable and a.flags.c_contiguous):  # e.g. np.asarray(PIL image) is read-only
        a = np.array(a, order="C")
    t = torch.from_numpy(a).permute(2, 0, 1)[None].to(torch.float32)
    if scale != 1.0:
        t = t * scale
    if shift != 0.0:
        t = t + shift
    return t


def _freeze(model: nn.Module) -> nn.Module:
    model = model.float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# --------------------------------------------------------------------------- MS-SSIM


def ms_ssim(ref: np.ndarray, dist: np.ndarray) -> float:
    """MS-SSIM of two ``(H, W, 3)`` uint8 images, in [0, 1] (1: identical).

    Computed by ``pytorch_msssim.ms_ssim`` on the 0..255 range (``data_range=255``), 5
    scales with the standard weights, an 11-px Gaussian window (sigma 1.5), averaged over
    the RGB channels. The four 2x downsamplings need a smaller side of at least 161 px.
    """
    _check_pair(ref, dist, "MS-SSIM")
    h, w = ref.shape[:2]
    if min(h, w) < _MS_SSIM_MIN_SIDE:
        raise LicodecError(f"MS-SSIM needs images larger than 160 px on their smaller side "
                           f"(5 scales, 11-px window), got {w}x{h}; use PSNR or HaarPSI for small images")
    pm = _import("pytorch_msssim", "pytorch-msssim", "MS-SSIM")
    with torch.no_grad():
        return float(pm.ms_ssim(_to_tensor(ref), _to_tensor(dist), data_range=255, size_average=True))


def ms_ssim_db(value: float) -> float:
    """MS-SSIM in decibels, ``-10 * log10(1 - value)``; ``inf`` when ``value >= 1``."""
    from licodec.eval.results import to_db

    return to_db("ms-ssim-rgb", [float(value)])[0]


# --------------------------------------------------------------------------- HaarPSI


def haarpsi(ref: np.ndarray, dist: np.ndarray) -> float:
    """HaarPSI of two ``(H, W, 3)`` uint8 images, in [0, 1] (1: identical).

    ``piq.haarpsi`` with the paper's defaults (3 Haar scales, 2x subsampling, C = 30,
    alpha = 4.2) on the YIQ colour version. Needs no learned weights. Both sides must be
    at least 16 px. Identical images give exactly 1.0 (piq returns ``inf`` for two
    all-black images, where every weight is zero).
    """
    _check_pair(ref, dist, "HaarPSI", _HAARPSI_MIN_SIDE)
    if np.array_equal(ref, dist):
        return 1.0
    piq = _import("piq", "piq", "HaarPSI")
    with torch.no_grad():
        return float(piq.haarpsi(_to_tensor(ref), _to_tensor(dist), data_range=255.0, reduction="mean"))


# --------------------------------------------------------------------------- VIF


def vif(ref: np.ndarray, dist: np.ndarray) -> float:
    """Pixel-domain VIF of ``dist`` against ``ref`` (``(H, W, 3)`` uint8); 1 when identical.

    ``piq.vif_p(dist, ref)`` (piq takes the distorted image first) in float32 on the
    0..255 range: BT.601 luma, 4 scales of Gaussian windows of 17, 9, 5, 3 px with valid
    convolutions, visual noise variance 2 (float64 agrees to ~1e-5 and is 14x slower).
    Not symmetric. Usually in [0, 1]; above 1 when ``dist`` has more contrast than
    ``ref``. Both sides must be at least 41 px.
    """
    _check_pair(ref, dist, "VIF", registry.get("vif").min_side)
    piq = _import("piq", "piq", "VIF")
    with torch.no_grad():
        return float(piq.vif_p(_to_tensor(dist), _to_tensor(ref), sigma_n_sq=2.0, data_range=255.0,
                               reduction="mean"))


# --------------------------------------------------------------------------- backbones


def backbone_path(arch: str, weights_dir: Optional[PathLike] = None) -> Path:
    """Where the torchvision ImageNet checkpoint of ``arch`` is looked for (it may not exist).

    ``arch`` is ``"alexnet"``, ``"vgg16"`` or ``"squeezenet1_1"``. The file is
    ``<weights_dir>/<file>`` when ``weights_dir`` is given, else torchvision's own cache
    ``torch.hub.get_dir()/checkpoints/<file>`` (``$TORCH_HOME/hub/checkpoints``,
    ``TORCH_HOME`` defaulting to ``~/.cache/torch``), with ``<file>`` from
    :data:`BACKBONE_FILES`.
    """
    if arch not in BACKBONE_FILES:
        raise LicodecError(f"unknown backbone {arch!r}; valid: {', '.join(BACKBONE_FILES)}")
    folder = Path(weights_dir).expanduser() if weights_dir is not None else Path(torch.hub.get_dir()) / "checkpoints"
    return folder / BACKBONE_FILES[arch]


def _resolve_backbone(arch: str, backbone: Optional[PathLike], metric: str) -> Path:
    """The checkpoint to read: ``backbone`` (a file; a folder, or a path without suffix, holding
    the torchvision file name) or the hub cache; LicodecError with the download URL when it does not exist."""
    fname = BACKBONE_FILES[arch]
    if backbone is None:
        path, where = backbone_path(arch), "the torch hub cache, $TORCH_HOME/hub/checkpoints"
    else:
        path, where = Path(backbone).expanduser(), "the given file"
        if path.is_dir() or not path.suffix:  # a folder (existing or not) holding the torchvision file
            path, where = path / fname, "the given weights folder"
    if not path.is_file():
        raise LicodecError(
            f"{metric} needs the ImageNet {arch} backbone {fname}, not found at {path} ({where}); "
            f"nothing is downloaded: fetch {_DOWNLOAD_ROOT}{fname} into {path.parent} "
            f"or pass the folder holding it as weights_dir")
    return path


def _load_features(path: Path, arch: str, metric: str) -> Dict[str, torch.Tensor]:
    """The ``features.*`` tensors of a torchvision ``arch`` checkpoint, keyed without the prefix."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, not a torch file, pickled objects...
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LicodecError(f"{metric}: cannot read the {arch} backbone {path}: {msg}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise LicodecError(f"{metric}: {path} is not a torchvision {arch} state dict")
    feats = {k[len("features."):]: v for k, v in state.items()
             if isinstance(k, str) and k.startswith("features.") and isinstance(v, torch.Tensor)}
    if not feats:
        raise LicodecError(f"{metric}: {path} holds no 'features.*' weights; is it a torchvision {arch} checkpoint?")
    return feats


def _load_backbone(module: nn.Module, tv_key: Callable[[str], str], features: Dict[str, torch.Tensor],
                   path: Path, arch: str, metric: str, skip: Tuple[str, ...] = ()) -> None:
    """Copy torchvision ``features`` tensors into ``module``: each own tensor ``k`` (except
    names ending in ``skip``) gets ``features[tv_key(k)]``; one-line LicodecError when a
    tensor is missing or has the wrong shape."""
    new = {}
    for key, value in module.state_dict().items():
        if skip and key.endswith(skip):
            continue
        src = tv_key(key)
        if src not in features:
            raise LicodecError(f"{metric}: {path} lacks features.{src}; is it a torchvision {arch} checkpoint?")
        if tuple(features[src].shape) != tuple(value.shape):
            raise LicodecError(f"{metric}: {path}: features.{src} has shape {tuple(features[src].shape)}, "
                               f"expected {tuple(value.shape)}; is it a torchvision {arch} checkpoint?")
        new[key] = features[src].to(torch.float32)
    module.load_state_dict({**module.state_dict(), **new}, strict=True)  # skipped tensors keep theirs


# --------------------------------------------------------------------------- LPIPS


class LPIPS:
    """LPIPS v0.1 distance between two ``(H, W, 3)`` uint8 images; >= 0, 0 for identical images.

    The network is ``lpips.LPIPS(net=net)``: its learned linear heads ship inside the
    ``lpips`` package; its trunk is built with random weights (``pnet_rand=True``, so
    torchvision downloads nothing) and then loaded from the local torchvision ImageNet
    checkpoint (see :func:`backbone_path`). The ``lpips`` trunks are ``nn.Sequential``
    slices that keep torchvision's module indices as names (``slice2.3.weight`` is
    torchvision's ``features.3.weight``), so the checkpoint maps onto them by index.

    Args:
        net: trunk, ``"alex"`` (the LPIPS default and the best-validated), ``"vgg"`` or
            ``"squeeze"``.
        backbone: torchvision checkpoint file, or a folder holding it under its torchvision
            file name; ``None``: the torch hub cache.

    Calling it maps each image to [-1, 1] (``x / 127.5 - 1``) as LPIPS expects; images
    must be at least 31 (alex), 16 (vgg) or 17 (squeeze) px on each side. ``.model`` is
    the underlying ``lpips.LPIPS`` module, taking ``(N, 3, H, W)`` tensors in [-1, 1].
    """

    def __init__(self, net: str = "alex", backbone: Optional[PathLike] = None):
        if net not in _LPIPS_NETS:
            raise LicodecError(f"unknown LPIPS trunk {net!r}; valid: {', '.join(_LPIPS_NETS)}")
        arch, self.min_side = _LPIPS_NETS[net]
        self.net = net
        self.name = "LPIPS" if net == "alex" else f"LPIPS-{net}"
        path = _resolve_backbone(arch, backbone, self.name)
        features = _load_features(path, arch, self.name)
        lpips = _import("lpips", "lpips", self.name)
        try:
            with warnings.catch_warnings():  # lpips passes torchvision's deprecated ``pretrained=``
                warnings.simplefilter("ignore")
                model = lpips.LPIPS(net=net, version="0.1", pretrained=True, pnet_rand=True, verbose=False)
        except Exception as exc:  # e.g. the linear heads missing from a broken lpips install
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise LicodecError(f"{self.name}: cannot build lpips.LPIPS(net={net!r}): {type(exc).__name__}: {msg}; "
                               f"reinstall lpips (pip install lpips)") from None
        # lpips trunk "slice2.3.weight" is torchvision "features.3.weight"
        _load_backbone(model.net, lambda k: k.split(".", 1)[1], features, path, arch, self.name)
        self.model = _freeze(model)
        self.backbone = path

    def __call__(self, ref: np.ndarray, dist: np.ndarray) -> float:
        """LPIPS distance between ``ref`` and ``dist`` (uint8, ``(H, W, 3)``); lower is more similar."""
        _check_pair(ref, dist, self.name, self.min_side)
        with torch.no_grad():
            x = _to_tensor(ref, 1 / 127.5, -1.0)
            y = _to_tensor(dist, 1 / 127.5, -1.0)
            return float(self.model(x, y).reshape(()))


def load_lpips(net: str = "alex", backbone: Optional[PathLike] = None) -> LPIPS:
    """Build an :class:`LPIPS` metric once; call it as ``metric(ref, dist) -> float``."""
    return LPIPS(net=net, backbone=backbone)


def lpips_alex(weights_dir: Optional[PathLike] = None) -> LPIPS:
    """The registry's ``lpips``: AlexNet trunk from ``weights_dir`` (else the torch hub cache)."""
    return LPIPS(net="alex", backbone=weights_dir)


def lpips_vgg(weights_dir: Optional[PathLike] = None) -> LPIPS:
    """The registry's ``lpips-vgg``: VGG16 trunk from ``weights_dir`` (else the torch hub cache)."""
    return LPIPS(net="vgg", backbone=weights_dir)


# --------------------------------------------------------------------------- DISTS

#: VGG16 convolution widths per stage (torchvision ``vgg16().features`` 0..29).
_VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


class L2Pool(nn.Module):
    """L2 pooling, DISTS' replacement for VGG's max-pooling (antialiased downsampling).

    ``sqrt(blur(x ** 2) + 1e-12)`` sampled with stride 2, where ``blur`` is a per-channel
    3x3 Hann window ``[1, 2, 1]^T [1, 2, 1] / 16`` with 1 px zero padding:
    ``(N, C, H, W) -> (N, C, ceil(H / 2), ceil(W / 2))``.
    """

    def __init__(self, channels: int):
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        window = torch.outer(taps, taps) / 16.0
        self.register_buffer("kernel", window.expand(channels, 1, 3, 3).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x * x, self.kernel, stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


class DISTSNet(nn.Module):
    """The DISTS network (Ding et al. 2020): VGG16 features with L2 pooling, and a learned
    weighting of per-channel texture and structure similarities.

    Representation: the image itself plus the ReLU outputs of the five VGG16 stages
    (``relu1_2``, ``relu2_2``, ``relu3_3``, ``relu4_3``, ``relu5_3``; 3 + 64 + 128 + 256
    + 512 + 512 = 1475 channels), where every max-pooling is replaced by :class:`L2Pool`.
    For each channel ``j`` of stage ``i``, with global means ``mu``, variances
    ``sigma^2`` and covariance ``sigma_xy`` of the two feature maps:

    * texture similarity ``l = (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1)``,
    * structure similarity ``s = (2 sigma_xy + c2) / (sigma_x^2 + sigma_y^2 + c2)``,

    and ``DISTS = 1 - sum_ij (alpha_ij l_ij + beta_ij s_ij)`` with ``alpha, beta >= 0``
    normalised to sum to 1 together, ``c1 = c2 = 1e-6``.

    The VGG16 convolutions are stored under torchvision's ``features`` indices
    (``stages.1.5.weight`` is torchvision's ``features.5.weight``);
    ``alpha``/``beta`` are ``(1, 1475, 1, 1)`` buffers (:meth:`load_head`). A fresh
    instance has random convolutions and uniform weights.
    """

    channels = (3, 64, 128, 256, 512, 512)

    def __init__(self):
        super().__init__()
        stages = []
        index, in_ch = 0, 3
        for s, widths in enumerate(_VGG16_STAGES):
            stage = nn.Sequential()
            if s > 0:
                stage.add_module(str(index), L2Pool(in_ch))
                index += 1
            for out_ch in widths:
                stage.add_module(str(index), nn.Conv2d(in_ch, out_ch, 3, padding=1))
                stage.add_module(str(index + 1), nn.ReLU(inplace=True))
                index, in_ch = index + 2, out_ch
            stages.append(stage)
        self.stages = nn.ModuleList(stages)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        n = sum(self.channels)
        self.register_buffer("alpha", torch.full((1, n, 1, 1), 0.5 / n))
        self.register_buffer("beta", torch.full((1, n, 1, 1), 0.5 / n))

    def load_head(self, alpha: torch.Tensor, beta: torch.Tensor) -> None:
        """Set the learned ``(1, 1475, 1, 1)`` texture (``alpha``) and structure (``beta``) weights."""
        for name, value in (("alpha", alpha), ("beta", beta)):
            if tuple(value.shape) != tuple(self.alpha.shape):
                raise ValueError(f"{name} has shape {tuple(value.shape)}, expected {tuple(self.alpha.shape)}")
            getattr(self, name).copy_(value.detach().to(torch.float32))

    def features(self, x: torch.Tensor) -> List[torch.Tensor]:
        """``(N, 3, H, W)`` in [0, 1] -> [x, relu1_2, relu2_2, relu3_3, relu4_3, relu5_3]."""
        h = (x - self.mean) / self.std
        feats = [x]
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        return feats

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """DISTS between ``x`` and ``y``, ``(N, 3, H, W)`` in [0, 1] -> ``(N,)``; 0 when equal."""
        c1 = c2 = 1e-6
        total = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / total, list(self.channels), dim=1)
        betas = torch.split(self.beta / total, list(self.channels), dim=1)
        texture = structure = 0.0
        for fx, fy, a, b in zip(self.features(x), self.features(y), alphas, betas):
            mx = fx.mean([2, 3], keepdim=True)
            my = fy.mean([2, 3], keepdim=True)
            tex = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
            texture = texture + (a * tex).sum(1, keepdim=True)
            vx = ((fx - mx) ** 2).mean([2, 3], keepdim=True)
            vy = ((fy - my) ** 2).mean([2, 3], keepdim=True)
            cxy = (fx * fy).mean([2, 3], keepdim=True) - mx * my
            struct = (2 * cxy + c2) / (vx + vy + c2)
            structure = structure + (b * struct).sum(1, keepdim=True)
        return 1 - (texture + structure).reshape(-1)


def dists_head_path() -> Path:
    """``weights.pt`` (DISTS' alpha/beta) inside the installed ``DISTS_pytorch`` package."""
    try:
        spec = importlib.util.find_spec("DISTS_pytorch")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise LicodecError("DISTS needs the alpha/beta weights shipped with the DISTS_pytorch package, "
                           "which is not installed: pip install DISTS_pytorch (or pass head=<weights.pt>)")
    return Path(list(spec.submodule_search_locations)[0]) / "weights.pt"


class DISTS:
    """DISTS distance between two ``(H, W, 3)`` uint8 images; 0 for identical images, lower is better.

    Wraps a :class:`DISTSNet` whose VGG16 comes from the local torchvision checkpoint
    ``vgg16-397923af.pth`` (see :func:`backbone_path`) and whose alpha/beta come from
    ``head`` (default: ``weights.pt`` of the installed ``DISTS_pytorch`` package).
    Images are fed at full resolution, scaled to [0, 1] (the DISTS authors optionally
    resize the smaller side to 256 px first; we do not). ``.model`` is the network.
    """

    name = "DISTS"

    def __init__(self, backbone: Optional[PathLike] = None, head: Optional[PathLike] = None):
        path = _resolve_backbone("vgg16", backbone, self.name)
        head_path = Path(head).expanduser() if head is not None else dists_head_path()
        if not head_path.is_file():
            raise LicodecError(f"DISTS needs its alpha/beta weights, not found at {head_path}; "
                               f"reinstall DISTS_pytorch (pip install DISTS_pytorch) or pass head=<weights.pt>")
        try:
            weights = torch.load(head_path, map_location="cpu", weights_only=True)
            alpha, beta = weights["alpha"], weights["beta"]
        except Exception as exc:
            raise LicodecError(f"DISTS: cannot read alpha/beta from {head_path}: {type(exc).__name__}: "
                               f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from None
        features = _load_features(path, "vgg16", self.name)
        model = DISTSNet()
        try:
            model.load_head(alpha, beta)
        except ValueError as exc:
            raise LicodecError(f"DISTS: {head_path}: {exc}") from None
        # stage module "1.5.weight" (stage 1, torchvision index 5) is torchvision "features.5.weight"
        _load_backbone(model.stages, lambda k: k.split(".", 1)[1], features, path, "vgg16", self.name,
                       skip=(".kernel",))
        self.model = _freeze(model)
        self.backbone, self.head = path, head_path

    def __call__(self, ref: np.ndarray, dist: np.ndarray) -> float:
        """DISTS between ``ref`` and ``dist`` (uint8, ``(H, W, 3)``)."""
        _check_pair(ref, dist, self.name)
        with torch.no_grad():
            return float(self.model(_to_tensor(ref, 1 / 255.0), _to_tensor(dist, 1 / 255.0)).reshape(()))


def load_dists(backbone: Optional[PathLike] = None, head: Optional[PathLike] = None) -> DISTS:
    """Build a :class:`DISTS` metric once; call it as ``metric(ref, dist) -> float``."""
    return DISTS(backbone=backbone, head=head)


def dists_metric(weights_dir: Optional[PathLike] = None) -> DISTS:
    """The registry's ``dists``: VGG16 from ``weights_dir`` (else the torch hub cache)."""
    return DISTS(backbone=weights_dir)


# --------------------------------------------------------------------------- registry


def _canonical(name: str) -> str:
    return registry.get(name, selectable=True).name


def higher_is_better(name: str) -> bool:
    """The direction of a metric, from :mod:`licodec.eval.metric_registry`."""
    return registry.get(name, selectable=True).higher_is_better


def build_metric(name: str, weights_dir: Optional[PathLike] = None) -> Metric:
    """A metric by name (``licodec eval -m`` names, see :mod:`licodec.eval.metric_registry`):
    ``metric(ref, dist) -> float``.

    ``ref`` and ``dist`` are ``(H, W, 3)`` uint8 RGB arrays, reference first. Networks
    are built here, once; reuse the returned object across images. ``weights_dir``, if
    given, is a folder holding the torchvision backbone checkpoints
    (``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``) and replaces the torch hub
    cache. Raises LicodecError for an unknown name or missing weights.
    """
    return registry.build(_canonical(name), weights_dir=weights_dir)
