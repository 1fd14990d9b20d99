"""Two metrics on Laplacian pyramids, in NumPy/SciPy (float64, deterministic): NLPD and SWD.

Both take two ``numpy.uint8`` arrays of shape ``(H, W, 3)`` (sRGB, the reference first)
and return a Python ``float``; lower is better for both, 0 for identical images.

``nlpd``
    Normalized Laplacian Pyramid Distance (V. Laparra, J. Ballé, A. Berardino,
    E. P. Simoncelli, "Perceptual image quality assessment using a normalized Laplacian
    pyramid", IS&T Electronic Imaging, HVEI 2016), as in the authors' MATLAB code
    ``NLP_dist.m``: on a grey-scale image in [0, 1] (here the BT.601 luma of the sRGB
    values / 255, as MATLAB's ``rgb2gray``; no colour, as in the paper), a 6-level
    Laplacian pyramid with Burt and Adelson's 5-tap filter, each coefficient divided by
    ``sigma_k + P_k * |coefficients|`` with the paper's fixed per-level filters ``P_k``
    and constants ``sigma_k`` (learned on the McGill database), then the RMS difference
    per level, averaged over the 6 levels. Smaller side at least 32 px (so that the fifth,
    1/16-scale band still has 2 px).
``swd``
    Sliced Wasserstein distance between Laplacian-pyramid patch distributions, the
    realism measure of ProGAN (T. Karras, T. Aila, S. Laine, J. Lehtinen, "Progressive
    growing of GANs for improved quality, stability, and variation", ICLR 2018; also
    TF-GAN's ``sliced_wasserstein_distance``, after J. Rabin, G. Peyré, J. Delon,
    M. Bernot, "Wasserstein barycenter and its application to texture mixing", SSVM
    2011). See :func:`swd` for how it is sampled per image, and :func:`swd_pooled` for
    one figure over a set of images. Smaller side at least 16 px.
"""

from __future__ import annotations

import functools
from typing import Iterable, Sequence

import numpy as np
from scipy import ndimage

from licodec.eval import metric_registry as registry

# --------------------------------------------------------------------------- NLPD

#: Burt and Adelson's 5-tap low-pass [.05 .25 .4 .25 .05], as a 5x5 separable kernel.
_BURT_ADELSON = np.outer([0.05, 0.25, 0.4, 0.25, 0.05], [0.05, 0.25, 0.4, 0.25, 0.05])

#: NLP_dist.m's divisive-normalisation constants sigma_k, finest level first.
NLPD_SIGMAS = (0.0248, 0.0185, 0.0179, 0.0191, 0.0220, 0.2782)


def _dn_filter(up: float, left: float, right: float, down: float, far_right: float = 0.0) -> np.ndarray:
    f = np.zeros((5, 5))
    f[1, 2], f[2, 1], f[2, 3], f[3, 2], f[2, 4] = up, left, right, down, far_right
    return f


#: NLP_dist.m's 5x5 neighbour weights P_k (applied with true convolution, as MATLAB's ``conv2``).
NLPD_FILTERS = (
    _dn_filter(0.1011, 0.1493, 0.1460, 0.1015, 0.0072),
    _dn_filter(0.0757, 0.1986, 0.1846, 0.0837),
    _dn_filter(0.0477, 0.2138, 0.2243, 0.0467),
    _dn_filter(0.0, 0.2503, 0.2616, 0.0),
    _dn_filter(0.0, 0.2598, 0.2552, 0.0),
    _dn_filter(0.0, 0.2215, 0.0717, 0.0),
)


def _nlpd_reduce(img: np.ndarray) -> np.ndarray:
    """NLP_dist.m's ``downsample``: blur with symmetric (half-sample) borders, keep even samples."""
    return ndimage.correlate(img, _BURT_ADELSON, mode="reflect")[::2, ::2]


