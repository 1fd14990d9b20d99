"""Fuzz the decoder: mutated and truncated bitstreams of every zoo model through ``licodec.decompress``.

    python benchmarks/fuzz.py [--cases 10000] [--seed 0] [--models NAME ...] [--fast]

Seeds: a few small valid bitstreams per model (``SEEDS``: RGB random and photo crops, gray,
RGBA, and 4- and 2-tile images coded by the model with its tile size set to 64; those are decoded
through the same public ``licodec.decompress`` with the tile-64 codec put in :mod:`licodec.api`'s
model cache, as weights whose ``config.json`` says ``tile: 64`` would give it). Each case mutates
a seed (``KINDS``): bit flips, byte sets, insertions, deletions and duplicated chunks in one
sub-stream; a sub-stream spliced from another seed; hostile payloads (runs of 0xF nibbles,
zeros, noise), also for a legal 1024-2048 pixel tile; header field edits; sub-stream names
dropped, added, renamed, reordered; raw byte edits in the header and sub-stream table;
truncation. All but the ``_nocrc`` kinds re-forge the CRC-32 trailer, as a deliberate attacker
would, so that the parser, the geometry checks, rANS and the shape logic are what get tested.
Mutations that leave the bytes unchanged are skipped (counted, not run).

Decodes run in a worker process (one thread, faulthandler on) that is restarted when it dies;
the parent waits at most ``max(20 x the seed's clean decode time, --hang-floor)`` per case.
Outcomes: ``crc`` (BitstreamError: CRC-32 mismatch), ``rejected`` (any other LicodecError:
BitstreamError, WeightsError), ``decoded`` (garbage that decodes is fine), ``crashes`` (any other
exception, or the worker died, e.g. a segfault), ``hangs`` (no answer in time; the worker is
killed), ``slow`` (answered, but after more than 20x the clean decode time). The input and error
of every crash and hang are kept in ``benchmarks/results/fuzz_failures/``. Writes
``benchmarks/results/fuzz.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import pickle
import random
import re
import select
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
SAMPLE = REPO / "licodec" / "samples" / "kodim23.png"
HANG_FACTOR = 20
SMALL_TILE = 64

# (label, kind of image, height, width, quality, variant); variant "tile64": coded by the model
# with config.tile = 64 (72x100 is 2 x 2 tiles, 40x80 is 1 x 2)
SEEDS = [
    ("rgb-random-64x96", "random", 64, 96, 4.0, "default"),
    ("rgb-photo-40x40", "photo", 40, 40, 8.0, "default"),
    ("gray-photo-48x64", "gray", 48, 64, 1.0, "default"),
    ("rgba-photo-40x56", "rgba", 40, 56, 3.0, "default"),
    ("rgb-photo-72x100-4tiles", "photo", 72, 100, 5.0, "tile64"),
    ("rgba-photo-40x80-2tiles", "rgba", 40, 80, 2.0, "tile64"),
]
FAST_SEEDS = ("rgb-photo-40x40", "gray-photo-48x64", "rgba-photo-40x80-2tiles")  # the quick test tier

# mutation kind -> weight; "_nocrc" kinds keep the stale CRC (the CRC check is what they test)
KINDS = {
    "flip": 12, "set": 10, "insert": 7, "delete": 7, "dup": 6, "splice": 6, "hostile": 6, "hostile_big": 3,
    "header": 14, "names": 6, "raw": 10, "truncate": 6, "truncate_nocrc": 5, "flip_nocrc": 5,
}
OUTCOMES = ("crc", "rejected", "decoded", "crashes", "hangs", "slow")


# -- worker (a separate process: a crash or hang cannot take the run down) -------------------
def _send(stream, obj) -> None:
    blob = pickle.dumps(obj)
    stream.write(struct.pack(">I", len(blob)) + blob)
    stream.flush()


def _recv(stream):
    head = stream.read(4)
    if len(head) < 4:
        return None
    (n,) = struct.unpack(">I", head)
    return pickle.loads(stream.read(n))


def _image(kind: str, h: int, w: int, rng):
    import numpy as np
    from PIL import Image

    if kind == "random":  # smooth random colours plus noise: photo-like statistics
        base = Image.fromarray(rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8), "RGB")
        arr = np.asarray(base.resize((w, h), Image.BILINEAR), dtype=np.float32) + rng.normal(0, 6, (h, w, 3))
        return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "RGB")
    with Image.open(SAMPLE) as im:
        top, left = int(rng.integers(0, im.height - h)), int(rng.integers(0, im.width - w))
        crop = im.convert("RGB").crop((left, top, left + w, top + h))
    if kind == "gray":
        return crop.convert("L")
    if kind == "rgba":
        alpha = np.tile(np.linspace(0, 255, w, dtype=np.float32), (h, 1)).astype(np.uint8)
        crop.putalpha(Image.fromarray(alpha, "L"))
    return crop


class _Codecs:
    """The zoo models as ``licodec.decompress`` loads them, plus each one's tile-64 copy."""

    def __init__(self) -> None:
        from licodec import api

        self.api = api
        self.default, self.small = {}, {}

    def use(self, model: str, variant: str) -> None:
        import copy

        key = (model, None)
        if model not in self.default:
            self.default[model] = self.api.load(model)
            small = copy.copy(self.default[model])  # shares the weights; only the config differs
            small.config = dataclasses.replace(small.config, tile=SMALL_TILE)
            self.small[model] = small
        self.api._cache[key] = (self.small if variant == "tile64" else self.default)[model]


