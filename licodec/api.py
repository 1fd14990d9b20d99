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
from licodec.image_io import SourceImage, decode_alpha, encode_alpha, prepare, read_image, to_pil
from licodec.zoo import DEFAULT_MODEL, create_model, get_entry

DEFAULT_QUALITY = 4.0
DEFAULT_EFFORT = 0  # encode-time refinement level 0..9 (licodec.codec.refine)
_cache: dict = {}
_lock = threading.Lock()


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


def compress(image, quality: float = DEFAULT_QUALITY, model: str = DEFAULT_MODEL,
             effort: int = DEFAULT_EFFORT) -> bytes:
    """Compress an image to ``.lic`` bytes.

    image: a path, a PIL image, an ``(H, W, 3)`` uint8 array, or a ``(3, H, W)`` /
    ``(1, 3, H, W)`` float tensor in [0, 1]. quality: 1 (smallest) to 8 (best), any value
    in between. model: a name from :func:`licodec.zoo.list_models`. effort: 0 (fastest) to 9;
    higher levels refine the latents for this image (slower encoding, fewer bytes at the same
    quality); the decoder is the same for every effort.
    """
    return compress_bitstream(image, quality, model, effort=effort).to_bytes()


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


def decompress_rgb(bitstream: Bitstream, weights_dir: str | Path | None = None) -> np.ndarray:
    """Decode to an ``(H, W, 3)`` uint8 array (colour only, before the channel policy)."""
    x_hat = codec_for(bitstream, weights_dir).decompress(bitstream)
    return (x_hat[0] * 255).round_().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def decompress(data: bytes | Bitstream) -> Image.Image:
    """Decode ``.lic`` bytes to a PIL image (RGB, L or RGBA, as the source was)."""
    bitstream = data if isinstance(data, Bitstream) else Bitstream.from_bytes(data)
    rgb = decompress_rgb(bitstream)
    alpha = None
    if bitstream.channels == 4:
        alpha = decode_alpha(bitstream.stream("alpha"), bitstream.height, bitstream.width)
    return to_pil(rgb, bitstream.channels, alpha)
