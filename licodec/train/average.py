"""Weight averaging of trained codecs: a "model soup" (Wortsman et al. 2022, "Model soups:
averaging weights of multiple fine-tuned models improves accuracy without increasing inference
time").

Fine-tunes that start from the same weights tend to stay in one basin of the loss, and their
element-wise mean is often better than each of them. ``licodec average A B ... -o OUT`` writes
that mean as zoo weights (safetensors + config + training record naming every ingredient).

The ingredients must be weights of one codec with one config: the config is the codec's
geometry and sampler settings, and a mean of weights of different shapes or meanings is
meaningless. Floating-point tensors that differ are averaged in float32; tensors that all the
ingredients share (a frozen base codec) are kept bit for bit, and other tensors (integers) must
be identical. Entropy tables are rebuilt from the mean (frozen again on export), never averaged.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import torch
from safetensors.torch import load_file

from licodec.entropy.models import DERIVED_BUFFERS
from licodec.errors import LicodecError
from licodec.zoo.registry import WEIGHTS_FILE, create_model, export_weights, read_weights_config


def average_weights(weights_dirs: list[str | Path], out_dir: str | Path, coefficients: list[float] | None = None,
                    half: bool = True) -> Path:
    """Write ``sum_i c_i * W_i`` of the weights folders ``weights_dirs`` to ``out_dir``.

    ``coefficients``: one per folder, non-negative, summing to 1 (default: equal). Returns
    ``out_dir``. Raises :class:`LicodecError` when the folders hold different codecs or configs.
    """
    dirs = [Path(d) for d in weights_dirs]
    if len(dirs) < 2:
        raise LicodecError("averaging needs at least two weights folders")
    coefficients = coefficients or [1.0 / len(dirs)] * len(dirs)
    if len(coefficients) != len(dirs):
        raise LicodecError(f"{len(coefficients)} coefficients for {len(dirs)} weights folders")
    if min(coefficients) < 0 or abs(sum(coefficients) - 1) > 1e-6:
        raise LicodecError(f"the coefficients must be non-negative and sum to 1, not {coefficients}")
    for d in dirs:
        if not (d / WEIGHTS_FILE).is_file():
            raise LicodecError(f"{d}: no {WEIGHTS_FILE} (not a weights folder)")
    metas = [read_weights_config(d) for d in dirs]
    codec = metas[0]["codec"]
    models = []
    for d, meta in zip(dirs, metas):
        if meta["codec"] != codec:
            raise LicodecError(f"{d} holds {meta['codec']!r} weights, {dirs[0]} {codec!r}: only one codec's weights average")
        models.append(create_model(codec, weights_dir=d))  # verifies each file's SHA-256
    config = models[0].config.to_dict()
    for d, m in zip(dirs[1:], models[1:]):
        if m.config.to_dict() != config:
            changed = sorted(k for k in config if config[k] != m.config.to_dict().get(k))
            raise LicodecError(f"{d} has another config than {dirs[0]} (differs in {', '.join(changed)})")
    states = [load_file(str(d / WEIGHTS_FILE)) for d in dirs]
    mean = {}
    for name, first in states[0].items():
        if name.rsplit(".", 1)[-1] in DERIVED_BUFFERS or all(torch.equal(s[name], first) for s in states[1:]):
            continue  # entropy tables are rebuilt by the export's freeze(); shared tensors (a frozen base) stay exact
        if not first.is_floating_point():
            raise LicodecError(f"{name} differs between the weights folders and cannot be averaged")
        mean[name] = sum(c * s[name].float() for c, s in zip(coefficients, states))
    model = models[0]
    own = model.state_dict()
    with torch.no_grad():
        for name, value in mean.items():
            own[name].copy_(value)
    command = ["licodec", "average", *map(str, dirs), "-o", str(out_dir), "--coefficients", *(f"{c:g}" for c in coefficients)]
    record = {"command": " ".join(shlex.quote(part) for part in command + (["--half"] if half else [])),
              "average": [{"weights": str(d), "sha256": m["sha256"], "coefficient": c, "training": m.get("training", {})}
                          for d, m, c in zip(dirs, metas, coefficients)]}
    return export_weights(model, codec, out_dir, training=record, half=half)