def worker() -> None:
    """Serve requests on stdin/stdout: ``("seeds", models)`` and ``("decode", model, variant, data)``."""
    import faulthandler

    faulthandler.enable()  # a segfault prints the Python stack to stderr (the parent's log)
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints must not corrupt the protocol
    proto_in = sys.stdin.buffer
    import numpy as np
    import torch

    torch.set_num_threads(1)
    import licodec
    from licodec.errors import BitstreamError, LicodecError

    codecs = _Codecs()
    while True:
        msg = _recv(proto_in)
        if msg is None:
            return
        if msg[0] == "seeds":
            seeds = []
            for model in msg[1]:
                rng = np.random.default_rng(sum(map(ord, model)))
                for label, kind, h, w, q, variant in SEEDS:
                    if label not in msg[2]:
                        continue
                    codecs.use(model, variant)
                    data = licodec.compress(_image(kind, h, w, rng), q, model=model)
                    licodec.decompress(data)  # warm up
                    times = []
                    for _ in range(3):
                        t0 = time.perf_counter()
                        licodec.decompress(data)
                        times.append(time.perf_counter() - t0)
                    seeds.append({"model": model, "label": label, "variant": variant, "data": data,
                                  "clean_s": sorted(times)[1], "z_channels": getattr(codecs.default[model].config, "N", 1)})
            _send(proto_out, seeds)
            continue
        _, model, variant, data = msg
        codecs.use(model, variant)
        t0 = time.perf_counter()
        try:
            licodec.decompress(data)
            result = ("decoded", "", "")
        except BitstreamError as e:
            result = ("crc" if "CRC-32" in str(e) else "rejected", type(e).__name__, str(e))
        except LicodecError as e:
            result = ("rejected", type(e).__name__, str(e))
        except BaseException as e:  # noqa: BLE001 -- anything else is the finding
            import traceback

            result = ("crashes", type(e).__name__, "".join(traceback.format_exception(e))[-4000:])
        _send(proto_out, (*result, time.perf_counter() - t0))


class WorkerDied(Exception):
    pass


class WorkerTimeout(Exception):
    pass


