"""``psenet-stream batch``: a library of files, each through the single-file path, on a local
process pool or one Ray task per file (psenet_stream/scale/ray_batch.py).

    plan(inputs, outdir)  -> [Job]       folders (recursively), globs, list files, files
    run_job(job, settings) -> dict       one file: open source + sink, pipeline.run_to_sinks
    run_local(jobs, ...)  -> Summary     a process pool (spawn), one job per file

Outputs and what "finished" means
    A job's output is finished when it exists under its final name in OUTDIR. Nothing else
    ever has that name: each attempt writes below OUTDIR/.psenet-batch/<run>/<attempt>/
    (itself through the sink's own temporary name), and the finished file is *linked* to
    its final name (``os.link`` fails if the name exists, so two attempts of one file, say
    a task retried while the first attempt still ran, never both land: the second is
    discarded). A re-run skips every job whose final name exists. The driver removes its
    run's staging folder at the end, so a killed attempt leaves nothing behind once the
    batch ends.

Inputs and outputs keep their relative layout: ``batch lib/ -o out/`` writes
``out/a/b.mp4`` for ``lib/a/b.mp4``; loose files, globs and list entries land in ``out/``
under their own names. Two inputs that would share an output name are refused up front.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from psenet_stream.errors import PsenetError, UsageError
from psenet_stream.io.specs import extension, is_image_path, is_video_path

log = logging.getLogger("psenet_stream")

STAGING = ".psenet-batch"  # below OUTDIR: attempts in progress (never a final name)


@dataclass(frozen=True)
class Job:
    """One input file and its final output path."""

    input: str
    output: str
    kind: str  # "video" or "image"


@dataclass
class Result:
    """What one job did: status done / skipped / failed, and where and how fast."""

    input: str
    output: str
    status: str
    reason: str = ""
    frames: int = 0
    seconds: float = 0.0
    node: str = ""
    exit_code: int = 0  # a failure's: that of its PsenetError (3 input, 4 output, 5 backend), 1 otherwise

    @classmethod
    def from_dict(cls, d: dict) -> Result:
        return cls(**{k: d[k] for k in ("input", "output", "status", "reason", "frames", "seconds", "node", "exit_code") if k in d})


# --- planning ---------------------------------------------------------------------------------


def _is_media(p: Path) -> bool:
    return is_video_path(p) or is_image_path(p)


def _walk(folder: Path, skip: Path | None) -> Iterable[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (skip is None or (Path(root) / d).resolve() != skip))
        for f in sorted(files):
            if not f.startswith(".") and _is_media(Path(f)):
                yield Path(root) / f


def _output_name(rel: Path) -> Path:
    """The output's path relative to OUTDIR: the input's, with a container a default output
    does not keep (.mts, .wmv, .gif, ...) written as .mp4."""
    x = extension(rel)
    if x is not None and x.kind == "video" and not x.keep_for_output:
        return rel.with_suffix(".mp4")
    return rel


def expand(inputs: Iterable[str], outdir: Path) -> list[tuple[Path, Path]]:
    """(input file, output path relative to OUTDIR) for every input: a folder (its media
    files, recursively, layout kept), a glob, a list file (.txt/.list/.lst: one path per
    line, # comments; relative paths are relative to the list file), or a media file."""
    out: list[tuple[Path, Path]] = []
    skip = outdir.resolve()
    for spec in inputs:
        p = Path(spec)
        if p.is_dir():
            if p.resolve() == skip:
                raise UsageError(f"the input folder {p} is the output folder", "choose another folder with -o; inputs are never overwritten")
            files = list(_walk(p, skip))
            if not files:
                log.warning("warning: no video or image files in %s", p)
            out += [(f, _output_name(f.relative_to(p))) for f in files]
        elif p.is_file() and p.suffix.lower() in (".txt", ".list", ".lst"):
            for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                f = Path(line) if Path(line).is_absolute() else p.parent / line
                if not f.is_file():
                    raise UsageError(f"{p}:{n}: no such file: {line}", "fix the list (one existing file per line)")
                out.append((f, _output_name(Path(f.name))))
        elif p.is_file():
            if not _is_media(p):
                raise UsageError(f"{p} is not a video or image file", "pass videos, images, folders, globs or list files (.txt, one path per line)")
            out.append((p, _output_name(Path(p.name))))
        elif glob.has_magic(spec):
            matches = sorted(Path(m) for m in glob.glob(spec, recursive=True))
            files = [m for m in matches if m.is_file() and _is_media(m)]
            if not files:
                log.warning("warning: %s matches no video or image file", spec)
            out += [(f, _output_name(Path(f.name))) for f in files]
        else:
            raise UsageError(f"input not found: {spec}", "check the path (quote globs so the shell does not expand them)")
    return out


def plan(inputs: Iterable[str], outdir: str | Path) -> list[Job]:
    """The jobs for ``inputs`` into ``outdir``; refuses an output that is an input, or two
    inputs with one output name."""
    outdir = Path(outdir)
    pairs = expand(inputs, outdir)
    seen: dict[Path, Path] = {}
    jobs = []
    for src, rel in pairs:
        dest = outdir / rel
        key = Path(os.path.normpath(dest.absolute()))
        if key in seen:
            if seen[key].resolve() == src.resolve():
                continue  # the same file named twice
            raise UsageError(
                f"{seen[key]} and {src} would both be written to {dest}",
                "pass folders (their layout is kept under OUTDIR) or rename one of them",
            )
        if src.resolve() == dest.resolve():
            raise UsageError(f"the output of {src} is the input itself", "choose another folder with -o; inputs are never overwritten")
        seen[key] = src
        jobs.append(Job(str(src.absolute()), str(dest.absolute()), "video" if is_video_path(src) else "image"))
    return jobs


# --- one job ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What each job needs besides its paths (plain data: it travels to other processes)."""

    enhancer: dict = field(default_factory=dict)  # EnhancerOptions fields
    encode: dict = field(default_factory=dict)  # codec, crf, preset
    run_id: str = ""
    outdir: str = ""
    overwrite: bool = False  # -y: redo finished outputs (each replaced atomically) instead of skipping them


_ENHANCERS: dict[tuple, Any] = {}  # one Enhancer per worker process and options (reset per file)


def _enhancer(opts: dict, video: bool):
    from psenet_stream.commands._common import EnhancerOptions, make_enhancer

    key = (tuple(sorted(opts.items())), video)
    enh = _ENHANCERS.get(key)
    if enh is None:
        enh = _ENHANCERS[key] = make_enhancer(EnhancerOptions(**opts), video=video)
    enh.reset()
    return enh


def node_name() -> str:
    return socket.gethostname()


def commit(staged: Path, final: Path, *, replace: bool = False) -> bool:
    """Give ``staged`` its final name unless that name exists; True if it did. Atomic: a
    hard link claims the name (FileExistsError when another attempt got there first); where
    the filesystem has no hard links, a checked rename. ``replace`` (-y): an atomic rename
    over whatever is there."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if replace:
        os.replace(staged, final)
        return True
    try:
        os.link(staged, final)
    except FileExistsError:
        return False
    except OSError:
        if final.exists():
            return False
        os.replace(staged, final)
        return True
    staged.unlink(missing_ok=True)
    return True


def run_job(job: Job | dict, settings: Settings | dict, stop: threading.Event | None = None) -> dict:
    """Enhance one file into its final name (see the module docstring); never raises for a
    problem with the file: returns the Result as a dict with status done / skipped / failed."""
    if isinstance(job, dict):
        job = Job(**job)
    if isinstance(settings, dict):
        settings = Settings(**settings)
    final = Path(job.output)
    res = Result(job.input, job.output, "done", node=node_name())
    if final.exists() and not settings.overwrite:
        res.status, res.reason = "skipped", "already done"
        return asdict(res)
    # an attempt's folder is named by the process writing it (and a random part): a test can tell whose it is
    attempt = Path(settings.outdir or final.parent) / STAGING / (settings.run_id or "run") / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    try:
        attempt.mkdir(parents=True, exist_ok=True)
        staged = attempt / final.name
        stats = _enhance_into(job, staged, settings, stop)
        res.frames = stats.frames_out
        if stats.interrupted:
            res.status, res.reason = "failed", "interrupted"
        elif not commit(staged, final, replace=settings.overwrite):
            res.status, res.reason = "skipped", "another attempt finished it first"
    except PsenetError as e:
        res.status, res.reason, res.exit_code = "failed", e.problem, e.exit_code
    except Exception as e:  # noqa: BLE001 - one bad file must not end the batch: reported with its reason
        res.status, res.reason, res.exit_code = "failed", f"{type(e).__name__}: {e}", 1
    finally:
        shutil.rmtree(attempt, ignore_errors=True)
        res.seconds = time.perf_counter() - t0
    return asdict(res)


def _enhance_into(job: Job, staged: Path, settings: Settings, stop):
    from psenet_stream import pipeline
    from psenet_stream.io.sinks import open_sink

    inp = Path(job.input)
    batch = settings.enhancer.get("batch")
    if job.kind == "image":
        from psenet_stream.io.sources import ImageSource

        src = ImageSource(inp)
        sink = open_sink(staged, src.info, inputs=[inp])
        stats, _ = pipeline.run_to_sinks(src, _enhancer(settings.enhancer, video=False), [sink], batch=batch or 1, stop=stop)
        return stats
    from psenet_stream.io.video import VideoFileSource

    with VideoFileSource(inp) as src:
        enc = {k: v for k, v in settings.encode.items() if v is not None}
        sink = open_sink(staged, src.info, inputs=[inp], audio_from=inp if src.has_audio else None, **enc)
        stats, _ = pipeline.run_to_sinks(src, _enhancer(settings.enhancer, video=True), [sink], batch=batch, stop=stop)
    if stats.frames_out == 0 and not stats.interrupted:
        from psenet_stream.errors import InputError

        raise InputError("no frames were read from the input")
    return stats


# --- the run: summary, progress, local pool ------------------------------------------------------


@dataclass
class Summary:
    """Every job's Result, and the totals the command prints."""

    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.results if r.status == "done")

    def per_node(self) -> dict[str, dict[str, float]]:
        """node -> files, frames, busy seconds, frames/s (per worker: frames / busy seconds)."""
        nodes: dict[str, dict[str, float]] = {}
        for r in self.results:
            if r.status != "done":
                continue
            n = nodes.setdefault(r.node or "?", {"files": 0, "frames": 0, "seconds": 0.0})
            n["files"] += 1
            n["frames"] += r.frames
            n["seconds"] += r.seconds
        for n in nodes.values():
            n["fps_per_worker"] = n["frames"] / n["seconds"] if n["seconds"] > 0 else 0.0
        return nodes

    def lines(self) -> list[str]:
        done, skipped, failed = self.count("done"), self.count("skipped"), self.count("failed")
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        files_s = done / self.seconds if self.seconds > 0 else 0.0
        head = f"batch: {done} done, {skipped} skipped, {failed} failed; {self.frames} frames in {self.seconds:.1f} s"
        out = [f"{head} ({files_s:.3g} files/s, {fps:.1f} frames/s)"]
        for node, n in sorted(self.per_node().items()):
            out.append(f"  node {node}: {int(n['files'])} files, {int(n['frames'])} frames, {n['fps_per_worker']:.1f} frames/s per worker")
        for r in self.results:
            if r.status == "failed":
                out.append(f"  failed: {r.input}: {r.reason}")
        return out

    def exit_code(self) -> int:
        """The failures' exit code when they share one (3: all inputs unreadable, ...), else 1."""
        codes = {r.exit_code or 1 for r in self.results if r.status == "failed"}
        return codes.pop() if len(codes) == 1 else 1

    def as_dict(self) -> dict:
        return {
            "done": self.count("done"), "skipped": self.count("skipped"), "failed": self.count("failed"),
            "frames": self.frames, "seconds": self.seconds,
            "files_per_s": self.count("done") / self.seconds if self.seconds > 0 else 0.0,
            "frames_per_s": self.frames / self.seconds if self.seconds > 0 else 0.0,
            "nodes": self.per_node(), "results": [asdict(r) for r in self.results],
        }


