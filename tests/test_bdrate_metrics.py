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
