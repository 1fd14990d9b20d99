"""One registry: the single source of codec names for the zoo, the CLI, bitstreams and tests.

A codec registers a builder with :func:`register_model` (as timm does); everything else
asks :func:`create_model`, :func:`list_models` or :func:`get_entry`. A bitstream's codec
id is a registry name.

Shipped weights live in ``licodec/zoo/weights/<name>/``: ``model.safetensors`` and
``config.json`` (the frozen config dataclass, the SHA-256 of the weights file, and the
training record). The hash is checked on every load.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from licodec.errors import LicodecError, WeightsError

WEIGHTS_ROOT = Path(__file__).parent / "weights"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable  # config -> nn.Module
    config_cls: type
    description: str

    @property
    def weights_dir(self) -> Path:
        return WEIGHTS_ROOT / self.name

    @property
    def family(self) -> str:
        """``"video"`` (codes frame sequences: :mod:`licodec.video`), ``"generative"`` (a decoder
        for another codec's files: :mod:`licodec.codec.flow`) or ``"image"``."""
        if getattr(self.builder, "objective", None) == "video":
            return "video"
        return "generative" if getattr(self.config_cls, "base", None) is not None else "image"

    @property
    def has_weights(self) -> bool:
        return (self.weights_dir / WEIGHTS_FILE).is_file() and (self.weights_dir / CONFIG_FILE).is_file()


_REGISTRY: dict[str, ModelEntry] = {}
DEFAULT_MODEL = "hyperprior-ctx"


def register_model(name: str, config_cls: type, description: str = ""):
    """Decorator: register ``builder(config) -> codec`` under ``name``."""

    def wrap(builder):
        if name in _REGISTRY:
            raise ValueError(f"codec {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, builder, config_cls, description)
        return builder

    return wrap


def _ensure_builtin() -> None:
    import licodec.zoo.models  # noqa: F401  (registers the built-in codecs)


def list_models() -> list[str]:
    _ensure_builtin()
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    _ensure_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise LicodecError(f"unknown codec {name!r} (known: {known})") from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_weights_config(weights_dir: Path) -> dict:
    try:
        return json.loads((Path(weights_dir) / CONFIG_FILE).read_text())
    except (OSError, ValueError) as e:
        raise WeightsError(f"cannot read {Path(weights_dir) / CONFIG_FILE}: {e}") from None


def load_weights(model: torch.nn.Module, weights_dir: Path, expected_sha256: str) -> str:
    """Load ``model.safetensors`` from ``weights_dir`` into ``model`` after checking its SHA-256."""
    path = Path(weights_dir) / WEIGHTS_FILE
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise WeightsError(f"weights {path} do not match their recorded SHA-256 (got {actual[:16]}…, expected {expected_sha256[:16]}…)")
    with safe_open(str(path), framework="pt") as f:
        stored_config = (f.metadata() or {}).get("config")
        state = {key: f.get_tensor(key) for key in f.keys()}
    _check_stored_config(model, path, stored_config)
    for module_name, module in model.named_modules():
        if hasattr(module, "resize_table_buffers"):
            module.resize_table_buffers(state, module_name + "." if module_name else "")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"weights {path} do not fit the codec: {str(e).splitlines()[0]}") from None
    if hasattr(model, "refresh"):
        model.refresh()
    return actual


def _check_stored_config(model: torch.nn.Module, path: Path, stored: str | None) -> None:
    """:class:`WeightsError` if ``stored``, the config JSON in the weights file's header (exports
    since 2026-12-02; older files have none), differs from the one ``model`` was built from; a
    config's ``DECODE_CHOICES`` (sampler settings measured after export) may differ."""
    if stored is None:
        return
    stored, given = json.loads(stored), json.loads(json.dumps(model.config.to_dict()))
    choices = set(getattr(model.config, "DECODE_CHOICES", ()))  # chosen after export, in config.json only
    differ = sorted(k for k in (set(given) & set(stored)) - choices if stored[k] != given[k])  # fields both know
    if differ:
        raise WeightsError(f"{path.parent / CONFIG_FILE} does not match the config its weights were exported with "
                           f"({', '.join(differ)})")


def create_model(name: str = DEFAULT_MODEL, pretrained: bool = True, weights_dir: str | Path | None = None,
                 config=None) -> torch.nn.Module:
    """Build the codec ``name``; with ``pretrained`` load its shipped (or ``weights_dir``) weights.

    The config comes from the weights' ``config.json`` when weights are loaded (never from
    tensor shapes), else from ``config`` or the config class's defaults.
    """
    entry = get_entry(name)
    if not pretrained:
        model = entry.builder(config or entry.config_cls())
        model.codec_id = name
        return model.eval()
    wdir = Path(weights_dir) if weights_dir else entry.weights_dir
    if not (wdir / CONFIG_FILE).is_file():
        if weights_dir is None:
            raise WeightsError(f"codec {name!r} has no trained weights in this release yet "
                               f"(train them: licodec train --model {name} ...; or pass a weights folder)")
        raise WeightsError(f"no weights for codec {name!r} in {wdir}")
    meta = read_weights_config(wdir)
    if meta.get("codec") != name:
        raise WeightsError(f"weights in {wdir} are for codec {meta.get('codec')!r}, not {name!r}")
    model = entry.builder(entry.config_cls.from_dict(meta["config"]))
    sha = load_weights(model, wdir, meta["sha256"])
    model.codec_id = name
    model.weights_sha256 = sha[:16]
    return model.eval()


def export_weights(model: torch.nn.Module, name: str, out_dir: str | Path, training: dict | None = None,
                   half: bool = False) -> Path:
    """Freeze the entropy tables and write ``model.safetensors`` + ``config.json`` to ``out_dir``.

    ``half``: store the parameters as float16 (half the file). They are rounded to float16
    *before* the tables are frozen, so the model loaded back into float32 is exactly the one
    exported: same outputs, same tables, same fingerprints. Buffers keep their dtypes.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = {n for n, p in model.named_parameters() if p.is_floating_point()}
    if half:
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.half().float())
    model.freeze()
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if k in params else v for k, v in state.items()}
    tmp = out / (WEIGHTS_FILE + ".tmp")
    # the config rides in the file's header too, so the weights' SHA-256 covers it (a coding
    # setting such as video-dvc's motion_quality_offset cannot change without a new hash)
    save_file(state, str(tmp), metadata={"codec": name, "config": json.dumps(model.config.to_dict(), sort_keys=True)})
    tmp.replace(out / WEIGHTS_FILE)
    meta = {
        "codec": name,
        "config": model.config.to_dict(),
        "sha256": sha256_file(out / WEIGHTS_FILE),
        "weights_dtype": "float16" if half else "float32",
        "training": training or {},
    }
    (out / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return out