class BatchProgress:
    """The driver's one progress line: files finished / total, frames, frames/s, failures."""

    def __init__(self, total: int, enabled: bool, stream=None):
        from psenet_stream.commands._common import StatusLine

        self.total = total
        self.line = StatusLine(enabled, stream=stream, interval=0.2, plain_interval=15.0)
        self.t0 = time.perf_counter()
        self.finished = self.frames = self.failed = 0

    def add(self, r: Result) -> None:
        self.finished += 1
        self.frames += r.frames if r.status == "done" else 0
        self.failed += r.status == "failed"
        self.show(force=self.finished == self.total)

    def show(self, force: bool = False) -> None:
        if not self.line.due(force):
            return
        dt = time.perf_counter() - self.t0
        pct = 100.0 * self.finished / self.total if self.total else 100.0
        text = f"{self.finished}/{self.total} files ({pct:3.0f}%)  {self.frames} frames  {self.frames / dt if dt > 0 else 0:5.1f} frames/s"
        if self.failed:
            text += f"  {self.failed} failed"
        self.line.update(text, force=force)

    def close(self) -> None:
        self.line.close()


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def cleanup_staging(outdir: Path, run_id: str) -> None:
    """Remove this run's staging folder (attempts of killed workers included), and the
    staging root when no other run uses it."""
    root = Path(outdir) / STAGING
    shutil.rmtree(root / run_id, ignore_errors=True)
    try:
        root.rmdir()
    except OSError:
        pass


