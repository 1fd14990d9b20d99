"""The Pillow plugin: Image.open / Image.save of .lic files after ``import licodec``."""

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

import licodec
import licodec.api
from licodec.entropy.container import Bitstream
from licodec.errors import BitstreamError, LicodecError, WeightsError

from conftest import random_image

H, W = 48, 64


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    rgb = Image.fromarray(random_image(rng, H, W), "RGB")
    gray = rgb.convert("L")
    alpha = rng.integers(0, 256, size=(H, W), dtype=np.uint8)
    alpha[:8] = 255
    alpha[-8:] = 0
    rgba = rgb.copy()
    rgba.putalpha(Image.fromarray(alpha, "L"))
    return {"RGB": rgb, "L": gray, "RGBA": rgba}


@pytest.fixture(scope="module")
def lic(images):
    """mode -> .lic bytes written by the API at quality 3."""
    return {mode: licodec.compress(im, quality=3) for mode, im in images.items()}


@pytest.fixture
def count_decodes(monkeypatch):
    calls = []
    real = licodec.api.decompress

    def counting(data):
        calls.append(1)
        return real(data)

    monkeypatch.setattr(licodec.api, "decompress", counting)
    return calls


def test_format_is_registered():
    assert Image.registered_extensions()[".lic"] == "LIC"
    assert Image.MIME["LIC"] == "image/x-licodec"
    assert "LIC" in Image.OPEN and "LIC" in Image.SAVE


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
@pytest.mark.parametrize("source", ["path", "bytesio"])
def test_round_trip_through_image_open(tmp_path, images, lic, mode, source):
    data = lic[mode]
    if source == "path":
        path = tmp_path / "photo.lic"
        path.write_bytes(data)
        opened = Image.open(path)
    else:
        opened = Image.open(io.BytesIO(data))
    with opened as im:
        assert im.format == "LIC" and im.get_format_mimetype() == "image/x-licodec"
        assert im.size == (W, H) and im.mode == mode
        im.load()
        assert im.mode == mode and im.size == (W, H)
        got = np.asarray(im)
    expected = np.asarray(licodec.decompress(data))
    np.testing.assert_array_equal(got, expected)
    if mode == "RGBA":
        np.testing.assert_array_equal(got[..., 3], np.asarray(images["RGBA"])[..., 3])  # alpha exact
    # lossy but close to the source
    err = np.abs(got.astype(np.int16) - np.asarray(images[mode]).astype(np.int16))
    assert (err[..., :3] if got.ndim == 3 else err).mean() < 25


def test_open_reads_the_header_without_decoding(lic, count_decodes):
    with Image.open(io.BytesIO(lic["RGBA"])) as im:
        assert im.size == (W, H) and im.mode == "RGBA" and (im.width, im.height) == (W, H)
        assert im.info["codec"] == licodec.api.DEFAULT_MODEL
        assert im.info["quality"] == pytest.approx(3.0)
        assert im.info["weights_sha256"] == licodec.load().weights_sha256
        assert im.info["bit_depth"] == 8
        assert count_decodes == []
        im.load()
        assert len(count_decodes) == 1
        im.load()
        im.getpixel((0, 0))
        assert len(count_decodes) == 1


def test_save_writes_the_same_bytes_as_compress(tmp_path, images):
    im = images["RGB"]
    path = tmp_path / "out.lic"
    im.save(path, quality=2.5, effort=1)
    assert path.read_bytes() == licodec.compress(im, quality=2.5, effort=1)
    buf = io.BytesIO()
    im.save(buf, format="LIC", quality=5, model="hyperprior-vr")
    assert buf.getvalue() == licodec.compress(im, quality=5, model="hyperprior-vr")
    with Image.open(io.BytesIO(buf.getvalue())) as back:
        assert back.info["codec"] == "hyperprior-vr" and back.info["quality"] == 5.0


def test_save_defaults_come_from_the_api(images):
    buf = io.BytesIO()
    images["L"].save(buf, format="LIC")
    assert buf.getvalue() == licodec.compress(images["L"])
    bitstream = Bitstream.from_bytes(buf.getvalue())
    assert bitstream.quality == licodec.api.DEFAULT_QUALITY and bitstream.channels == 1


@pytest.mark.parametrize("mode", ["P", "LA", "I;16"])
def test_save_follows_the_mode_policy(images, mode):
    if mode == "I;16":
        im = Image.fromarray(np.asarray(images["L"]).astype(np.uint16) * 257)
        assert im.mode == "I;16"
    else:
        im = images["RGBA" if mode == "LA" else "RGB"].convert(mode)
    buf = io.BytesIO()
    im.save(buf, format="LIC", quality=2)
    assert buf.getvalue() == licodec.compress(im, quality=2)
    with Image.open(io.BytesIO(buf.getvalue())) as back:
        assert back.mode == {"P": "RGB", "LA": "RGBA", "I;16": "L"}[mode]
        if mode == "I;16":
            assert back.info["bit_depth"] == 16


