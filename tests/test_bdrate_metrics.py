"""BD-rate and PSNR against known answers."""

import math

import numpy as np
import pytest

from licodec.eval.bdrate import bd_psnr, bd_rate
from licodec.eval.metrics import psnr

R = [0.1, 0.25, 0.5, 1.0]
D = [28.0, 31.0, 34.0, 37.5]


def test_identical_curves_give_zero():
    assert bd_rate(R, D, R, D) == pytest.approx(0, abs=1e-9)
    assert bd_psnr(R, D, R, D) == pytest.approx(0, abs=1e-9)


def test_rates_times_point_nine_give_minus_ten_percent():
    assert bd_rate(R, D, [0.9 * r for r in R], D) == pytest.approx(-10.0, abs=1e-6)


def test_shifted_psnr():
    assert bd_psnr(R, D, R, [d + 0.5 for d in D]) == pytest.approx(0.5, abs=1e-6)


def test_classic_cubic_fit_on_a_scaled_curve():
    """The classic cubic fit (VCEG-M33) also gives exactly -10% for rates x 0.9."""
    r1 = [100.0, 200.0, 400.0, 800.0]
    d1 = [30.0, 33.0, 36.0, 39.0]
    r2 = [90.0, 180.0, 360.0, 720.0]
    assert bd_rate(r1, d1, r2, d1, method="cubic") == pytest.approx(-10.0, abs=1e-6)


def test_bad_curves_are_refused():
    from licodec.errors import LicodecError

    with pytest.raises(LicodecError):
        bd_rate([1.0], [30.0], [1.0], [30.0])
    with pytest.raises(LicodecError):
        bd_rate(R, D, [5, 6, 7, 8], [50, 51, 52, 53])


def test_psnr():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 10
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / (100 / 48)))
    assert psnr(a, a) == math.inf


# Published test vector: the x265 curves shipped as the usage example of FAU-LMS's
# `bjontegaard` package (github.com/FAU-LMS/bjontegaard, example_usage.py, "Test 1" and
# "Test 2 (high bitrates)"). That package's PCHIP variant reproduces the JCT-VC/JVET CTC
# Excel sheet to 10 decimals; the expected values are bjontegaard 1.3.0's outputs.
RA1, DA1 = [9487.76, 4593.60, 2486.44, 1358.24], [40.037, 38.615, 36.845, 34.851]
RT1, DT1 = [9787.80, 4469.00, 2451.52, 1356.24], [40.121, 38.651, 36.970, 34.987]
RA2, DA2 = [82472.76, 26875.24, 9487.76, 4593.6], [43.825, 41.404, 40.037, 38.615]
RT2, DT2 = [99896.96, 33952.04, 9787.8, 4469.0], [44.731, 41.875, 40.121, 38.651]
PUBLISHED = [  # method, case, BD-rate %, BD-PSNR dB
    ("pchip", 1, -4.417485350589045, 0.11969278542479489),
    ("pchip", 2, -4.47218200276197, 0.08887484704747745),
    ("akima", 1, -4.425245156997493, 0.11940927028529469),
    ("akima", 2, -4.0857609404152395, 0.08990284924945707),
    ("cubic", 1, -4.420462706125383, 0.12040941911451103),
    ("cubic", 2, -4.699437548068142, 0.09540440289143115),
]


@pytest.mark.parametrize("method,case,rate,dpsnr", PUBLISHED)
def test_published_test_vector(method, case, rate, dpsnr):
    ra, da, rt, dt = (RA1, DA1, RT1, DT1) if case == 1 else (RA2, DA2, RT2, DT2)
    assert bd_rate(ra, da, rt, dt, method=method) == pytest.approx(rate, abs=1e-8)
    assert bd_psnr(ra, da, rt, dt, method=method) == pytest.approx(dpsnr, abs=1e-8)


def test_swapping_anchor_and_test_flips_the_sign():
    assert bd_rate(RA1, DA1, RT1, DT1) < 0 < bd_rate(RT1, DT1, RA1, DA1)


def test_small_overlap_warns():
    with pytest.warns(UserWarning, match="overlap"):
        bd_rate(R, D, [0.05, 0.08, 0.1, 0.2], [20.0, 25.0, 28.3, 29.0])


def test_psnr_y_weighs_green_most():
    from licodec.eval.metrics import psnr_y

    a = np.zeros((8, 8, 3), np.uint8)
    g, b = a.copy(), a.copy()
    g[..., 1], b[..., 2] = 10, 10
    # mean squared luma error: (0.587 * 10)^2 for green, (0.114 * 10)^2 for blue
    assert psnr_y(a, g) == pytest.approx(10 * math.log10(255**2 / (5.87**2)))
    assert psnr_y(a, b) == pytest.approx(10 * math.log10(255**2 / (1.14**2)))
