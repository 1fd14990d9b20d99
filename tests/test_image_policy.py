"""What happens to grayscale, palette, RGBA, 16-bit and other inputs (see licodec.image_io)."""

import numpy as np
import pytest
from PIL import Image

import licodec
from conftest import SAMPLE, random_image
from licodec.errors import LicodecError
from licodec.eval.metrics import psnr
from licodec.image_io import prepare


def sample_crop(h, w):
    return np.asarray(Image.open(SAMPLE).convert("RGB"))[100 : 100 + h, 200 : 200 + w].copy()


def test_rgb():
    arr = sample_crop(40, 56)
    out = licodec.decompress(licodec.compress(Image.fromarray(arr), 8))
    assert out.mode == "RGB" and out.size == (56, 40)
    assert psnr(np.asarray(out), arr) > 25


def test_grayscale_comes_back_grayscale():
    gray = sample_crop(40, 56)[..., 1].copy()
    data = licodec.compress(Image.fromarray(gray, "L"), 8)
    out = licodec.decompress(data)
    assert out.mode == "L" and out.size == (56, 40)
    assert psnr(np.asarray(out), gray) > 25


def test_rgba_alpha_is_carried_losslessly(rng):
    arr = random_image(rng, 33, 47)
    alpha = rng.integers(0, 256, size=(33, 47)).astype(np.uint8)
    im = Image.fromarray(np.dstack([arr, alpha]), "RGBA")
    out = licodec.decompress(licodec.compress(im, 6))
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], alpha)


def test_opaque_alpha_is_dropped(rng):
    arr = random_image(rng, 20, 20)
    im = Image.fromarray(np.dstack([arr, np.full((20, 20), 255, np.uint8)]), "RGBA")
    assert prepare(im).channels == 3


def test_palette_is_converted(rng):
    im = Image.fromarray(random_image(rng, 30, 30)).convert("P")
    src = prepare(im)
    assert src.channels == 3 and src.rgb.shape == (30, 30, 3)
    im.info["transparency"] = im.getpixel((0, 0))
    assert prepare(im).channels == 4


def test_sixteen_bit_is_rounded_to_eight(tmp_path):
    arr16 = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(arr16).save(path)
    src = licodec.image_io.read_image(path)
    assert (src.channels, src.bit_depth) == (1, 16)
    assert np.array_equal(src.rgb[..., 0], np.round(arr16 / 257).astype(np.uint8))
    b = licodec.api.compress_bitstream(path, 4)
    assert b.bit_depth == 16 and licodec.decompress(b.to_bytes()).mode == "L"


def test_cmyk_is_converted(rng):
    im = Image.fromarray(random_image(rng, 16, 16)).convert("CMYK")
    assert prepare(im).channels == 3


def test_float_images_are_refused():
    with pytest.raises(LicodecError, match="mode 'F'"):
        prepare(Image.new("F", (8, 8)))


def test_animated_images_are_refused(tmp_path, rng):
    frames = [Image.fromarray(random_image(rng, 16, 16)) for _ in range(3)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(LicodecError, match="frames"):
        licodec.image_io.read_image(path)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "TIFF", "BMP", "PNG"])
def test_input_formats(tmp_path, rng, fmt):
    path = tmp_path / f"x.{fmt.lower()}"
    Image.fromarray(random_image(rng, 24, 40)).save(path, format=fmt)
    assert licodec.decompress(licodec.compress(path, 2)).size == (40, 24)


def test_exif_orientation_is_applied(tmp_path, rng):
    im = Image.fromarray(random_image(rng, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rot.jpg"
    im.save(path, exif=exif)
    assert licodec.image_io.read_image(path).rgb.shape[:2] == (30, 20)
