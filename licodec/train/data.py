"""Random training crops from a folder of images, held in memory as uint8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from licodec.errors import LicodecError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise LicodecError(f"not a folder: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise LicodecError(f"no images in {folder}")
    return files


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The generator of training step ``step``'s random choices: a function of ``(seed, step)``
    alone, so every process redraws the same choices and a resumed run draws what an
    uninterrupted one would."""
    return np.random.default_rng([seed, step])


class RandomCrops:
    """Batches of random ``crop``x``crop`` RGB patches with random horizontal flips.

    Every image is decoded once and kept as uint8; images smaller than the crop are
    skipped. Step ``s`` of a run draws its *global* batch's choices (image, crop offsets,
    flip and quality of every image) from :func:`step_rng` ``(seed, s)``; a process
    materializes only its share of it (:meth:`step_batch`), so ``N`` processes with batch
    ``b`` train on exactly the images of one process with batch ``N * b``.
    """

    def __init__(self, folder: str | Path, crop: int, seed: int = 0) -> None:
        self.crop = crop
        self.seed = seed
        self.images = []
        for path in list_images(folder):
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
            if arr.shape[0] >= crop and arr.shape[1] >= crop:
                self.images.append(arr)
        if not self.images:
            raise LicodecError(f"no image in {folder} is at least {crop}x{crop}")
        # sample images in proportion to the square root of their area, so large photos give more crops
        areas = np.array([a.shape[0] * a.shape[1] for a in self.images], dtype=np.float64)
        self.weights = np.sqrt(areas) / np.sqrt(areas).sum()
        self._sizes = np.array([a.shape[:2] for a in self.images])
        self._next_step = 0

    def __len__(self) -> int:
        return len(self.images)

    def choices(self, step: int, n: int, quality_range: tuple[float, float] = (0.0, 1.0)) -> dict:
        """Step ``step``'s draws for a batch of ``n`` (indices only, no pixels): ``image``,
        ``top``, ``left``, ``flip`` and ``quality`` (uniform in ``quality_range``), ``(n,)`` each."""
        c, rng = self.crop, step_rng(self.seed, step)
        image = rng.choice(len(self.images), size=n, p=self.weights)
        top = rng.integers(0, self._sizes[image, 0] - c + 1)
        left = rng.integers(0, self._sizes[image, 1] - c + 1)
        return {"image": image, "top": top, "left": left, "flip": rng.random(n) < 0.5,
                "quality": rng.uniform(*quality_range, size=n)}

    def step_batch(self, step: int, batch: int, quality_range: tuple[float, float] = (0.0, 1.0),
                   rank: int = 0, world_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Process ``rank``'s share of step ``step``'s global batch of ``batch * world_size``:
        images ``rank * batch`` to ``(rank + 1) * batch - 1`` as ``(batch, 3, crop, crop)``
        float32 in [0, 1], and their qualities ``(batch,)`` float32."""
        draws = self.choices(step, batch * world_size, quality_range)
        mine = slice(rank * batch, (rank + 1) * batch)
        c = self.crop
        out = np.empty((batch, c, c, 3), dtype=np.uint8)
        for i, (k, top, left, flip) in enumerate(zip(*(draws[key][mine] for key in ("image", "top", "left", "flip")))):
            patch = self.images[k][top : top + c, left : left + c]
            out[i] = patch[:, ::-1] if flip else patch
        x = torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)
        return x, torch.from_numpy(draws["quality"][mine]).float()

    def batch(self, n: int) -> torch.Tensor:
        """``(n, 3, crop, crop)`` float32 in [0, 1]; successive calls draw successive steps."""
        x, _ = self.step_batch(self._next_step, n)
        self._next_step += 1
        return x
