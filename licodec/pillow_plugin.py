"""Pillow plugin: ``.lic`` files open and save like any other image format.

Registered by ``import licodec`` (as ``pillow_heif`` / ``pillow_avif`` register theirs)::

    import licodec
    from PIL import Image

    im = Image.open("photo.lic")          # header only: size, mode and info, no decoding yet
    im.load()                              # decodes (any pixel access or convert() does too)
    im.save("copy.lic", quality=4, model="hyperprior-ctx", effort=0)
    im.save(buffer, format="LIC", quality=2.5)

``Image.open`` reads and checks the whole container (magic, CRC-32, header) but does not
decode; ``im.info`` holds ``codec`` (the codec id), ``quality``, ``weights_sha256`` and
``bit_depth`` (of the source). Decoding happens on ``load()``. The mode is ``"RGB"``,
``"L"`` or ``"RGBA"``, as the source was (alpha is exact). A file without the ``.lic``
magic bytes is not claimed (Pillow raises ``UnidentifiedImageError``); one with the magic
that is malformed, truncated or corrupted raises :class:`licodec.BitstreamError` from
``Image.open`` (or from ``load()``), and one written with weights that are not installed
raises :class:`licodec.WeightsError` from ``load()``.

Save options (``Image.save(..., **options)``):

``quality``
    the **licodec quality, 1 (smallest) to 8 (best)**, fractions allowed; default
    :data:`licodec.api.DEFAULT_QUALITY`. Not JPEG/WebP's integer 0-100 scale:
    ``quality=80`` is refused with a :class:`licodec.LicodecError`.
``model``
    a codec name from :func:`licodec.zoo.list_models`; default :data:`licodec.zoo.DEFAULT_MODEL`.
``effort``
    0 (fastest) to 9 (smaller files, slower encoding); default :data:`licodec.api.DEFAULT_EFFORT`.
``weights_dir``
    other weights of ``model`` than the shipped ones (e.g. a training run's export).

Every image mode :func:`licodec.compress` accepts can be saved, with the same policy
(:mod:`licodec.image_io`: L/1 stay grayscale, P/LA/PA become RGB(A), 16-bit is rounded
to 8 bits, ...). ``im.save(path, quality=q, effort=e)`` writes exactly the bytes of
``licodec.compress(im, quality=q, effort=e)``.
"""

from __future__ import annotations

import math
import numbers

from PIL import Image, ImageFile

from licodec.entropy.container import MAGIC, Bitstream
from licodec.errors import LicodecError
from licodec.image_io import prepare

FORMAT = "LIC"
EXTENSION = ".lic"
MIME = "image/x-licodec"
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _accept(prefix: bytes) -> bool:
    return prefix[: len(MAGIC)] == MAGIC


class LicImageFile(ImageFile.ImageFile):
    """A ``.lic`` file opened by Pillow; decoded lazily by :meth:`load`."""

    format = FORMAT
    format_description = "licodec learned image codec"
    _bitstream: Bitstream | None = None

    def _open(self) -> None:
        assert self.fp is not None
        # Strict parse of the whole container: a bad file with our magic fails here with
        # a BitstreamError (which Image.open propagates, as it is not a SyntaxError).
        bitstream = Bitstream.from_bytes(self.fp.read())
        self._bitstream = bitstream
        self._size = (bitstream.width, bitstream.height)
        _set_mode(self, _MODES[bitstream.channels])  # channels is validated by from_bytes
        self.info.update(
            codec=bitstream.codec_id,
            quality=float(bitstream.quality),
            weights_sha256=bitstream.weights_sha256,
            bit_depth=bitstream.bit_depth,
        )
        self.tile = []

    def load(self):
        bitstream = self._bitstream
        if bitstream is not None:
            from licodec import api

            decoded = api.decompress(bitstream)
            if decoded.mode != self.mode:  # cannot happen for a valid stream; be safe
                decoded = decoded.convert(self.mode)
            if decoded.size != self.size:
                raise LicodecError(f"decoded image is {decoded.size}, the header says {self.size}")
            self.im = decoded.im
            self._bitstream = None
            self.readonly = 0
            if self._exclusive_fp and self._close_exclusive_fp_after_loading and self.fp:
                self.fp.close()
            self.fp = None
        return super().load()


def _set_mode(image: Image.Image, mode: str) -> None:
    # Pillow >= 10.1 made ``mode`` a read-only property over ``_mode``; 10.0 had an attribute.
    if isinstance(getattr(Image.Image, "mode", None), property):
        image._mode = mode
    else:  # pragma: no cover - Pillow 10.0
        image.mode = mode


def _check_quality(quality, codec) -> float:
    lo, hi = getattr(codec, "quality_range", (1.0, 8.0))
    if isinstance(quality, bool) or not isinstance(quality, numbers.Real) or math.isnan(float(quality)) \
            or not lo <= float(quality) <= hi:
        raise LicodecError(
            f"LIC quality must be a number from {lo:g} to {hi:g} (licodec's scale, fractions allowed; "
            f"not JPEG/WebP's 0-100), got {quality!r}"
        )
    return float(quality)


def _save(im: Image.Image, fp, filename) -> None:
    from licodec import api

    info = im.encoderinfo
    model = info.get("model", api.DEFAULT_MODEL)
    weights_dir = info.get("weights_dir")
    effort = info.get("effort", api.DEFAULT_EFFORT)
    codec = api.load(model, weights_dir)
    quality = _check_quality(info.get("quality", api.DEFAULT_QUALITY), codec)
    name = filename.decode(errors="replace") if isinstance(filename, bytes) else (filename or "image")
    source = prepare(im, name=str(name))
    data = api.compress_bitstream(source, quality, model, weights_dir=weights_dir, effort=effort).to_bytes()
    fp.write(data)  # only once everything is coded: no partial file on an error


Image.register_open(FORMAT, LicImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, EXTENSION)
Image.register_mime(FORMAT, MIME)
