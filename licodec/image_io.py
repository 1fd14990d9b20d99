"""Reading and writing images with Pillow, and the policy for unusual image modes.

What happens to each kind of input (``licodec encode`` and :func:`licodec.compress`):

=====================  ==========================================================
input                  policy
=====================  ==========================================================
RGB, 8-bit             coded as is
grayscale (L, 1)       coded as RGB; decodes back to grayscale (``channels = 1``)
palette (P)            converted to RGB, or RGBA when the palette has transparency
RGBA, LA, PA           colour coded lossy; alpha **carried losslessly** in an
                       ``alpha`` sub-stream (zlib); fully opaque alpha is dropped
16-bit (I;16, I)       rounded to 8 bits, then coded; the header records the
                       source's 16 bits, the decoded image is 8-bit
CMYK, YCbCr, LAB, HSV  converted to RGB
float (F), other       refused with a clear message
multi-frame images     refused (animated GIF/WebP, multi-page TIFF)
EXIF orientation       applied, so the coded image is upright
=====================  ==========================================================
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from licodec.entropy.container import MAX_PIXELS
from licodec.errors import BitstreamError, LicodecError

Image.MAX_IMAGE_PIXELS = MAX_PIXELS


@dataclass
class SourceImage:
    """An image ready to code: ``rgb`` is ``(H, W, 3)`` uint8; ``alpha`` ``(H, W)`` uint8 or None."""

    rgb: np.ndarray
    channels: int  # 1, 3 or 4 (what the decoder gives back)
    bit_depth: int  # of the source
    alpha: np.ndarray | None = None

    def tensor(self):
        """``(1, 3, H, W)`` float32 torch tensor in [0, 1]."""
        import torch

        return torch.from_numpy(np.array(self.rgb, dtype=np.float32)).permute(2, 0, 1)[None].div_(255.0)


def open_image(path: str | Path) -> Image.Image:
    """Open and fully load an image file, turning every failure into one clear line."""
    path = Path(path)
    if not path.exists():
        raise LicodecError(f"no such file: {path}")
    if path.is_dir():
        raise LicodecError(f"{path} is a folder, not an image")
    if path.stat().st_size == 0:
        raise LicodecError(f"{path} is empty")
    return _load(path, str(path))


def open_image_bytes(data: bytes, name: str = "stdin") -> Image.Image:
    """Like :func:`open_image` for an image file's bytes (e.g. read from a pipe)."""
    if not data:
        raise LicodecError(f"{name} is empty")
    return _load(io.BytesIO(data), name)