def _nlpd_expand(low: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """NLP_dist.m's ``upsample``: replicate-pad 1 px, zero-insert, 4 x blur with zero borders,
    crop to ``shape`` (the finer level's size, odd or even)."""
    padded = np.pad(low, 1, mode="edge")
    up = np.zeros((2 * padded.shape[0], 2 * padded.shape[1]))
    up[::2, ::2] = 4 * padded
    return ndimage.correlate(up, _BURT_ADELSON, mode="constant")[2:2 + shape[0], 2:2 + shape[1]]


def _nlpd_pyramid(img: np.ndarray) -> list[np.ndarray]:
    """6-level Laplacian pyramid of a 2-D float image, as ``laplacian_pyramid_s`` in NLP_dist.m
    (Burt and Adelson 1983); the last level is the low-pass residual."""
    pyr, j = [], img
    for _ in range(len(NLPD_SIGMAS) - 1):
        low = _nlpd_reduce(j)
        pyr.append(j - _nlpd_expand(low, j.shape))
        j = low
    pyr.append(j)
    return pyr


def nlpd_transform(gray: np.ndarray) -> list[np.ndarray]:
    """The normalized Laplacian pyramid of a 2-D image in [0, 1] (6 arrays, finest first)."""
    out = []
    for level, f, sigma in zip(_nlpd_pyramid(np.asarray(gray, dtype=np.float64)), NLPD_FILTERS, NLPD_SIGMAS):
        out.append(level / (sigma + ndimage.convolve(np.abs(level), f, mode="constant")))
    return out


def nlpd(ref: np.ndarray, dist: np.ndarray) -> float:
    """NLPD between ``ref`` and ``dist`` (``(H, W, 3)`` uint8 sRGB); 0 when identical, lower is better.

    Computed on BT.601 luma / 255 (the paper's model is grey-scale); symmetric in its
    arguments. For scale: kodim23 as JPEG 4:2:0 at quality 80, 20 and 5 gives about
    0.065, 0.15 and 0.32.
    """
    registry.check_pair(ref, dist, "nlpd")
    from licodec.eval.metrics import luma

    a = nlpd_transform(luma(ref) / 255.0)
    b = nlpd_transform(luma(dist) / 255.0)
    return float(np.mean([np.sqrt(np.mean((x - y) ** 2)) for x, y in zip(a, b)]))


# --------------------------------------------------------------------------- SWD

#: ProGAN/TF-GAN settings: 7x7 patches, 4 repeats of 128 random directions, levels down to 16 px.
SWD_PATCH = 7
SWD_DIRECTIONS = 128
SWD_REPEATS = 4
SWD_MIN_RESOLUTION = 16
#: patches per pyramid level and image pair (all positions when the level has fewer).
SWD_PATCHES = 4096
SWD_SEED = 0

#: 5x5 binomial kernel of OpenCV's pyrDown/pyrUp, as in ProGAN's ``sliced_wasserstein.py``.
_BINOMIAL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1])[None] / 256.0


def _pyr_down(x: np.ndarray) -> np.ndarray:
    """OpenCV's ``pyrDown`` on ``(C, H, W)``: binomial blur, mirrored borders (no edge repeat), even samples."""
    return ndimage.convolve(x, _BINOMIAL, mode="mirror")[:, ::2, ::2]