class Worker:
    """The worker process; :meth:`call` waits at most ``timeout`` seconds for the answer."""

    def __init__(self, log: Path) -> None:
        self.log, self.proc, self.starts = log, None, 0

    def start(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
                                         cwd=str(REPO))
        self.starts += 1

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc.stdin.close()
            self.proc.stdout.close()
            self.proc = None

    def _read(self, n: int, deadline: float) -> bytes:
        fd, out = self.proc.stdout.fileno(), bytearray()
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise WorkerTimeout()
            chunk = os.read(fd, n - len(out))
            if not chunk:
                raise WorkerDied(self.proc.wait())
            out += chunk
        return bytes(out)

    def call(self, msg, timeout: float):
        if self.proc is None:
            self.start()
        try:
            _send(self.proc.stdin, msg)
            deadline = time.monotonic() + timeout
            (n,) = struct.unpack(">I", self._read(4, deadline))
            return pickle.loads(self._read(n, deadline))
        except (BrokenPipeError, WorkerDied):
            code = self.proc.wait()
            self.stop()
            raise WorkerDied(code) from None
        except WorkerTimeout:
            self.stop()
            raise

    def log_tail(self, n: int = 3000) -> str:
        """The worker's last fatal-error report (faulthandler's stack), or the end of its log."""
        try:
            text = self.log.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""
        start = text.rfind("Fatal Python error")
        if start >= 0:
            text = text[start:].split("\nExtension modules:")[0]
        return text[-n:]


# -- mutations ---------------------------------------------------------------------------------
def forge(body: bytes) -> bytes:
    """``body`` with a valid CRC-32 trailer."""
    return body + struct.pack(">I", zlib.crc32(body))


def _bytes(rng: random.Random, n: int) -> bytes:
    fill = rng.choice(("random", "zero", "ff"))
    return bytes(rng.randrange(256) for _ in range(n)) if fill == "random" else bytes([0 if fill == "zero" else 255]) * n


def _stream_name(rng: random.Random, b) -> str:
    names = list(b.streams)
    return rng.choice([n for n in names if n.endswith("y")] * 3 + names)


def _with_stream(b, name: str, data: bytes) -> bytes:
    streams = dict(b.streams)
    streams[name] = bytes(data)
    return dataclasses.replace(b, streams=streams).to_bytes()


def _header_edit(rng: random.Random, b, models: list[str]) -> bytes:
    field = rng.choice(["height", "width", "height", "width", "tile", "quality", "channels", "bit_depth",
                        "codec_id", "weights_sha256"])
    old = getattr(b, field)
    if field in ("height", "width"):
        value = rng.choice([old + 1, old - 1, old + 16, old - 16, old + 64, old - 64, old * 2, old // 2, 0, 1,
                            2048, 2049, 4096, 65535, 65536, 65537, rng.randrange(1, 5000)])
        value = max(value, 0)
    elif field == "tile":
        value = rng.choice([0, 1, 16, 63, 64, 65, 128, 1024, 2048, 2049, 4096, 65536, 65537, rng.randrange(1, 5000)])
    elif field == "quality":
        value = rng.choice([0.0, 0.999, 1.0, 8.0, 8.001, -1.0, 9.0, math.nan, math.inf, -math.inf, 1e30,
                            rng.uniform(-2, 10), rng.uniform(1, 8)])
    elif field == "channels":
        value = rng.choice([0, 1, 2, 3, 4, 5, 255])
    elif field == "bit_depth":
        value = rng.choice([0, 1, 8, 16, 255])
    elif field == "codec_id":
        value = rng.choice([m for m in models] + ["", "nonexistent", "hyperprior", "x" * 128, "é"])
    else:
        value = "%016x" % rng.getrandbits(64)
    return dataclasses.replace(b, **{field: value}).to_bytes()


def _names_edit(rng: random.Random, b) -> bytes:
    streams, names = dict(b.streams), list(b.streams)
    op = rng.choice(["rename", "drop", "add", "reorder", "alpha"])
    if op == "rename":
        old = rng.choice(names)
        new = rng.choice(["z", "y", "alpha", "t0.z", "t0.y", "t1.y", "t6.z", "x", "Y", "z.", old + "0"])
        if new in streams and new != old:
            streams[new], streams[old] = streams[old], streams[new]  # swap
        else:
            streams = {new if k == old else k: v for k, v in streams.items()}
    elif op == "drop":
        del streams[rng.choice(names)]
    elif op == "add":
        streams[rng.choice(["extra", "z2", "t0.z", "t9.y", "alpha", "y"])] = _bytes(rng, rng.choice([0, 1, 8, 64]))
    elif op == "reorder":
        rng.shuffle(names)
        streams = {k: streams[k] for k in names}
    else:  # add or drop an alpha sub-stream
        if "alpha" in streams:
            del streams["alpha"]
        else:
            streams["alpha"] = zlib.compress(bytes(b.height * b.width)) if rng.random() < 0.5 else _bytes(rng, 16)
    return dataclasses.replace(b, streams=streams).to_bytes()


