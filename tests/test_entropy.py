"""Exact entropy round trips, stale-table refusal, and the whole-stream check."""

import numpy as np
import pytest
import torch

from licodec.entropy import rans
from licodec.entropy.models import FrozenEntropyBottleneck, FrozenGaussianConditional
from licodec.errors import BitstreamError, LicodecError


@pytest.fixture
def bottleneck():
    torch.manual_seed(0)
    eb = FrozenEntropyBottleneck(8)
    eb.freeze()
    return eb


@pytest.fixture
def gaussian():
    gc = FrozenGaussianConditional()
    gc.freeze()
    return gc


def test_bottleneck_round_trip_is_exact(bottleneck):
    z = torch.randn(1, 8, 5, 7) * 3
    data, z_hat_enc = bottleneck.compress_tensor(z)
    z_hat = bottleneck.decompress_tensor(data, z.shape)
    assert torch.equal(z_hat, torch.round(z - bottleneck.medians()) + bottleneck.medians())
    assert torch.equal(z_hat, z_hat_enc)


def test_gaussian_round_trip_is_exact_including_outliers(gaussian):
    torch.manual_seed(1)
    scales = torch.rand(1, 16, 9, 11) * 20 + 0.05
    means = torch.randn(1, 16, 9, 11) * 5
    y = means + torch.randn_like(means) * scales
    y[0, 0, 0, 0] = 1e4  # far outside every table: coded through the escape path
    data = gaussian.compress_tensor(y, scales, means)
    y_hat = gaussian.decompress_tensor(data, scales, means)
    assert torch.equal(y_hat, torch.round(y - means) + means)


def test_table_indexes_match_compressai(gaussian):
    scales = torch.rand(4, 8, 6, 6) * 300
    assert torch.equal(gaussian.table_indexes(scales), gaussian.build_indexes(scales))


def test_stale_tables_are_refused(bottleneck):
    with torch.no_grad():
        bottleneck.quantiles.add_(0.5)
    with pytest.raises(LicodecError, match="stale"):
        bottleneck.compress_tensor(torch.zeros(1, 8, 2, 2))
    bottleneck.freeze()
    bottleneck.compress_tensor(torch.zeros(1, 8, 2, 2))


def test_unfrozen_tables_are_refused():
    eb = FrozenEntropyBottleneck(4)
    with pytest.raises(LicodecError, match="never frozen"):
        eb.compress_tensor(torch.zeros(1, 4, 2, 2))


def _random_stream(gaussian, n=2000, seed=0):
    g = np.random.default_rng(seed)
    indexes = g.integers(0, 64, size=n).astype(np.int32)
    symbols = np.round(g.normal(0, 2, size=n)).astype(np.int32)
    tables = gaussian.rans_tables()
    return rans.encode(symbols, indexes, tables), symbols, indexes, tables


def test_rans_round_trip(gaussian):
    data, symbols, indexes, tables = _random_stream(gaussian)
    assert np.array_equal(rans.decode(data, indexes, tables), symbols)


def test_rans_rejects_trailing_bytes(gaussian):
    data, _, indexes, tables = _random_stream(gaussian)
    with pytest.raises(BitstreamError, match="consumed whole"):
        rans.decode(data + b"\x00\x00\x00\x00", indexes, tables)


def test_rans_rejects_truncation_and_damage(gaussian):
    data, _, indexes, tables = _random_stream(gaussian)
    for damaged in (data[:-4], data[: len(data) // 2], bytes([data[0] ^ 0x10]) + data[1:]):
        with pytest.raises(BitstreamError):
            rans.decode(damaged, indexes, tables)


def test_real_bytes_match_the_ideal_code_length(gaussian):
    """Information bound on the coder alone: bytes never below the entropy of the tables' pmfs."""
    g = np.random.default_rng(3)
    index = 30
    scale = float(gaussian.scale_table[index])
    symbols = np.round(g.normal(0, scale, size=50000)).astype(np.int32)
    indexes = np.full_like(symbols, index)
    data = rans.encode(symbols, indexes, gaussian.rans_tables())
    from scipy.stats import norm

    p = norm.cdf((np.abs(symbols) + 0.5) / scale) - norm.cdf((np.abs(symbols) - 0.5) / scale)
    ideal_bits = float(-np.log2(p).sum())
    assert 8 * len(data) >= ideal_bits * 0.999
    assert 8 * len(data) <= ideal_bits * 1.01 + 64
