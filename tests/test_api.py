"""The Python API: compress/decompress/load with every accepted input type."""

import numpy as np
import pytest
import torch
from PIL import Image

import licodec
from conftest import SAMPLE, random_image
from licodec.errors import LicodecError


def test_path_round_trip():
    data = licodec.compress(SAMPLE, quality=2)
    assert isinstance(data, bytes)
    image = licodec.decompress(data)
    assert isinstance(image, Image.Image) and image.size == (768, 512)


def test_array_tensor_and_pil_give_the_same_bytes(rng):
    arr = random_image(rng, 40, 64)
    a = licodec.compress(arr, 5)
    b = licodec.compress(Image.fromarray(arr), 5)
    c = licodec.compress(torch.from_numpy(arr).permute(2, 0, 1).float() / 255, 5)
    assert a == b == c


def test_fractional_quality_lies_between_integers(rng):
    arr = random_image(rng, 128, 128)
    sizes = [len(licodec.compress(arr, q)) for q in (3, 3.5, 4)]
    assert sizes[0] <= sizes[1] <= sizes[2]


def test_load_returns_the_cached_codec():
    from licodec.zoo import DEFAULT_MODEL

    assert licodec.load() is licodec.load(DEFAULT_MODEL)
    assert licodec.load("hyperprior-vr") is licodec.load("hyperprior-vr") is not licodec.load()


def test_bad_inputs():
    with pytest.raises(LicodecError):
        licodec.compress(np.zeros((4, 4), np.uint8))
    with pytest.raises(LicodecError):
        licodec.compress(12345)
    with pytest.raises(LicodecError):
        licodec.decompress(b"nonsense")