def split_done(jobs: list[Job]) -> tuple[list[Job], list[Result]]:
    """Jobs still to run, and a 'skipped' Result for each whose output is finished."""
    todo, skipped = [], []
    for j in jobs:
        if Path(j.output).exists():
            skipped.append(Result(j.input, j.output, "skipped", "already done"))
        else:
            todo.append(j)
    return todo, skipped


def _pool_init() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and ends the pool


def run_local(jobs: list[Job], settings: Settings, *, workers: int, on_result: Callable[[Result], None], stop: threading.Event) -> list[Result]:
    """Every job on a pool of ``workers`` processes (spawned: no forked torch state); a job
    whose worker process dies is reported failed with that reason. ``stop``: no new job
    starts; the running ones finish."""
    import concurrent.futures as cf
    import multiprocessing as mp

    results: list[Result] = []
    if not jobs:
        return results
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=max(1, workers), mp_context=ctx, initializer=_pool_init) as pool:
        pending = {}
        queue = list(jobs)
        sett = asdict(settings)

        def submit():
            while queue and len(pending) < 2 * workers and not stop.is_set():
                j = queue.pop(0)
                pending[pool.submit(run_job, asdict(j), sett)] = j

        submit()
        while pending:
            done, _ = cf.wait(list(pending), timeout=0.5, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                j = pending.pop(fut)
                try:
                    r = Result.from_dict(fut.result())
                except Exception as e:  # noqa: BLE001 - the worker process died (BrokenProcessPool), or the result could not come back
                    r = Result(j.input, j.output, "failed", f"worker process failed: {type(e).__name__}: {e}")
                results.append(r)
                on_result(r)
            submit()
        for j in queue:  # stopped before these started
            r = Result(j.input, j.output, "failed", "not started (interrupted)")
            results.append(r)
    return results
