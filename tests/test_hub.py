"""hubconf.py: torch.hub entry points for the zoo, loaded from the local checkout (no network)."""

import inspect
import os

import numpy as np
import pytest
import torch

import licodec
from licodec.zoo import get_entry, list_models

from conftest import REPO, random_image

HUB = str(REPO)


def _hub_list_local(repo_dir: str) -> list:
    """``torch.hub.list`` for a local directory.

    torch.hub.list only takes GitHub repos up to torch 2.x (no ``source`` argument); where it
    has one, use it, else run exactly what it does once the repo is on disk.
    """
    if "source" in inspect.signature(torch.hub.list).parameters:
        return torch.hub.list(repo_dir, source="local")
    with torch.hub._add_to_sys_path(repo_dir):
        module = torch.hub._import_module(torch.hub.MODULE_HUBCONF, os.path.join(repo_dir, torch.hub.MODULE_HUBCONF))
    return [f for f in dir(module) if callable(getattr(module, f)) and not f.startswith("_")]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """source="local" must never fetch anything."""

    def refuse(*args, **kwargs):
        raise AssertionError("torch.hub tried to use the network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "_get_cache_or_reload", refuse)
    monkeypatch.setattr(torch.hub, "urlopen", refuse, raising=False)


def test_list_is_exactly_the_zoo():
    assert sorted(_hub_list_local(HUB)) == sorted(name.replace("-", "_") for name in list_models())


def test_entries_are_documented_from_the_registry():
    # (torch.hub.help, which prints these, is GitHub-only too)
    module = torch.hub._import_module(torch.hub.MODULE_HUBCONF, os.path.join(HUB, torch.hub.MODULE_HUBCONF))
    for name in list_models():
        entry = getattr(module, name.replace("-", "_"))
        assert entry.__name__ == name.replace("-", "_")
        assert entry.__doc__.startswith(get_entry(name).description)
    assert module.dependencies and all(isinstance(d, str) for d in module.dependencies)


def test_load_returns_the_shipped_codec():
    model = torch.hub.load(HUB, "hyperprior_vr", source="local")
    reference = licodec.load("hyperprior-vr")
    assert model is not reference  # a fresh instance: changing it does not touch licodec's cache
    assert not model.training
    assert model.codec_id == "hyperprior-vr"
    assert model.weights_sha256 == reference.weights_sha256
    rng = np.random.default_rng(3)
    x = torch.from_numpy(random_image(rng, 48, 64)).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        assert model.compress(x, 3.0).to_bytes() == licodec.compress(x, quality=3, model="hyperprior-vr")


def test_load_options(tmp_path):
    reference = licodec.load("hyperprior-vr")
    random_model = torch.hub.load(HUB, "hyperprior_vr", source="local", pretrained=False)
    assert not random_model.training and random_model.weights_sha256 == "0" * 16
    from_dir = torch.hub.load(HUB, "hyperprior_vr", source="local",
                              weights_dir=get_entry("hyperprior-vr").weights_dir)
    assert from_dir.weights_sha256 == reference.weights_sha256
    with pytest.raises(licodec.WeightsError):
        torch.hub.load(HUB, "hyperprior_vr", source="local", weights_dir=tmp_path)
    with pytest.raises(licodec.LicodecError):
        torch.hub.load(HUB, "hyperprior_vr", source="local", pretrained=False, weights_dir=tmp_path)
    with pytest.raises(RuntimeError, match="Cannot find callable"):
        torch.hub.load(HUB, "list_models", source="local")


def test_torch_home_is_a_temporary_folder():
    assert torch.hub.get_dir().startswith(os.environ["TORCH_HOME"])  # conftest: caches stay in a tmp dir


def test_hubconf_works_without_an_installed_licodec(tmp_path):
    """A fresh clone: licodec not pip-installed, hubconf imported from elsewhere."""
    import subprocess
    import sys

    script = f"""
import importlib.util, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path[:] = [p for p in sys.path if p.rstrip("/") != {HUB!r} and p not in ("", ".")]
try:
    import licodec
    raise SystemExit("licodec is still importable")
except ImportError:
    pass
spec = importlib.util.spec_from_file_location("hubconf", {os.path.join(HUB, "hubconf.py")!r})
hub = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hub)
assert sys.modules["licodec"].__file__.startswith({HUB!r})
print(sorted(f for f in dir(hub) if callable(getattr(hub, f)) and not f.startswith("_")))
"""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(sorted(name.replace("-", "_") for name in list_models()))