def _load(source, name: str) -> Image.Image:
    try:
        im = Image.open(source)
        im.load()
    except UnidentifiedImageError:
        raise LicodecError(f"{name} is not an image licodec can read (PNG, JPEG, WebP, TIFF, BMP)") from None
    except Image.DecompressionBombError:
        raise LicodecError(f"{name} is too large (over {MAX_PIXELS} pixels)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise LicodecError(f"{name} is truncated or damaged: {e}") from None
    return im


def _to_uint8_gray16(arr: np.ndarray) -> np.ndarray:
    return np.clip(np.round(arr.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)


def prepare(im: Image.Image, name: str = "image") -> SourceImage:
    """Apply the mode policy (module docstring) to a loaded Pillow image."""
    if getattr(im, "n_frames", 1) > 1:
        raise LicodecError(f"{name} has {im.n_frames} frames; licodec codes still images (extract one frame first)")
    w, h = im.size
    if w * h == 0:
        raise LicodecError(f"{name} has no pixels ({w}x{h})")
    if w * h > MAX_PIXELS:
        raise LicodecError(f"{name} is too large ({w}x{h})")
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block must not stop coding
        pass
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im)
        if mode == "I" and (arr.min() < 0 or arr.max() > 65535):
            raise LicodecError(f"{name} is a 32-bit integer image; licodec codes 8- and 16-bit images")
        gray = _to_uint8_gray16(arr)
        return SourceImage(np.repeat(gray[..., None], 3, axis=2), channels=1, bit_depth=16)
    if mode in ("1", "L"):
        gray = np.asarray(im.convert("L"))
        return SourceImage(np.repeat(gray[..., None], 3, axis=2), channels=1, bit_depth=8)
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("LA", "La", "PA", "RGBa"):
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode == "RGBA":
        arr = np.asarray(im)
        alpha = arr[..., 3]
        if alpha.min() == 255:
            return SourceImage(np.ascontiguousarray(arr[..., :3]), channels=3, bit_depth=8)
        return SourceImage(np.ascontiguousarray(arr[..., :3]), channels=4, bit_depth=8, alpha=alpha.copy())
    if mode in ("RGB", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        return SourceImage(np.asarray(im.convert("RGB")), channels=3, bit_depth=8)
    raise LicodecError(f"{name} has image mode {mode!r}, which licodec does not code (convert it to RGB first)")


def read_image(path: str | Path) -> SourceImage:
    with open_image(path) as im:
        return prepare(im, name=str(path))


def read_image_bytes(data: bytes, name: str = "stdin") -> SourceImage:
    with open_image_bytes(data, name) as im:
        return prepare(im, name=name)


def encode_alpha(alpha: np.ndarray) -> bytes:
    return zlib.compress(np.ascontiguousarray(alpha, dtype=np.uint8).tobytes(), 9)


def decode_alpha(data: bytes, height: int, width: int) -> np.ndarray:
    try:
        raw = zlib.decompressobj().decompress(data, height * width + 1)
    except zlib.error:
        raise BitstreamError("alpha sub-stream is corrupted") from None
    if len(raw) != height * width:
        raise BitstreamError("alpha sub-stream has the wrong size")
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width)


def to_pil(rgb: np.ndarray, channels: int, alpha: np.ndarray | None = None) -> Image.Image:
    """Decoded ``(H, W, 3)`` uint8 -> Pillow image with the source's channel layout."""
    im = Image.fromarray(rgb, "RGB")
    if channels == 1:
        return im.convert("L")
    if channels == 4 and alpha is not None:
        im.putalpha(Image.fromarray(alpha, "L"))
    return im


def _umask() -> int:
    try:  # Linux reports it without changing it (os.umask's read-by-setting races with threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def output_mode(path: Path) -> int:
    """The permission bits a new output gets, as ``open()`` (and cwebp) would give it:
    0666 minus the umask; an overwritten file keeps its own mode."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def atomic_write(path: str | Path, data_or_writer, force: bool = False) -> Path:
    """Write bytes (or call ``writer(file_path)``) to a temporary file, then rename it into place.

    Refuses to replace an existing file unless ``force``; on any failure nothing is left behind.
    The file gets the usual mode (:func:`output_mode`), not the temporary file's 0600.
    """
    path = Path(path)
    if path.exists() and not force:
        raise LicodecError(f"{path} exists; use --force to overwrite it")
    if path.is_dir():
        raise LicodecError(f"{path} is a folder")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise LicodecError(f"folder {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=parent)
    try:
        if isinstance(data_or_writer, (bytes, bytearray)):
            with os.fdopen(fd, "wb") as f:
                f.write(data_or_writer)
        else:
            os.close(fd)
            data_or_writer(tmp)
        os.chmod(tmp, output_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def save_image(im: Image.Image, path: str | Path, force: bool = False) -> Path:
    """Save losslessly by default (PNG); the format follows the suffix."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise LicodecError(f"cannot tell an image format from {path.name!r}; use .png")

    def writer(tmp: str) -> None:
        try:
            out = im.convert("RGB") if fmt == "JPEG" and im.mode not in ("RGB", "L") else im
            out.save(tmp, format=fmt)
        except (OSError, ValueError, KeyError) as e:
            raise LicodecError(f"cannot write {path.name} as {fmt}: {e}") from None

    return atomic_write(path, writer, force=force)