def _pyr_up(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """OpenCV's ``pyrUp`` on ``(C, h, w)``: zero-insert, 4 x binomial blur, cropped to ``shape``."""
    up = np.zeros(x.shape[:1] + (2 * x.shape[1], 2 * x.shape[2]))
    up[:, ::2, ::2] = x
    return ndimage.convolve(up, 4 * _BINOMIAL, mode="mirror")[:, :shape[0], :shape[1]]


def swd_pyramid(img: np.ndarray, levels: int) -> list[np.ndarray]:
    """Laplacian pyramid of a ``(C, H, W)`` float image on 0..255, as ProGAN's
    ``generate_laplacian_pyramid`` (``pyrDown``/``pyrUp``; odd sizes cropped after
    ``pyrUp``). The last level is the Gaussian residual."""
    pyr = [np.asarray(img, dtype=np.float64)]
    for _ in range(levels - 1):
        low = _pyr_down(pyr[-1])
        pyr[-1] = pyr[-1] - _pyr_up(low, pyr[-1].shape[1:])
        pyr.append(low)
    return pyr


def swd_levels(h: int, w: int) -> int:
    """Pyramid levels used for an ``h x w`` image: halvings of the smaller side while it stays >= 16 px."""
    n, side = 0, min(h, w)
    while side >= SWD_MIN_RESOLUTION:
        n, side = n + 1, side // 2
    return n


def _patch_positions(h: int, w: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners of ``count`` 7x7 patches drawn without replacement (all when fewer fit)."""
    nh, nw = h - SWD_PATCH + 1, w - SWD_PATCH + 1
    flat = np.arange(nh * nw) if nh * nw <= count else rng.choice(nh * nw, size=count, replace=False)
    return flat // nw, flat % nw


def _patches(level: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``(N, C, 7, 7)`` patches of a ``(C, H, W)`` level at the given corners."""
    windows = np.lib.stride_tricks.sliding_window_view(level, (SWD_PATCH, SWD_PATCH), axis=(1, 2))
    return windows[:, ys, xs].transpose(1, 0, 2, 3)


def _descriptors(patches: np.ndarray) -> np.ndarray:
    """ProGAN's ``finalize_descriptors``: zero mean and unit variance per colour channel over
    the whole set of ``(N, C, 7, 7)`` patches, flattened to ``(N, C * 49)``."""
    d = patches - patches.mean(axis=(0, 2, 3), keepdims=True)
    std = d.std(axis=(0, 2, 3), keepdims=True)
    return (d / np.where(std > 0, std, 1.0)).reshape(len(d), -1)


@functools.lru_cache(maxsize=4)
def _directions(dim: int) -> tuple[np.ndarray, ...]:
    """The fixed random unit directions: ``SWD_REPEATS`` matrices ``(128, dim)`` from ``SWD_SEED``."""
    rng = np.random.default_rng(SWD_SEED)
    out = []
    for _ in range(SWD_REPEATS):
        d = rng.standard_normal((SWD_DIRECTIONS, dim))
        out.append(d / np.sqrt((d * d).sum(axis=1, keepdims=True)))
    return tuple(out)


def _sorted_projections(d: np.ndarray) -> list[np.ndarray]:
    """The ``(N, D)`` descriptors projected on the 4 x 128 fixed directions, each row sorted."""
    return [np.sort(dirs @ d.T, axis=1) for dirs in _directions(d.shape[1])]  # (128, N): sort along rows


def _projection_distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Mean absolute difference of two sets' sorted projections, averaged over the direction sets."""
    return float(np.mean([np.abs(pa - pb).mean() for pa, pb in zip(a, b)]))


def sliced_wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """Sliced Wasserstein-1 distance between two ``(N, D)`` descriptor sets of equal size:
    the mean, over 4 x 128 fixed random directions, of the mean absolute difference of the
    sorted projections (ProGAN's ``sliced_wasserstein``)."""
    return _projection_distance(_sorted_projections(a), _sorted_projections(b))


def _level_descriptors(images: Iterable[np.ndarray], levels: int, count: int, seed: int) -> list[list[np.ndarray]]:
    """Per image, per level: the ``(N, C, 7, 7)`` patches at positions drawn from ``(seed,
    index of the image)``, so that the i-th images of two lists of same-size images share them."""
    out = []
    for index, img in enumerate(images):
        pyr = swd_pyramid(np.asarray(img, dtype=np.float64).transpose(2, 0, 1), levels)
        rng = np.random.default_rng((seed, index))
        per_level = []
        for level in pyr:
            ys, xs = _patch_positions(level.shape[1], level.shape[2], count, rng)
            per_level.append(_patches(level, ys, xs))
        out.append(per_level)
    return out


def swd(ref: np.ndarray, dist: np.ndarray, patches: int = SWD_PATCHES, seed: int = SWD_SEED) -> float:
    """SWD x 10^3 between the patch distributions of ``ref`` and ``dist`` (``(H, W, 3)`` uint8);
    0 when identical, lower is better.

    Per image pair: both images (RGB, 0..255) are decomposed into Laplacian pyramids with
    levels down to 16 px on the smaller side (6 levels for 768x512); at each level,
    ``patches`` 7x7x3 patches are taken at positions drawn with a fixed ``seed`` (all
    positions when fewer fit), the same positions in both images; each set is normalised
    to zero mean and unit variance per channel (ProGAN's convention, so a per-level gain or
    offset alone is not counted: it measures the shape of the patch statistics, i.e.
    realism, not fidelity); the sliced Wasserstein distance of the two sets uses 4 x 128
    fixed random directions. The result is the mean over levels, times 10^3 (ProGAN
    reports per-level SWD x 10^3 and their average). Deterministic for a given seed.
    Over a dataset, ``licodec eval`` averages these per-image values like every metric;
    ProGAN instead pools 128 patches from each of many images (:func:`swd_pooled`).
    """
    return SWDReference(ref, patches, seed)(dist)


class SWDReference:
    """:func:`swd` against one fixed ``ref`` (``(H, W, 3)`` uint8) for many candidates: the
    reference's pyramid, patch positions and sorted projections are computed once, so that a
    call costs about half of :func:`swd`'s; ``SWDReference(ref, patches, seed)(dist)`` is
    ``swd(ref, dist, patches, seed)``. The generative decoder's encoder scores its texture
    candidates with it."""

    def __init__(self, ref: np.ndarray, patches: int = SWD_PATCHES, seed: int = SWD_SEED) -> None:
        registry.check_pair(ref, ref, "swd")
        self.ref, self.patches, self.seed = ref, patches, seed
        self.levels = swd_levels(*ref.shape[:2])
        self.sorted = [_sorted_projections(_descriptors(p)) for p in self._level_patches(ref)]

    def _level_patches(self, img: np.ndarray) -> list[np.ndarray]:
        """Per level, the patches of ``img`` at the positions :func:`swd` draws (the same for any image of this size)."""
        return _level_descriptors([img], self.levels, self.patches, self.seed)[0]

    def __call__(self, dist: np.ndarray) -> float:
        """SWD x 10^3 between the reference and ``dist`` (same shape, uint8)."""
        registry.check_pair(self.ref, dist, "swd")
        return 1e3 * float(np.mean([_projection_distance(_sorted_projections(_descriptors(p)), s)
                                    for p, s in zip(self._level_patches(dist), self.sorted)]))


def swd_pooled(refs: Sequence[np.ndarray], dists: Sequence[np.ndarray], patches_per_image: int = 128,
               seed: int = SWD_SEED) -> list[float]:
    """ProGAN-style set-level SWD x 10^3: ``patches_per_image`` patches from every image,
    pooled per level over all images, one distance per level; returns
    ``[level 0, level 1, ..., mean]``. All images must have the same size (``(H, W, 3)``
    uint8), ``refs[i]`` paired with ``dists[i]`` (same patch positions)."""
    if not refs or len(refs) != len(dists):
        from licodec.errors import LicodecError

        raise LicodecError("SWD: give as many reconstructions as originals, at least one")
    for r, d in zip(refs, dists):
        registry.check_pair(r, d, "swd")
        registry.check_pair(refs[0], r, "swd")
    levels = swd_levels(*refs[0].shape[:2])
    a = _level_descriptors(refs, levels, patches_per_image, seed)
    b = _level_descriptors(dists, levels, patches_per_image, seed)
    per_level = [1e3 * sliced_wasserstein(_descriptors(np.concatenate([x[k] for x in a])),
                                          _descriptors(np.concatenate([y[k] for y in b])))
                 for k in range(levels)]
    return per_level + [float(np.mean(per_level))]
