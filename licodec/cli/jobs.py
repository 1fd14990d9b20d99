"""Encode and decode jobs of the CLI: one file, a pipe (``-``), or a batch into a folder.

A job codes one input into one output and returns the line that reports it. ``-`` stands
for stdin (input) or stdout (output). A batch runs jobs in this process or in ``-j N``
worker processes with a progress bar; a failing job is reported with its file name and the
others still run.
"""

from __future__ import annotations

import io
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from licodec.errors import LicodecError

STDIO = "-"


@dataclass(frozen=True)
class EncodeOptions:
    quality: float | None = None  # None: licodec.api.DEFAULT_QUALITY, or searched for a target
    target_bpp: float | None = None
    target_size: int | None = None  # bytes
    model: str | None = None
    effort: int | None = None
    force: bool = False


@dataclass(frozen=True)
class LossOptions:
    """``decode --lose``: decode as if part of the transmission had been lost (codebook codecs:
    index positions are marked lost after decoding and predicted from the rest, a simulation;
    see :mod:`licodec.codec.vq`)."""

    fraction: float  # share of the index positions (or rows) lost, 0..1
    seed: int = 0
    rows: bool = False  # whole index rows, as a lost chunk of a row-major stream


@dataclass(frozen=True)
class GenerationOptions:
    """``decode --realism``: decode with the generative decoder of the file's codec
    (:mod:`licodec.codec.flow`); the noise is seeded by the file's bytes."""

    realism: float  # 0 (the codec's own decode) .. 1 (the full sample)
    steps: int | None = None  # sampling steps (None: the decoder's default)


@dataclass(frozen=True)
class Job:
    """Code ``source`` into ``output`` (paths as strings; ``-`` for stdin / stdout)."""

    source: str
    output: str


def read_stdin() -> bytes:
    if sys.stdin is None or sys.stdin.isatty():
        raise LicodecError("`-` reads from stdin, which is a terminal; pipe a file in (e.g. `< photo.png`)")
    return sys.stdin.buffer.read()


def check_stdout() -> None:
    if sys.stdout is None or sys.stdout.isatty():
        raise LicodecError("refusing to write binary data to a terminal; redirect stdout or name a file with -o")


def write_stdout(data: bytes) -> None:
    check_stdout()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _check_free(output: str, force: bool) -> None:
    if output != STDIO and Path(output).exists() and not force:
        raise LicodecError(f"{output} exists; use --force to overwrite it")


def encode_job(job: Job, opt: EncodeOptions) -> str:
    """Encode one image; returns the report line (size, bpp, quality, times)."""
    from licodec import api
    from licodec.image_io import atomic_write, read_image, read_image_bytes
    from licodec.zoo import DEFAULT_MODEL

    _check_free(job.output, opt.force)
    if job.output == STDIO:
        check_stdout()
    model = opt.model or DEFAULT_MODEL
    effort = api.DEFAULT_EFFORT if opt.effort is None else opt.effort
    t0 = time.perf_counter()
    codec = api.load(model)
    if opt.quality is not None:
        codec.check_quality(opt.quality)
    t1 = time.perf_counter()
    src = read_image_bytes(read_stdin()) if job.source == STDIO else read_image(job.source)
    h, w = src.rgb.shape[:2]
    t2 = time.perf_counter()
    target = api.target_bytes(h * w, opt.target_bpp, opt.target_size)
    if target is None:
        quality = api.DEFAULT_QUALITY if opt.quality is None else opt.quality
        data = api.compress_bitstream(src, quality, model, effort=effort).to_bytes()
        how = f"quality {quality:g}"
    else:
        bitstream, result = api.compress_to_size(src, target, model, effort=effort)
        data = bitstream.to_bytes()
        how = result.describe(h * w)
    t3 = time.perf_counter()
    if job.output == STDIO:
        write_stdout(data)
    else:
        atomic_write(job.output, data, force=opt.force)
    return (f"{job.source} ({w}x{h}) -> {job.output}: {len(data):,} bytes, {8 * len(data) / (w * h):.4f} bpp, "
            f"{how}, effort {effort}, {model}; load {t1 - t0:.2f} s, read {t2 - t1:.2f} s, encode {t3 - t2:.2f} s")


