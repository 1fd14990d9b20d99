"""The small Python API: :func:`compress`, :func:`decompress`, :func:`load`."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from licodec.entropy.container import Bitstream
from licodec.errors import BitstreamError, LicodecError, WeightsError
from licodec.rate_control import TargetResult, search_quality
from licodec.image_io import SourceImage, decode_alpha, encode_alpha, prepare, read_image, to_pil
from licodec.zoo import DEFAULT_MODEL, create_model, get_entry

DEFAULT_QUALITY = 4.0
DEFAULT_EFFORT = 0  # encode-time refinement level 0..9 (licodec.codec.refine)
_cache: dict = {}
_lock = threading.RLock()  # re-entrant: a generative decoder loads its base codec while being loaded


def load(name: str = DEFAULT_MODEL, weights_dir: str | Path | None = None) -> torch.nn.Module:
    """The codec ``name`` with its shipped weights (or those in ``weights_dir``, e.g. a
    training run's export), hash-checked, in eval mode; cached."""
    key = (name, str(Path(weights_dir).resolve()) if weights_dir else None)
    with _lock:
        if key not in _cache:
            _cache[key] = create_model(name, pretrained=True, weights_dir=weights_dir)
        return _cache[key]


def _source(image) -> SourceImage:
    if isinstance(image, SourceImage):
        return image
    if isinstance(image, (str, Path)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return prepare(image)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise LicodecError(f"numpy images must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        return SourceImage(image, channels=3, bit_depth=8)
    if isinstance(image, torch.Tensor):
        t = image[None] if image.ndim == 3 else image
        if t.ndim != 4 or t.shape[:2] != (1, 3):
            raise LicodecError(f"tensor images must be (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
        arr = (t[0].detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        return SourceImage(arr, channels=3, bit_depth=8)
    raise LicodecError(f"cannot compress a {type(image).__name__}; pass a path, PIL image, array or tensor")


def compress_bitstream(image, quality: float = DEFAULT_QUALITY, model: str = DEFAULT_MODEL,
                       weights_dir: str | Path | None = None, effort: int = DEFAULT_EFFORT) -> Bitstream:
    """Like :func:`compress` but returns the :class:`Bitstream` object; ``weights_dir``: other
    weights of codec ``model`` than the shipped ones."""
    src = _source(image)
    codec = load(model, weights_dir)
    bitstream = codec.compress(src.tensor(), quality, effort=effort)
    bitstream = dataclasses.replace(bitstream, channels=src.channels, bit_depth=src.bit_depth)
    if src.alpha is not None:
        bitstream.streams["alpha"] = encode_alpha(src.alpha)
    return bitstream


def compress_to_size(image, target_size: int, model: str = DEFAULT_MODEL, weights_dir: str | Path | None = None,
                     effort: int = DEFAULT_EFFORT) -> tuple[Bitstream, TargetResult]:
    """The bitstream whose file is nearest ``target_size`` bytes (within 3% when the model can
    land there), and how the search ended (:class:`~licodec.rate_control.TargetResult`: the
    quality chosen, the size, the number of encodes). Every trial is a real encode at ``effort``."""
    src = _source(image)
    codec = load(model, weights_dir)
    coded: dict[float, Bitstream] = {}

    def encode(q: float) -> bytes:
        coded[q] = compress_bitstream(src, q, model, weights_dir, effort)
        return coded[q].to_bytes()

    _, result = search_quality(encode, int(target_size), codec.quality_range,
                               integer=getattr(codec, "integer_qualities", False))
    return coded[result.quality], result


def target_bytes(pixels: int, target_bpp: float | None = None, target_size: int | None = None) -> int | None:
    """The target in bytes from bits per pixel or bytes (at most one of the two), or None."""
    if target_bpp is not None and target_size is not None:
        raise LicodecError("give a target in bpp or in bytes, not both")
    if target_bpp is not None:
        if not target_bpp > 0:
            raise LicodecError(f"target bpp must be positive, got {target_bpp}")
        return max(1, round(target_bpp * pixels / 8))
    if target_size is not None and target_size < 1:
        raise LicodecError(f"target size must be at least 1 byte, got {target_size}")
    return target_size


def compress(image, quality: float | None = None, model: str = DEFAULT_MODEL, effort: int = DEFAULT_EFFORT,
             target_bpp: float | None = None, target_size: int | None = None) -> bytes:
    """Compress an image to ``.lic`` bytes.

    image: a path, a PIL image, an ``(H, W, 3)`` uint8 array, or a ``(3, H, W)`` /
    ``(1, 3, H, W)`` float tensor in [0, 1]. quality: 1 (smallest) to 8 (best), any value
    in between (default 4). model: a name from :func:`licodec.zoo.list_models`. effort: 0
    (fastest) to 9; higher levels refine the latents for this image (slower encoding, fewer
    bytes at the same quality); the decoder is the same for every effort.
    target_bpp / target_size: instead of a quality, the file size to land on, in bits per pixel
    of the whole file or in bytes; the quality is searched (:mod:`licodec.rate_control`; the
    header records the one chosen). A target the model cannot reach raises :class:`LicodecError`.
    """
    src = _source(image)
    h, w = src.rgb.shape[:2]
    target = target_bytes(h * w, target_bpp, target_size)
    if target is None:
        return compress_bitstream(src, DEFAULT_QUALITY if quality is None else quality, model, effort=effort).to_bytes()
    if quality is not None:
        raise LicodecError("give a quality or a target size, not both")
    return compress_to_size(src, target, model, effort=effort)[0].to_bytes()


def codec_for(bitstream: Bitstream, weights_dir: str | Path | None = None) -> torch.nn.Module:
    """The codec that wrote ``bitstream``, with the very weights it used (the shipped ones, or
    those in ``weights_dir``)."""
    try:
        get_entry(bitstream.codec_id)
    except LicodecError:
        raise BitstreamError(f"bitstream was written by unknown codec {bitstream.codec_id!r}") from None
    codec = load(bitstream.codec_id, weights_dir)
    if codec.weights_sha256 != bitstream.weights_sha256:
        raise WeightsError(
            f"bitstream was written with {bitstream.codec_id} weights {bitstream.weights_sha256}, "
            f"but the installed weights are {codec.weights_sha256}"
        )
    return codec


def lost_masks(codec, bitstream: Bitstream, lost, seed: int = 0, rows: bool = False):
    """The ``lost_mask`` argument of a codebook codec's ``decompress`` for ``lost``: None (nothing
    lost), a fraction in [0, 1] of the index positions (``rows``: of whole index rows) chosen by a
    RNG seeded with ``(seed, tile number)``, or per-tile boolean masks, passed through."""
    if lost is None:
        return None
    if not hasattr(codec, "loss_masks"):
        raise LicodecError(f"{bitstream.codec_id} cannot restore lost data; only codebook codecs (vqgan) can")
    if isinstance(lost, (int, float, np.floating, np.integer)) and not isinstance(lost, bool):
        if not 0 <= float(lost) <= 1:
            raise LicodecError(f"the lost fraction must lie in [0, 1], got {lost}")
        return codec.loss_masks(bitstream, float(lost), int(seed), rows)
    return lost


def generator_for(bitstream: Bitstream) -> torch.nn.Module:
    """The generative decoder (:mod:`licodec.codec.flow`) registered for the codec that wrote
    ``bitstream``, with its shipped weights; it must have been trained on the very base weights
    the file was written with."""
    from licodec.zoo import list_models

    names = [n for n in list_models() if getattr(get_entry(n).config_cls, "base", None) == bitstream.codec_id]
    if not names:
        raise LicodecError(f"no generative decoder exists for {bitstream.codec_id} files; "
                           f"--realism needs one (registered: {_generative_bases() or 'none'})")
    shipped = [n for n in names if get_entry(n).has_weights]
    if not shipped:
        raise WeightsError(f"the generative decoder {names[0]} has no trained weights in this release yet "
                           f"(train them: licodec train --model {names[0]} ...)")
    generator = load(shipped[0])
    if generator.config.base_weights != bitstream.weights_sha256:
        raise WeightsError(f"the generative decoder {shipped[0]} was trained on {bitstream.codec_id} weights "
                           f"{generator.config.base_weights}, but the file was written with {bitstream.weights_sha256}")
    return generator


def _generative_bases() -> str:
    from licodec.zoo import list_models

    return ", ".join(f"{n} for {b}" for n in list_models() if (b := getattr(get_entry(n).config_cls, "base", None)))


def decompress_rgb(bitstream: Bitstream, weights_dir: str | Path | None = None, lost=None, lost_seed: int = 0,
                   lost_rows: bool = False, realism: float | None = None, steps: int | None = None) -> np.ndarray:
    """Decode to an ``(H, W, 3)`` uint8 array (colour only, before the channel policy).

    ``lost`` (codebook codecs only): index positions to treat as lost and restore, a simulated
    damaged transmission (:func:`lost_masks`; ``lost_seed``, ``lost_rows`` as there).
    ``realism`` in [0, 1] (``steps``: its sampling steps): decode with the generative decoder
    registered for the file's codec (:func:`generator_for`); 0 or None is the codec's own decode."""
    from licodec.codec.flow import check_realism, check_steps

    if realism is not None:
        realism = check_realism(realism)
    if steps is not None:
        check_steps(steps)
        if not realism:
            raise LicodecError("steps go with a realism above 0")
    codec = codec_for(bitstream, weights_dir)
    masks = lost_masks(codec, bitstream, lost, lost_seed, lost_rows)
    if realism and masks is not None:
        raise LicodecError("lost indices and realism cannot be combined yet")
    if realism:
        x_hat = generator_for(bitstream).decompress(bitstream, realism=realism, steps=steps)
    else:
        x_hat = codec.decompress(bitstream) if masks is None else codec.decompress(bitstream, lost_mask=masks)
    return (x_hat[0] * 255).round_().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def decompress(data: bytes | Bitstream, lost=None, lost_seed: int = 0, lost_rows: bool = False,
               realism: float | None = None, steps: int | None = None) -> Image.Image:
    """Decode ``.lic`` bytes to a PIL image (RGB, L or RGBA, as the source was).

    ``lost``: for codebook codecs (vqgan), simulate a damaged transmission: a fraction in [0, 1]
    of the index positions (``lost_rows``: of whole index rows), chosen by a RNG seeded with
    ``lost_seed``, or per-tile boolean masks; they are predicted from the rest
    (:meth:`licodec.codec.vq.VQCodec.decompress`). Decoding succeeds for every fraction.
    ``realism`` in [0, 1]: generative decoding (:mod:`licodec.codec.flow`) with ``steps`` sampling
    steps (default the decoder's): 0 is exactly the codec's own decode, 1 the full sample. The file
    is the same either way; the noise is seeded by its bytes, so it decodes to the same pixels
    in every run."""
    bitstream = data if isinstance(data, Bitstream) else Bitstream.from_bytes(data)
    has_alpha = "alpha" in bitstream.streams
    if has_alpha != (bitstream.channels == 4):
        raise BitstreamError(f"bitstream carries an alpha sub-stream but declares {bitstream.channels} channels"
                             if has_alpha else "bitstream declares 4 channels but has no alpha sub-stream")
    # first: the codec checks the declared geometry before allocating
    rgb = decompress_rgb(bitstream, lost=lost, lost_seed=lost_seed, lost_rows=lost_rows, realism=realism, steps=steps)
    alpha = decode_alpha(bitstream.streams["alpha"], bitstream.height, bitstream.width) if has_alpha else None
    return to_pil(rgb, bitstream.channels, alpha)