def mutate(kind: str, seed: dict, rng: random.Random, others: list[dict], models: list[str]) -> bytes:
    from licodec.entropy.container import Bitstream

    data = seed["data"]
    b = Bitstream.from_bytes(data)
    body = data[:-4]
    payload_start = len(body) - b.payload_bytes
    if kind in ("flip", "set", "insert", "delete", "dup"):
        name = _stream_name(rng, b)
        s = bytearray(b.streams[name])
        if kind == "flip":
            for _ in range(rng.choice([1, 1, 2, 3, 4])):
                if s:
                    s[rng.randrange(len(s))] ^= 1 << rng.randrange(8)
        elif kind == "set":
            for _ in range(rng.choice([1, 1, 2, 4])):
                if s:
                    s[rng.randrange(len(s))] = rng.choice([0, 255, rng.randrange(256)])
        elif kind == "insert":
            at = rng.randrange(len(s) + 1)
            s[at:at] = _bytes(rng, rng.choice([1, 2, 3, 4, 4, 8, 16, 64]))
        elif kind == "delete":
            at = rng.randrange(max(len(s), 1))
            del s[at : at + rng.choice([1, 2, 3, 4, 4, 8, 16, 64])]
        else:
            i = rng.randrange(max(len(s), 1))
            j = min(len(s), i + rng.choice([1, 4, 8, 16, 64, 256]))
            at = rng.randrange(len(s) + 1)
            s[at:at] = s[i:j]
        return _with_stream(b, name, s)
    if kind == "splice":  # a sub-stream from another seed of this model, or another sub-stream of this one
        name = _stream_name(rng, b)
        donors = [o for o in others if o is not seed]
        if donors and rng.random() < 0.7:
            donor = Bitstream.from_bytes(rng.choice(donors)["data"])
            source = donor.streams.get(name) or rng.choice(list(donor.streams.values()))
        else:
            source = rng.choice(list(b.streams.values()))
        return _with_stream(b, name, source)
    if kind == "hostile":  # payloads shaped to stress rANS: long 0xF runs, zeros, noise, 4-byte words
        name = _stream_name(rng, b)
        n = rng.choice([8, 12, 64, len(b.streams[name]), 4 * len(b.streams[name]), rng.randrange(8, 4096)])
        n -= n % 4 if rng.random() < 0.8 else 0
        pattern = rng.choice(["ff", "zero", "random", "f0", "0f", "ff-tail"])
        if pattern == "ff-tail":
            s = bytes(b.streams[name][: n // 2]) + b"\xff" * (n - n // 2)
        elif pattern == "random":
            s = bytes(rng.randrange(256) for _ in range(n))
        else:
            s = {"ff": b"\xff", "zero": b"\x00", "f0": b"\xf0", "0f": b"\x0f"}[pattern] * n
        return _with_stream(b, name, s)
    if kind == "hostile_big":  # a legal one-tile image up to 2048x2048 whose z is a long run of 0xF
        # nibbles (before rans.py padded for them, this read megabytes past the buffer: a segfault)
        h, w = rng.randrange(1024, 2049), rng.randrange(1024, 2049)
        total = seed["z_channels"] * -(-h // 64) * -(-w // 64)
        n = 4 * (total if rng.random() < 0.7 else rng.randrange(total // 4, total + 1))
        z = b"\xff" * n if rng.random() < 0.7 else bytes(n // 2) + b"\xff" * (n - n // 2)
        streams = {"z": z, "y": next((v for k, v in b.streams.items() if k.endswith("y")), b"")}
        if "alpha" in b.streams:
            streams["alpha"] = b.streams["alpha"]
        return dataclasses.replace(b, height=h, width=w, tile=0, streams=streams).to_bytes()
    if kind == "header":
        return _header_edit(rng, b, models)
    if kind == "names":
        return _names_edit(rng, b)
    if kind == "raw":  # byte-level edits anywhere before the payload (the parser's fields), CRC re-forged
        s = bytearray(body)
        at = rng.randrange(5, max(payload_start, 6))
        op = rng.choice(["flip", "set", "insert", "delete"])
        if op == "flip":
            s[at] ^= 1 << rng.randrange(8)
        elif op == "set":
            s[at] = rng.choice([0, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        elif op == "insert":
            s[at:at] = _bytes(rng, rng.choice([1, 2, 4]))
        else:
            del s[at : at + rng.choice([1, 2, 4])]
        return forge(bytes(s))
    if kind == "truncate":
        return forge(body[: rng.randrange(0, len(body))])
    if kind == "truncate_nocrc":
        return data[: rng.randrange(0, len(data))]
    if kind == "flip_nocrc":
        s = bytearray(data)
        s[rng.randrange(len(s))] ^= 1 << rng.randrange(8)
        return bytes(s)
    raise ValueError(f"unknown mutation kind {kind!r}")


# -- the run -----------------------------------------------------------------------------------
def _reason(message: str) -> str:
    """A rejection message with numbers and quoted names blanked, for counting reasons."""
    return re.sub(r"\d+(\.\d+)?", "N", re.sub(r"'[^']*'", "'…'", message.splitlines()[0] if message else ""))[:120]


def run_fuzz(cases: int = 10000, seed: int = 0, models: list[str] | None = None, failures_dir: Path | None = None,
             hang_floor: float = 10.0, seed_labels=None, log=print) -> dict:
    """Run ``cases`` mutated bitstreams (round-robin over ``models``, default every zoo model with shipped
    weights; seeds ``seed_labels``, default all of ``SEEDS``) and return the report (see the module docstring)."""
    from licodec.zoo import get_entry, list_models

    models = list(models or [m for m in list_models()  # decoded as shipped; generative decoders read their
                             if get_entry(m).has_weights and get_entry(m).family == "image"])  # base's files
    seed_labels = list(seed_labels or [s[0] for s in SEEDS])
    failures_dir = Path(failures_dir or RESULTS / "fuzz_failures")
    failures_dir.mkdir(parents=True, exist_ok=True)
    for old in failures_dir.glob("*"):
        if old.suffix in (".lic", ".json"):
            old.unlink()
    rng = random.Random(seed)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="licodec-fuzz-") as tmp:
        work = Worker(Path(tmp) / "worker.log")
        try:
            t0 = time.perf_counter()
            seeds = work.call(("seeds", models, seed_labels), timeout=600)
            seed_s = time.perf_counter() - t0
            by_model = {m: [s for s in seeds if s["model"] == m] for m in models}
            log(f"{len(seeds)} seeds in {seed_s:.1f} s; clean decode "
                + ", ".join(f"{m} {1000 * max(s['clean_s'] for s in by_model[m]):.0f} ms" for m in models) + " (max)")
            zero = dict.fromkeys(("total", "unchanged_skipped", *OUTCOMES), 0)
            per_model = {m: dict(zero) for m in models}
            per_kind = {k: dict(zero) for k in KINDS}
            reasons: Counter = Counter()
            findings, max_decode = [], {"s": 0.0}
            kinds, weights = list(KINDS), list(KINDS.values())
            for i in range(cases):
                model = models[i % len(models)]
                kind = rng.choices(kinds, weights)[0]
                for _ in range(1000):
                    src = rng.choice(by_model[model])
                    data = mutate(kind, src, rng, by_model[model], models)
                    if data != src["data"]:
                        break
                    per_model[model]["unchanged_skipped"] += 1
                    per_kind[kind]["unchanged_skipped"] += 1
                limit = max(HANG_FACTOR * src["clean_s"], hang_floor)
                case = {"case": i, "model": model, "kind": kind, "seed": src["label"], "variant": src["variant"],
                        "bytes": len(data)}
                try:
                    outcome, etype, message, seconds = work.call(("decode", model, src["variant"], data), limit)
                except WorkerDied as e:
                    outcome, etype, seconds = "crashes", "worker died", None
                    message = f"worker exit code {e.args[0]}\n{work.log_tail()}"
                except WorkerTimeout:
                    outcome, etype, message, seconds = "hangs", "timeout", f"no answer in {limit:.1f} s", None
                if outcome in ("decoded", "rejected", "crc") and seconds > HANG_FACTOR * src["clean_s"]:
                    findings.append({**case, "outcome": "slow", "seconds": round(seconds, 3),
                                     "clean_s": round(src["clean_s"], 4), "message": message})
                    per_model[model]["slow"] += 1
                    per_kind[kind]["slow"] += 1
                if seconds is not None and seconds > max_decode["s"]:
                    max_decode = {"s": seconds, **case, "outcome": outcome, "ratio_to_clean": seconds / src["clean_s"]}
                for counts in (per_model[model], per_kind[kind]):
                    counts["total"] += 1
                    counts[outcome] += 1
                if outcome == "rejected":
                    reasons[f"{etype}: {_reason(message)}"] += 1
                if outcome in ("crashes", "hangs"):
                    stem = f"{model}-{kind}-{i}"
                    (failures_dir / f"{stem}.lic").write_bytes(data)
                    record = {**case, "outcome": outcome, "error": etype, "message": message}
                    (failures_dir / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
                    findings.append(record)
                    log(f"case {i}: {outcome} ({model}, {kind}): {etype}: {message.splitlines()[-1] if message else ''}")
                if (i + 1) % 1000 == 0:
                    log(f"{i + 1}/{cases} cases, {time.perf_counter() - t_start:.0f} s, "
                        f"crashes {sum(c['crashes'] for c in per_model.values())}, "
                        f"hangs {sum(c['hangs'] for c in per_model.values())}")
        finally:
            work.stop()
        starts = work.starts
    totals = {k: sum(c[k] for c in per_model.values()) for k in zero}
    return {
        "cases": cases,
        "seed": seed,
        "models": per_model,
        "kinds": per_kind,
        "totals": totals,
        "reached_past_crc": round(1 - totals["crc"] / max(totals["total"], 1), 4),
        "time_s": round(time.perf_counter() - t_start, 1),
        "seed_build_s": round(seed_s, 1),
        "max_decode": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in max_decode.items()},
        "seeds": [{"model": s["model"], "label": s["label"], "bytes": len(s["data"]),
                   "clean_decode_s": round(s["clean_s"], 4)} for s in seeds],
        "hang_rule": f"no answer within max({HANG_FACTOR} x the seed's clean decode, {hang_floor:g} s); "
                     f"slow: answered after more than {HANG_FACTOR} x the clean decode",
        "worker_starts": starts,
        "rejection_reasons": dict(reasons.most_common(25)),
        "findings": findings[:200],
        "kind_weights": KINDS,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", nargs="*", help="zoo models (default: all with shipped weights)")
    p.add_argument("--hang-floor", type=float, default=10.0, help="seconds a decode may always take")
    p.add_argument("--fast", action="store_true", help=f"only the seeds {', '.join(FAST_SEEDS)}")
    p.add_argument("--out", default=str(RESULTS / "fuzz.json"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker()
    from common import machine, write_json

    report = run_fuzz(args.cases, args.seed, args.models, hang_floor=args.hang_floor,
                      seed_labels=FAST_SEEDS if args.fast else None)
    report["command"] = "python benchmarks/fuzz.py " + " ".join(
        f"--{k.replace('_', '-')}" + ("" if v is True else f" {' '.join(v) if isinstance(v, list) else v}")
        for k, v in vars(args).items() if v is not None and v is not False and k not in ("out", "worker"))
    report["machine"] = machine()
    write_json(Path(args.out), report)
    print(f"{'':15} " + " ".join(f"{k:>9}" for k in ("total", "unchanged", *OUTCOMES)))
    for label, rows in (("model", report["models"]), ("kind", report["kinds"])):
        for name, c in rows.items():
            print(f"{name:15} " + " ".join(f"{c[k]:>9}" for k in ("total", "unchanged_skipped", *OUTCOMES)))
        print()
    t = report["totals"]
    print(f"{t['total']} cases in {report['time_s']} s: {t['crashes']} crashes, {t['hangs']} hangs, {t['slow']} slow; "
          f"{100 * report['reached_past_crc']:.1f}% past the CRC check; max decode {report['max_decode'].get('s')} s")


if __name__ == "__main__":
    main()
