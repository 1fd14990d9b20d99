"""Hostile bitstreams: geometry the encoder never writes is refused before anything is
allocated, rANS stays inside its buffers, and mutated bitstreams of every zoo model only ever
raise LicodecError (a quick tier here; 10,000 cases under ``-m slow``; ``benchmarks/fuzz.py``)."""

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from conftest import REPO, make_untrained
from licodec._compat import compressai_core
from licodec.entropy import rans
from licodec.entropy.container import Bitstream
from licodec.errors import BitstreamError
from licodec.zoo import create_model, get_entry, list_models

SHIPPED = [n for n in list_models() if get_entry(n).has_weights and get_entry(n).family == "image"]  # what the
# fuzzer decodes through licodec.load (generative decoders read their base's files; videos: test_video_fuzz.py)


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("licodec_benchmark_fuzz", REPO / "benchmarks" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _header(codec, height: int, width: int, tile: int, streams: dict) -> Bitstream:
    return Bitstream(codec_id=codec.codec_id, weights_sha256=codec.weights_sha256, quality=4.0, height=height,
                     width=width, tile=tile, streams=streams)


# -- geometry ----------------------------------------------------------------------------------
FORGED_HUGE = textwrap.dedent("""
    import dataclasses, json, resource, tracemalloc
    import numpy as np
    import licodec
    from licodec.entropy.container import Bitstream
    from licodec.errors import BitstreamError

    data = licodec.compress(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    licodec.decompress(data)  # model loaded and warm: what follows is the forged decode alone
    forged = dataclasses.replace(Bitstream.from_bytes(data), height=16384, width=16384).to_bytes()
    Bitstream.from_bytes(forged)  # the CRC is valid
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        licodec.decompress(forged)
        error = None
    except BitstreamError as e:
        error = str(e)
    traced = tracemalloc.get_traced_memory()[1]
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"error": error, "traced_mb": traced / 2**20, "peak_rss_growth_mb": grown / 1024}))
""")


def test_forged_huge_single_tile_is_refused_before_allocating():
    """Once this spent 1 GB (and seconds) before refusing; peak RSS must not grow now."""
    proc = subprocess.run([sys.executable, "-c", FORGED_HUGE], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["error"] == ("bitstream declares a 16384x16384 image in one tile; "
                               "hyperprior-ctx codes at most 2048x2048 per tile")
    assert result["peak_rss_growth_mb"] < 50
    assert result["traced_mb"] < 50


@pytest.mark.parametrize("name", [n for n in list_models() if get_entry(n).family == "image"])
def test_every_zoo_model_refuses_forged_tilings(name):
    """Every image codec that writes its own bitstreams (generative decoders read their base's: test_flow.py;
    video codecs their container's: test_video_fuzz.py)."""
    codec = create_model(name, pretrained=False)  # the check comes before any table or weight is used
    assert codec.config.tile == 2048
    streams = {"z": bytes(8), "y": bytes(8)}
    cases = [
        ((3000, 96, 1024, streams), "declares tiles of 1024; .* codes in tiles of 2048"),
        ((3000, 96, 0, streams), "declares a 96x3000 image in one tile; .* at most 2048x2048 per tile"),
        ((16384, 16384, 0, streams), "declares a 16384x16384 image in one tile"),
        ((64, 96, 2048, streams), "declares tiles of 2048 for a 96x64 image that .* codes in one tile"),
        ((64, 96, 64, streams), "declares tiles of 64 for a 96x64 image"),
        ((3000, 96, 2048, streams), "no sub-stream 't0\\.[a-z]+' \\(and [13] more missing\\)"),
    ]
    for (h, w, tile, s), message in cases:
        with pytest.raises(BitstreamError, match=message):
            codec.decompress(_header(codec, h, w, tile, s))


def test_substreams_must_be_exactly_those_the_encoder_writes(rng):
    codec = make_untrained("hyperprior-vr", N=16, M=16, tile=64)
    x = torch.from_numpy(rng.random((1, 3, 40, 100), dtype=np.float32))
    b = codec.compress(x, 4.0)
    assert list(b.streams) == ["t0.z", "t0.y", "t1.z", "t1.y"] and b.tile == 64
    assert codec.decompress(b).shape == (1, 3, 40, 100)

    def refused(match, **changes):
        with pytest.raises(BitstreamError, match=match):
            codec.decompress(dataclasses.replace(b, **changes))

    s = b.streams
    refused("no sub-stream 't1.y'", streams={k: v for k, v in s.items() if k != "t1.y"})
    refused("sub-stream 't2.z' that hyperprior-vr does not write", streams={**s, "t2.z": s["t0.z"]})
    refused("sub-stream 'y' that", streams={**s, "y": s["t0.y"]})
    refused("no sub-stream 't0.z'", streams={"z": s["t0.z"], "y": s["t0.y"]})
    refused("t0.y: truncated \\(0 bytes\\)", streams={**s, "t0.y": b""})
    refused("t1.z: 10 bytes is not a whole number", streams={**s, "t1.z": bytes(10)})
    refused("t0.y: .* more than the encoder writes", streams={**s, "t0.y": bytes(4 * 16 * 4 * 4 + 4)})
    # an alpha sub-stream is the API's business (see below), not the codec's
    assert codec.decompress(dataclasses.replace(b, streams={**s, "alpha": b"x"})).shape == (1, 3, 40, 100)


def test_alpha_substream_only_with_four_channels():
    import licodec

    data = licodec.compress(np.full((32, 32, 3), 128, np.uint8), model="hyperprior-vr")
    b = Bitstream.from_bytes(data)
    with pytest.raises(BitstreamError, match="carries an alpha sub-stream but declares 3 channels"):
        licodec.decompress(dataclasses.replace(b, streams={**b.streams, "alpha": b"\x00"}).to_bytes())
    with pytest.raises(BitstreamError, match="declares 4 channels but has no alpha sub-stream"):
        licodec.decompress(dataclasses.replace(b, channels=4).to_bytes())


# -- rANS on hostile payloads ----------------------------------------------------------------
def _hostile_payloads(rng, n: int) -> dict:
    return {
        "ff": b"\xff" * n, "ff-then-zero": b"\xff" * (n // 2) + bytes(n - n // 2), "zero": bytes(n),
        "random": rng.bytes(n), "f0": b"\xf0" * n, "0f": b"\x0f" * n,
        "ff-mix": bytes(rng.choice([0, 15, 240, 255], n).astype(np.uint8)), "zero-then-ff": bytes(n - 8) + b"\xff" * 8,
    }


def test_rans_decoder_stays_inside_its_padding_on_hostile_streams(rng):
    """CompressAI's decoder reads without bounds checks and an all-0xFF stream makes it read 15x
    its length past the end. Decoding with a tail of 0x5A bytes after our padding must give what a
    tail of zeros gives: the decoder never read past the padding."""
    ans = compressai_core().ans
    codec = make_untrained("hyperprior-vr")
    tail = 1 << 14
    for tables, total in ((codec.latent.z_model.rans_tables(), 96), (codec.latent.y_model.rans_tables(), 2304)):
        escape_freq = [c[n - 1] - c[n - 2] for c, n in zip(tables.cdfs, tables.cdf_lengths)]
        for indexes in (np.arange(total) % tables.num_tables, np.full(total, int(np.argmax(escape_freq)))):
            indexes = indexes.astype(np.int32)
            for n in (8, 64, 4 * total):
                for label, data in _hostile_payloads(rng, n).items():
                    padded = data + bytes(rans._padding(data, total))
                    decode = ans.RansDecoder().decode_with_indexes
                    args = (indexes.tolist(), tables.cdfs, tables.cdf_lengths, tables.offsets)
                    assert decode(padded + b"\x5a" * tail, *args) == decode(padded + bytes(tail), *args), (label, n)
                    with pytest.raises(BitstreamError):
                        rans.decode(data, indexes, tables)
                    decoder = rans.StreamDecoder(data, tables, total)
                    with pytest.raises(BitstreamError):
                        decoder.decode(indexes)
                        decoder.finish()


def test_rans_encoder_refuses_values_its_buffer_cannot_hold():
    """The C++ encoder writes into one 32-bit word per symbol; escaped values need up to 1.5."""
    tables = make_untrained("hyperprior-vr").latent.z_model.rans_tables()
    indexes = np.arange(96) % tables.num_tables
    with pytest.raises(ValueError, match="buffer"):
        rans.encode(np.full(96, (1 << 23) + 12345, np.int32), indexes, tables)
    few = np.zeros(96, np.int32)
    few[:3] = 1 << 23  # a few escapes fit, and round-trip
    data = rans.encode(few, indexes, tables)
    assert np.array_equal(rans.decode(data, indexes, tables), few)


def test_rans_stream_lengths_the_encoder_never_writes():
    rans.check_length(8, 100)
    rans.check_length(400, 100)
    for n, match in ((0, "truncated"), (7, "truncated"), (10, "whole number"), (404, "more than")):
        with pytest.raises(BitstreamError, match=match):
            rans.check_length(n, 100, "y")


def _craft_extreme(codec, height: int, width: int, value: int, rng) -> Bitstream:
    """A valid bitstream (rANS streams the decoder accepts) whose z and y latents are 0 or
    +-``value`` at random positions: what a deliberate attacker can write with the encoder."""
    from licodec.codec.context import SpaceChannelContextLatentCodec

    latent = codec.latent
    z_shape = codec._latent_shape(height, width)
    z_sym = rng.choice([0, 0, 0, value, -value], int(np.prod(z_shape)))
    z_bytes = rans.encode(z_sym, latent.z_model._indexes(z_shape), latent.z_model.rans_tables())
    z_hat = torch.from_numpy(z_sym.reshape(z_shape)).float() + latent.z_model.medians()
    y_shape = (1, codec.config.M, z_shape[2] * 4, z_shape[3] * 4)
    symbols, indexes = [], []
    if isinstance(latent, SpaceChannelContextLatentCodec):
        def code_group(k, mask, scales, means):  # the encoder's coding order, with chosen symbols
            sym = torch.from_numpy(rng.choice([0.0, 0.0, 0.0, value, -value], tuple(means[:, :, mask].shape)))
            symbols.append(sym.reshape(-1))
            indexes.append(latent.y_model.table_indexes(scales[:, :, mask]).reshape(-1))
            out = torch.zeros_like(means)
            out[:, :, mask] = sym + means[:, :, mask]
            return out

        latent._code(z_hat, y_shape, code_group)
    else:
        scales, _ = latent._entropy_parameters(z_hat)
        indexes.append(latent.y_model.table_indexes(scales).reshape(-1))
        symbols.append(torch.from_numpy(rng.choice([0.0, 0.0, 0.0, value, -value], indexes[0].numel())))
    y_bytes = rans.encode(torch.cat(symbols).long(), torch.cat(indexes), latent.y_model.rans_tables())
    return _header(codec, height, width, 0, {"z": z_bytes, "y": y_bytes})


@pytest.mark.parametrize("name,config", [("hyperprior-vr", dict(N=16, M=16)),
                                         ("hyperprior-ctx", dict(N=16, M=32, context_groups=(16, 16),
                                                                 context_hidden=16))])
def test_valid_streams_with_extreme_latents_decode_to_garbage_not_errors(name, config, rng):
    codec = make_untrained(name, **config)
    for value in (1000, (1 << 23) - 1):
        x = codec.decompress(_craft_extreme(codec, 40, 72, value, rng))
        assert x.shape == (1, 3, 40, 72)


# -- fuzzing through licodec.decompress ---------------------------------------------------------
def _check_report(report: dict, cases: int) -> None:
    t = report["totals"]
    summary = json.dumps({"totals": t, "findings": report["findings"][:5]}, indent=1)
    assert t["total"] == cases
    assert t["crashes"] == 0, summary
    assert t["hangs"] == 0, summary
    assert report["reached_past_crc"] >= 0.7, summary
    assert set(report["models"]) == set(SHIPPED)
    assert all(c["total"] >= cases // len(SHIPPED) for c in report["models"].values())
    assert t["rejected"] > 0


def test_fuzz_quick(tmp_path):
    fuzz = _fuzz_module()
    report = fuzz.run_fuzz(300, seed=1, failures_dir=tmp_path, hang_floor=60, seed_labels=fuzz.FAST_SEEDS,
                           log=lambda *_: None)
    _check_report(report, 300)


@pytest.mark.slow
def test_fuzz_10000(tmp_path):
    report = _fuzz_module().run_fuzz(10000, seed=2, failures_dir=tmp_path, hang_floor=60, log=lambda *_: None)
    _check_report(report, 10000)