@pytest.mark.parametrize("quality", [80, 0, 8.5, float("nan"), "high", True, None])
def test_invalid_quality_is_a_clear_licodec_error(tmp_path, images, quality):
    path = tmp_path / "bad.lic"
    with pytest.raises(LicodecError, match="quality must be a number from 1 to 8"):
        images["RGB"].save(path, quality=quality)
    assert not path.exists()  # Pillow removes the file it created


def test_bad_save_options(images):
    with pytest.raises(LicodecError, match="unknown codec"):
        images["RGB"].save(io.BytesIO(), format="LIC", model="no-such-codec")
    with pytest.raises(LicodecError, match="effort"):
        images["RGB"].save(io.BytesIO(), format="LIC", effort=12)


def test_random_bytes_are_not_ours(tmp_path):
    junk = np.random.default_rng(0).integers(0, 256, size=2000, dtype=np.uint8).tobytes()
    (tmp_path / "junk.lic").write_bytes(junk)
    with pytest.raises(UnidentifiedImageError):
        Image.open(tmp_path / "junk.lic")
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(junk))


def _flip(data: bytes, pos: int) -> bytes:
    out = bytearray(data)
    out[pos] ^= 0x10
    return bytes(out)


@pytest.mark.parametrize("damage", ["truncated", "half", "header-bitflip", "payload-bitflip", "crc", "magic-only",
                                    "newer-version"])
def test_damaged_files_raise_bitstream_error(tmp_path, lic, damage, count_decodes):
    data = lic["RGB"]
    bad = {
        "truncated": data[:-1],
        "half": data[: len(data) // 2],
        "header-bitflip": _flip(data, 8),
        "payload-bitflip": _flip(data, len(data) - 40),
        "crc": _flip(data, len(data) - 1),
        "magic-only": data[:4],
        "newer-version": data[:4] + b"\x09" + data[5:],
    }[damage]
    path = tmp_path / "bad.lic"
    path.write_bytes(bad)
    with pytest.raises(BitstreamError):
        with Image.open(path) as im:
            im.load()
    assert count_decodes == []  # the container check catches all of these before decoding


def _rewritten(data: bytes, **changes) -> bytes:
    """A well-formed container (valid CRC) with some header fields changed."""
    return dataclasses.replace(Bitstream.from_bytes(data), **changes).to_bytes()


def test_consistent_container_with_a_corrupted_payload(lic):
    bitstream = Bitstream.from_bytes(lic["RGB"])
    y = bytearray(bitstream.stream("y"))
    y[len(y) // 2] ^= 0x55
    data = dataclasses.replace(bitstream, streams={**bitstream.streams, "y": bytes(y)}).to_bytes()
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (W, H)
        with pytest.raises(BitstreamError):
            im.load()


def test_missing_alpha_stream(lic):
    bitstream = Bitstream.from_bytes(lic["RGBA"])
    streams = {k: v for k, v in bitstream.streams.items() if k != "alpha"}
    with Image.open(io.BytesIO(dataclasses.replace(bitstream, streams=streams).to_bytes())) as im:
        assert im.mode == "RGBA"
        with pytest.raises(BitstreamError, match="alpha"):
            im.load()


def test_weights_not_installed_is_a_weights_error_on_load(lic):
    data = _rewritten(lic["RGB"], weights_sha256="0123456789abcdef")
    with Image.open(io.BytesIO(data)) as im:
        assert im.info["weights_sha256"] == "0123456789abcdef"
        with pytest.raises(WeightsError):
            im.load()


def test_unknown_codec_is_a_bitstream_error_on_load(lic):
    with Image.open(io.BytesIO(_rewritten(lic["RGB"], codec_id="future-codec"))) as im:
        assert im.info["codec"] == "future-codec" and im.size == (W, H)
        with pytest.raises(BitstreamError, match="unknown codec"):
            im.load()


def test_decompression_bomb_check_happens_in_open(lic, monkeypatch, count_decodes):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", (H * W) // 4)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(lic["RGB"]))
    assert count_decodes == []


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_convert_and_copy(lic, mode):
    with Image.open(io.BytesIO(lic[mode])) as im:
        rgb = im.convert("RGB")
        assert rgb.mode == "RGB" and rgb.size == (W, H)
        np.testing.assert_array_equal(np.asarray(im.copy()), np.asarray(licodec.decompress(lic[mode])))


def test_reopen_and_resave_as_png(tmp_path, lic):
    path = tmp_path / "photo.lic"
    path.write_bytes(lic["RGBA"])
    with Image.open(path) as im:
        im.save(tmp_path / "photo.png")
    with Image.open(tmp_path / "photo.png") as png:
        assert png.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(png), np.asarray(licodec.decompress(lic["RGBA"])))