def decode_job(job: Job, force: bool = False, loss: LossOptions | None = None,
               generation: GenerationOptions | None = None) -> str:
    """Decode one ``.lic`` file (to PNG on stdout, else the output's suffix), with ``loss``
    simulated if given, generatively with ``generation`` if given; returns the report line."""
    from licodec import api
    from licodec.entropy.container import Bitstream
    from licodec.image_io import save_image

    _check_free(job.output, force)
    if job.output == STDIO:
        check_stdout()
    data = read_stdin() if job.source == STDIO else read_lic(job.source)
    if not data:
        raise LicodecError(f"{job.source} is empty")
    t0 = time.perf_counter()
    bitstream = Bitstream.from_bytes(data)
    api.codec_for(bitstream)  # load (and verify) the weights before timing the decode
    if generation is not None and generation.realism > 0:
        api.generator_for(bitstream)
    t1 = time.perf_counter()
    extra = {} if generation is None else {"realism": generation.realism, "steps": generation.steps}
    if loss is None:
        image = api.decompress(bitstream, **extra)
    else:
        image = api.decompress(bitstream, lost=loss.fraction, lost_seed=loss.seed, lost_rows=loss.rows, **extra)
    t2 = time.perf_counter()
    if job.output == STDIO:
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        write_stdout(buf.getvalue())
    else:
        save_image(image, job.output, force=force)
    w, h = image.size
    lost = "" if loss is None else (f", {loss.fraction:.0%} of the {'index rows' if loss.rows else 'indices'} "
                                    f"lost (seed {loss.seed}) and restored")
    if generation is not None:
        lost += f", realism {generation.realism:g}" + (f" ({generation.steps} steps)" if generation.steps else "")
    return (f"{job.source} -> {job.output} ({w}x{h}, {image.mode}): {8 * len(data) / (w * h):.4f} bpp{lost}; "
            f"load {t1 - t0:.2f} s, decode {t2 - t1:.2f} s")


def read_lic(path: str) -> bytes:
    p = Path(path)
    if not p.exists():
        raise LicodecError(f"no such file: {p}")
    if p.is_dir():
        raise LicodecError(f"{p} is a folder, not a .lic file")
    data = p.read_bytes()
    if not data:
        raise LicodecError(f"{p} is empty")
    return data


def plan_batch(inputs: list[str], out_dir: str, suffixes: set[str], new_suffix: str) -> list[Job]:
    """Jobs for several inputs or folders, into ``out_dir``: a file keeps its name (new suffix),
    a folder's files (searched recursively, by suffix) keep their path below the folder."""
    if STDIO in inputs:
        raise LicodecError("`-` (stdin) codes one image; it cannot be part of a batch")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise LicodecError(f"-o {out} must be a folder when coding several inputs")
    jobs, seen = [], {}
    for name in inputs:
        src = Path(name)
        if src.is_dir():
            found = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise LicodecError(f"no {'/'.join(sorted(suffixes))} files in {src}")
            pairs = [(p, out / p.relative_to(src).with_suffix(new_suffix)) for p in found]
        else:
            pairs = [(src, out / Path(src.name).with_suffix(new_suffix))]
        for p, o in pairs:
            if o in seen:
                raise LicodecError(f"{p} and {seen[o]} would both be written to {o}")
            seen[o] = p
            jobs.append(Job(str(p), str(o)))
    return jobs


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _call(fn, job: Job, *args) -> tuple[Job, str | None, str | None]:
    """Run one job; ``(job, report, error)``. A failure of any kind is this file's failure."""
    try:
        Path(job.output).parent.mkdir(parents=True, exist_ok=True)
        return job, fn(job, *args), None
    except LicodecError as e:
        return job, None, str(e)
    except MemoryError:
        return job, None, "out of memory"
    except Exception as e:  # a bug must not stop the other files; say what it was
        return job, None, f"{type(e).__name__}: {e}"


def run_batch(fn, jobs: list[Job], *args, processes: int = 1, verbose: bool = False) -> int:
    """Run ``fn(job, *args)`` for every job with a progress bar; returns the number that failed.
    Failures are printed as ``licodec: error: SOURCE: message`` as they happen."""
    from tqdm import tqdm

    failed = 0
    bar = tqdm(total=len(jobs), unit="file", desc="licodec", disable=None, dynamic_ncols=True)

    def report(job: Job, line: str | None, error: str | None) -> None:
        nonlocal failed
        if error is not None:
            failed += 1
            msg = error if job.source in error else f"{job.source}: {error}"
            bar.write(f"licodec: error: {msg}", file=sys.stderr)
        elif verbose:
            bar.write(line, file=sys.stdout)
        bar.update(1)

    if processes <= 1 or len(jobs) == 1:
        for job in jobs:
            report(*_call(fn, job, *args))
    else:
        import multiprocessing

        workers = min(processes, len(jobs))
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=(threads,)) as pool:
            futures = {pool.submit(_call, fn, job, *args): job for job in jobs}
            for future in as_completed(futures):
                try:
                    report(*future.result())
                except Exception as e:  # the worker process died (e.g. killed by the system)
                    report(futures[future], None, f"worker process failed: {type(e).__name__}: {e}")
    bar.close()
    return failed
