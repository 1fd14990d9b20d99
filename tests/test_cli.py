"""The CLI through main(argv): the happy paths and every kind of bad input."""

import shutil

import pytest
from PIL import Image

from conftest import SAMPLE
from licodec.cli.main import main
from licodec.entropy.container import FORMAT_VERSION, Bitstream


@pytest.fixture
def small_png(tmp_path, rng):
    from conftest import random_image

    path = tmp_path / "small.png"
    Image.fromarray(random_image(rng, 48, 72)).save(path)
    return path


@pytest.fixture
def small_lic(tmp_path, small_png, shipped):
    out = tmp_path / "small.lic"
    assert main(["encode", str(small_png), "-o", str(out), "-q", "3"]) == 0
    return out


def run_fails(capsys, argv, match):
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and match in lines[0], err
    return lines[0]


def test_encode_decode_info_models(tmp_path, small_png, capsys, shipped):
    assert main(["encode", str(small_png), "-v"]) == 0  # default output name
    lic = small_png.with_suffix(".lic")
    assert lic.is_file()
    assert "bpp" in capsys.readouterr().out
    out = tmp_path / "back.png"
    assert main(["decode", str(lic), "-o", str(out), "-v"]) == 0
    assert Image.open(out).size == (72, 48)
    assert main(["info", str(lic)]) == 0
    info = capsys.readouterr().out
    from licodec.zoo import DEFAULT_MODEL

    assert DEFAULT_MODEL in info and "72x48" in info
    assert main(["models"]) == 0
    assert f"{DEFAULT_MODEL} (default)" in capsys.readouterr().out


def test_decode_default_name_never_overwrites_the_original(tmp_path, small_png, small_lic, capsys):
    assert small_lic == small_png.with_suffix(".lic")  # photo.png -> photo.lic -> photo.png?
    before = small_png.read_bytes()
    run_fails(capsys, ["decode", str(small_png.with_suffix(".lic"))], "exists")
    assert small_png.read_bytes() == before


def test_existing_output_needs_force(tmp_path, small_png, small_lic, capsys):
    before = small_lic.read_bytes()
    run_fails(capsys, ["encode", str(small_png), "-o", str(small_lic), "-q", "8"], "--force")
    assert small_lic.read_bytes() == before
    assert main(["encode", str(small_png), "-o", str(small_lic), "-q", "8", "--force"]) == 0
    assert small_lic.read_bytes() != before


@pytest.mark.parametrize("content,match", [
    (None, "no such file"),
    (b"", "empty"),
    (b"this is text, not an image", "not an image"),
    (SAMPLE.read_bytes()[:4000], "truncated or damaged"),
])
def test_encode_bad_input(tmp_path, capsys, content, match):
    src = tmp_path / "in.png"
    if content is not None:
        src.write_bytes(content)
    out = tmp_path / "out.lic"
    run_fails(capsys, ["encode", str(src), "-o", str(out)], match)
    assert not out.exists() and list(tmp_path.glob("*.part")) == []


def test_encode_bad_quality_and_model(small_png, tmp_path, capsys):
    run_fails(capsys, ["encode", str(small_png), "-o", str(tmp_path / "a.lic"), "-q", "9"], "quality")
    run_fails(capsys, ["encode", str(small_png), "-o", str(tmp_path / "a.lic"), "-m", "nope"], "unknown codec")
    assert not (tmp_path / "a.lic").exists()


def _corrupt(data: bytes, how: str) -> bytes:
    if how == "truncated":
        return data[: len(data) // 2]
    if how == "bitflip":
        d = bytearray(data)
        d[len(d) // 2] ^= 0x04
        return bytes(d)
    if how == "magic":
        return b"XLIC" + data[4:]
    raise AssertionError(how)


@pytest.mark.parametrize("how,match", [("truncated", "truncated"), ("bitflip", "corrupted"), ("magic", "magic")])
def test_decode_damaged_files(tmp_path, small_lic, capsys, how, match):
    bad = tmp_path / "bad.lic"
    bad.write_bytes(_corrupt(small_lic.read_bytes(), how))
    out = tmp_path / "bad.png"
    run_fails(capsys, ["decode", str(bad), "-o", str(out)], match)
    run_fails(capsys, ["info", str(bad)], match)
    assert not out.exists() and list(tmp_path.glob("*.part")) == []


def _rewrite(small_lic, tmp_path, **changes):
    b = Bitstream.from_bytes(small_lic.read_bytes())
    for k, v in changes.items():
        setattr(b, k, v)
    path = tmp_path / "edited.lic"
    path.write_bytes(b.to_bytes())
    return path


def test_decode_unknown_codec_and_wrong_weights(tmp_path, small_lic, capsys):
    path = _rewrite(small_lic, tmp_path, codec_id="not-a-codec")
    run_fails(capsys, ["decode", str(path), "-o", str(tmp_path / "x.png")], "unknown codec")
    path = _rewrite(small_lic, tmp_path, weights_sha256="ffffffffffffffff")
    run_fails(capsys, ["decode", str(path), "-o", str(tmp_path / "x.png")], "weights")
    assert not (tmp_path / "x.png").exists()


def test_decode_newer_version(tmp_path, small_lic, capsys):
    import struct
    import zlib

    data = bytearray(small_lic.read_bytes()[:-4])
    data[4] = FORMAT_VERSION + 1
    path = tmp_path / "new.lic"
    path.write_bytes(bytes(data) + struct.pack(">I", zlib.crc32(bytes(data))))
    run_fails(capsys, ["decode", str(path), "-o", str(tmp_path / "x.png")], "newer")


def test_decode_missing_empty_and_folder(tmp_path, capsys):
    run_fails(capsys, ["decode", str(tmp_path / "none.lic")], "no such file")
    (tmp_path / "empty.lic").write_bytes(b"")
    run_fails(capsys, ["decode", str(tmp_path / "empty.lic")], "empty")
    run_fails(capsys, ["decode", str(tmp_path)], "folder")


def test_weights_whose_hash_does_not_match(tmp_path, monkeypatch, capsys, small_png):
    from licodec import api
    from licodec.zoo import registry

    fake = tmp_path / "weights"
    shutil.copytree(registry.WEIGHTS_ROOT, fake)
    target = fake / registry.DEFAULT_MODEL / "model.safetensors"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0x01
    target.write_bytes(bytes(data))
    monkeypatch.setattr(registry, "WEIGHTS_ROOT", fake)
    monkeypatch.setattr(api, "_cache", {})
    run_fails(capsys, ["encode", str(small_png), "-o", str(tmp_path / "x.lic")], "SHA-256")
    assert not (tmp_path / "x.lic").exists()


def test_usage_errors_exit_nonzero(capsys):
    assert main([]) != 0
    assert main(["encode"]) != 0
    assert main(["encode", "x.png", "-q", "high"]) != 0


def test_console_script_runs(tmp_path, small_png):
    """The installed `licodec` entry point: one error line, no traceback, exit 1."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "licodec", "decode", str(tmp_path / "missing.lic")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("licodec: error:") and "Traceback" not in proc.stderr


def test_demo(tmp_path, capsys, shipped):
    assert main(["demo", "--out", str(tmp_path / "demo"), "-q", "2"]) == 0
    out = capsys.readouterr().out
    assert "PSNR" in out and (tmp_path / "demo" / "kodim23-q2.png").is_file()
