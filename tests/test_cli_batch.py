"""Pipes (``-``), batches into a folder (``-o DIR``, ``-j N``), target sizes and file modes."""

import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import random_image
from licodec.cli.main import main
from licodec.entropy.container import Bitstream
from licodec.rate_control import TOLERANCE, parse_size
from test_cli import run_fails


@pytest.fixture
def pngs(tmp_path, rng):
    """A folder with two photos-like PNGs (one in a subfolder) and one broken file."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(random_image(rng, 40, 56)).save(src / "a.png")
    Image.fromarray(random_image(rng, 48, 32)).save(src / "sub" / "b.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return src


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_pipes_through_a_subprocess(tmp_path, pngs, shipped):
    """``licodec encode - < in.png > out.lic`` and ``licodec decode - > out.png``: the same
    bytes as the API gives."""
    import licodec

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(pngs / "a.png", "rb") as f:
        enc = subprocess.run([sys.executable, "-m", "licodec", "encode", "-", "-q", "3"], stdin=f,
                             capture_output=True, env=env, timeout=300)
    assert enc.returncode == 0, enc.stderr.decode()
    assert enc.stdout == licodec.compress(pngs / "a.png", quality=3)
    dec = subprocess.run([sys.executable, "-m", "licodec", "decode", "-", "-o", "-"], input=enc.stdout,
                         capture_output=True, env=env, timeout=300)
    assert dec.returncode == 0, dec.stderr.decode()
    assert dec.stdout[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "piped.png").write_bytes(dec.stdout)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "piped.png")), np.asarray(licodec.decompress(enc.stdout)))


class _Terminal:
    def isatty(self) -> bool:
        return True


def test_dash_on_a_terminal_is_refused(tmp_path, pngs, capsys, monkeypatch, shipped):
    monkeypatch.setattr(sys, "stdin", _Terminal())
    run_fails(capsys, ["encode", "-", "-o", str(tmp_path / "x.lic")], "terminal")
    run_fails(capsys, ["decode", "-", "-o", str(tmp_path / "x.png")], "terminal")
    monkeypatch.setattr(sys, "stdout", _Terminal())
    run_fails(capsys, ["encode", str(pngs / "a.png"), "-o", "-"], "terminal")
    assert not (tmp_path / "x.lic").exists() and not (tmp_path / "x.png").exists()


def test_batch_reports_each_failure_and_finishes_the_rest(tmp_path, pngs, capsys, shipped):
    out = tmp_path / "out"
    assert main(["encode", str(pngs), "-o", str(out), "-q", "2"]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("licodec:")]
    assert len(lines) == 2 and "broken.png" in lines[0] and "1 of 3 files failed" in lines[1], err
    assert "Traceback" not in err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.lic")) == ["a.lic", "sub/b.lic"]
    assert not list(out.rglob("*.part"))
    # decode the folder back into another one
    back = tmp_path / "back"
    assert main(["decode", str(out), "-o", str(back)]) == 0
    assert Image.open(back / "sub" / "b.png").size == (32, 48)


def test_batch_keeps_existing_outputs_without_force(tmp_path, pngs, capsys, shipped):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.lic").write_bytes(b"precious")
    files = [str(pngs / "a.png"), str(pngs / "sub" / "b.png")]
    assert main(["encode", *files, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "a.lic exists" in err and "1 of 2 files failed" in err
    assert (out / "a.lic").read_bytes() == b"precious" and (out / "b.lic").is_file()
    assert main(["encode", *files, "-o", str(out), "--force"]) == 0
    assert (out / "a.lic").read_bytes()[:4] == b"\x89LIC"


def test_batch_in_worker_processes_gives_the_same_bytes(tmp_path, pngs, shipped):
    files = [str(pngs / "a.png"), str(pngs / "sub" / "b.png")]
    assert main(["encode", *files, "-o", str(tmp_path / "one"), "-j", "1"]) == 0
    assert main(["encode", *files, "-o", str(tmp_path / "two"), "-j", "2"]) == 0
    for name in ("a.lic", "b.lic"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


@pytest.mark.parametrize("argv,match", [
    (["encode", "IN/a.png", "IN/sub/b.png"], "-o DIR"),
    (["encode", "-", "IN/a.png", "-o", "OUT"], "stdin"),
    (["encode", "IN/a.png", "IN/a.png", "-o", "OUT"], "both be written"),
    (["encode", "IN", "-o", "IN/a.png"], "must be a folder"),
])
def test_batch_bad_requests(tmp_path, pngs, capsys, argv, match, shipped):
    argv = [a.replace("IN", str(pngs)).replace("OUT", str(tmp_path / "out")) for a in argv]
    run_fails(capsys, argv, match)
    assert not (tmp_path / "out").exists()


def test_outputs_get_the_usual_mode_and_overwrites_keep_theirs(tmp_path, pngs, shipped):
    old = os.umask(0o027)
    try:
        lic, png = tmp_path / "a.lic", tmp_path / "a.png"
        assert main(["encode", str(pngs / "a.png"), "-o", str(lic)]) == 0
        assert main(["decode", str(lic), "-o", str(png)]) == 0
        assert _mode(lic) == 0o640 and _mode(png) == 0o640
        os.umask(0o022)
        os.chmod(lic, 0o604)
        assert main(["encode", str(pngs / "a.png"), "-o", str(lic), "-q", "7", "--force"]) == 0
        assert _mode(lic) == 0o604
        assert main(["encode", str(pngs / "a.png"), "-o", str(tmp_path / "b.lic")]) == 0
        assert _mode(tmp_path / "b.lic") == 0o644
    finally:
        os.umask(old)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    import numpy as np

    path = tmp_path_factory.mktemp("target") / "photo.png"
    Image.fromarray(random_image(np.random.default_rng(7), 160, 240)).save(path)
    return path


@pytest.mark.parametrize("flag,value", [("--size", "7500"), ("--bpp", "2.6")])
def test_target_size_lands_within_tolerance_and_reports_the_quality(tmp_path, photo, capsys, flag, value, shipped):
    out = tmp_path / "t.lic"
    assert main(["encode", str(photo), "-o", str(out), flag, value]) == 0
    report = capsys.readouterr().out
    size = out.stat().st_size
    target = int(value) if flag == "--size" else 2.6 * 160 * 240 / 8
    assert abs(size / target - 1) <= TOLERANCE, (size, target)
    quality = Bitstream.from_bytes(out.read_bytes()).quality
    assert f"quality {quality:.3f}" in report and "within 3%" in report


def test_target_size_in_the_api(photo, shipped):
    import licodec

    data = licodec.compress(photo, target_bpp=2.2)
    assert abs(8 * len(data) / (160 * 240) / 2.2 - 1) <= TOLERANCE
    assert data == licodec.compress(photo, quality=Bitstream.from_bytes(data).quality)
    with pytest.raises(licodec.LicodecError, match="not both"):
        licodec.compress(photo, quality=3, target_bpp=2.2)


@pytest.mark.parametrize("value,match", [("10", "below the smallest"), ("10m", "above the largest"),
                                         ("ten", "cannot read the size")])
def test_unreachable_target_size_is_one_line_and_writes_nothing(tmp_path, photo, capsys, value, match, shipped):
    out = tmp_path / "t.lic"
    run_fails(capsys, ["encode", str(photo), "-o", str(out), "--size", value], match)
    assert not out.exists() and not list(tmp_path.glob(".*.part"))


def test_quality_and_target_are_exclusive(photo, capsys):
    assert main(["encode", str(photo), "-q", "3", "--bpp", "0.5"]) == 2
    assert "not allowed with" in capsys.readouterr().err


@pytest.mark.parametrize("text,expected", [("40000", 40000), ("40k", 40000), ("40KB", 40000),
                                           ("40kib", 40960), ("1.5m", 1500000), ("2MiB", 2 << 20)])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


def test_target_search_over_integer_rungs():
    """Codecs with discrete rungs (vqgan) are searched over integer qualities only."""
    from licodec.rate_control import search_quality

    sizes = {q: 100 * 2 ** q for q in range(1, 9)}  # 200 ... 25600 bytes
    calls = []

    def encode(q):
        calls.append(q)
        assert q == int(q), q
        return b"x" * sizes[int(q)]

    data, result = search_quality(encode, 3000, (1, 8), integer=True)
    assert result.quality == 5 and not result.landed and len(data) == 3200  # nearest in log size
    data, result = search_quality(encode, 1600, (1, 8), integer=True)
    assert result.quality == 4 and result.landed
