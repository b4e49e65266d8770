"""What ``psenet-stream serve`` runs: a TOML file, or ``IN=OUT`` pairs, as a ``ServeConfig``.

    [serve]                       # all optional
    batch = 8                     # most frames per backend call (one per stream)
    deadline_ms = 8               # wait this long after the first frame for the others
    metrics_port = 9464           # Prometheus /metrics and /healthz on 127.0.0.1 (0: a free port, -1: off)
    status_interval = 5           # seconds between the per-stream status lines (0: off)
    parallel = 0                  # backend calls in flight; 0: auto (1 on a GPU, one per CPU core)

    [[stream]]
    name = "door"                                     # unique; [A-Za-z0-9_.-]
    input = "rtsp://user:pw@cam-door/stream1"         # any input the CLI takes
    outputs = ["rtsp://127.0.0.1:8554/door", "rec/door.mp4", "preview:http", "null"]
    strength = 0.8                                    # per-stream enhancer options (optional)
    smoothing = 0.0
    stabilize = 0.9
    gamma_every = 4
    infer_size = 256                                  # or "full"
    queue_size = 1                                    # frames held per stream before the oldest is dropped
    preview_port = 8091                               # for "preview:http" (0: a free port)
    overwrite = false                                 # replace existing output files
    loop = false                                      # a file input starts again at its end
    read_timeout = 5.0                                # live inputs: seconds without data = lost
    open_timeout = 10.0                               # live inputs: seconds to connect
    size = "1280x720"                                 # webcams: capture size, frame rate, pixel format
    fps = 30
    input_format = "mjpeg"
    format = "mpegts"                                 # network inputs: force the demuxer (tcp://)

The short form ``load(["lavfi:testsrc2=size=640x360:rate=25,realtime=null", "cam.mp4=out.mp4"])``
splits each pair at the last ``=`` followed by an output spec (outputs joined with ``,`` are
not split: use the TOML form for several outputs); streams are named ``s1``, ``s2``, ...

Inputs: RTSP/RTMP/HTTP/TCP/UDP/SRT URLs, ``/dev/videoN``, ``lavfi:GRAPH``, or a video file,
which is played at its own frame rate (like a camera). Outputs: publish URLs, video files
(written under a temporary name, renamed when the stream or the server stops), ``preview:http``,
and ``null`` (enhance, write nothing: for measurements).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import tomllib

from psenet_stream.errors import UsageError
from psenet_stream.io.redact import mask_url

NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
NULL_OUTPUT = "null"
_ENHANCE_KEYS = ("strength", "smoothing", "stabilize", "gamma_every", "infer_size")


@dataclass(frozen=True)
class StreamConfig:
    """One stream: where frames come from, where they go, and its own enhancer options
    (None: the server's). Frozen and comparable: a reload restarts only streams whose
    ``StreamConfig`` changed."""

    name: str
    input: str
    outputs: tuple[str, ...] = (NULL_OUTPUT,)
    strength: float | None = None
    smoothing: float | None = None
    stabilize: float | None = None
    gamma_every: int | None = None
    infer_size: int | str | None = None
    queue_size: int = 1
    preview_port: int = 0
    overwrite: bool = False
    loop: bool = False
    read_timeout: float | None = None
    open_timeout: float | None = None
    size: str | None = None  # webcam capture size, e.g. "1280x720"
    fps: float | None = None  # webcam frame rate
    input_format: str | None = None  # webcam pixel format, e.g. "mjpeg"
    format: str | None = None  # force the demuxer of a network input, e.g. "mpegts" for tcp://

    @property
    def safe_input(self) -> str:
        """The input with its credentials masked (for logs, status, metrics)."""
        return mask_url(self.input)

    @property
    def safe_outputs(self) -> tuple[str, ...]:
        return tuple(mask_url(o) for o in self.outputs)

    def enhance_overrides(self) -> dict[str, Any]:
        """The per-stream enhancer options that were set."""
        return {k: getattr(self, k) for k in _ENHANCE_KEYS if getattr(self, k) is not None}


@dataclass(frozen=True)
class ServeConfig:
    """The whole server: its streams (unique names, in order) and the batcher's settings."""

    streams: tuple[StreamConfig, ...] = ()
    batch: int = 8
    deadline_ms: float = 8.0
    metrics_port: int = 9464
    status_interval: float = 5.0
    parallel: int = 0  # backend calls in flight (batcher threads); 0: auto (1 on a GPU, one per core on a CPU)
    path: str | None = None  # the TOML file it came from (reloaded on SIGHUP or when edited)

    def by_name(self) -> dict[str, StreamConfig]:
        return {s.name: s for s in self.streams}

    def with_streams(self, streams: Sequence[StreamConfig]) -> ServeConfig:
        return replace(self, streams=tuple(streams))


_STREAM_FIELDS = {f.name for f in fields(StreamConfig)}
_SERVE_FIELDS = {f.name for f in fields(ServeConfig)} - {"streams", "path"}


def _check_stream(s: StreamConfig, where: str) -> StreamConfig:
    if not NAME_RE.match(s.name):
        raise UsageError(f"{where}: bad stream name {s.name!r}", "use 1-64 letters, digits, '_', '.' or '-'")
    if not s.input:
        raise UsageError(f"{where}: stream {s.name!r} has no input", 'add input = "rtsp://..." (or a file, lavfi:GRAPH, /dev/videoN)')
    if not s.outputs:
        raise UsageError(f"{where}: stream {s.name!r} has no output", 'add outputs = ["null"] (or a file, rtsp:// URL, preview:http)')
    for o in s.outputs:
        if not isinstance(o, str) or not o:
            raise UsageError(f"{where}: stream {s.name!r} has a bad output {o!r}", "outputs are strings: a file, a URL, preview:http or null")
        if o.startswith("preview:") and o != "preview:http":
            raise UsageError(f"{where}: stream {s.name!r}: output {o!r} is not served", "serve previews over HTTP only: use preview:http")
    if s.strength is not None and not 0.0 <= float(s.strength) <= 4.0:
        raise UsageError(f"{where}: stream {s.name!r}: strength {s.strength} out of range", "use 0 (off) to 1 (full); up to 4 exaggerates")
    if s.smoothing is not None and not 0.0 <= float(s.smoothing) < 1.0:
        raise UsageError(f"{where}: stream {s.name!r}: smoothing {s.smoothing} out of range", "use a value in [0, 1)")
    if s.stabilize is not None and not 0.0 <= float(s.stabilize) < 1.0:
        raise UsageError(f"{where}: stream {s.name!r}: stabilize {s.stabilize} out of range", "use a value in [0, 1)")
    if s.gamma_every is not None and (not isinstance(s.gamma_every, int) or not 1 <= s.gamma_every <= 64):
        raise UsageError(f"{where}: stream {s.name!r}: gamma_every {s.gamma_every!r} out of range", "use a whole number from 1 to 64")
    if s.infer_size is not None and s.infer_size != "full":
        try:
            size = int(s.infer_size)
        except (TypeError, ValueError):
            raise UsageError(f"{where}: stream {s.name!r}: bad infer_size {s.infer_size!r}", "use a long side in pixels (e.g. 256) or 'full'") from None
        if size < 16:
            raise UsageError(f"{where}: stream {s.name!r}: infer_size {size} is too small", "use at least 16 or 'full'")
        s = replace(s, infer_size=size)
    if not 1 <= int(s.queue_size) <= 8:
        raise UsageError(f"{where}: stream {s.name!r}: queue_size {s.queue_size} out of range", "use 1 to 8 frames")
    return s


def _check_all(cfg: ServeConfig, where: str) -> ServeConfig:
    seen: set[str] = set()
    streams = []
    for s in cfg.streams:
        if s.name in seen:
            raise UsageError(f"{where}: two streams are named {s.name!r}", "give every stream a unique name")
        seen.add(s.name)
        streams.append(_check_stream(s, where))
    files = [o for s in streams for o in s.outputs if _is_file_output(o)]
    dup = {f for f in files if files.count(f) > 1}
    if dup:
        raise UsageError(f"{where}: two streams write the same file {min(dup)}", "give every stream its own output file")
    if not 1 <= int(cfg.batch) <= 256:
        raise UsageError(f"{where}: batch {cfg.batch} out of range", "use 1 to 256 frames per backend call")
    if not 0 <= float(cfg.deadline_ms) <= 1000:
        raise UsageError(f"{where}: deadline_ms {cfg.deadline_ms} out of range", "use 0 to 1000 ms")
    if not 0 <= int(cfg.parallel) <= 64:
        raise UsageError(f"{where}: parallel {cfg.parallel} out of range", "use 0 (auto) to 64 backend calls in flight")
    if not -1 <= int(cfg.metrics_port) <= 65535:
        raise UsageError(f"{where}: metrics_port {cfg.metrics_port} out of range", "use a port, 0 for a free one, or -1 for none")
    return replace(cfg, streams=tuple(streams))


def _is_file_output(o: str) -> bool:
    return o != NULL_OUTPUT and "://" not in o and not o.startswith("preview:")


def from_dict(data: dict[str, Any], *, path: str | None = None) -> ServeConfig:
    """A ``ServeConfig`` from parsed TOML (``[serve]`` and ``[[stream]]`` tables)."""
    where = path or "serve config"
    unknown = set(data) - {"serve", "stream", "streams"}
    if unknown:
        raise UsageError(f"{where}: unknown table {min(unknown)!r}", "use [serve] and [[stream]] tables")
    serve = dict(data.get("serve") or {})
    bad = set(serve) - _SERVE_FIELDS
    if bad:
        raise UsageError(f"{where}: unknown [serve] key {min(bad)!r}", f"use {', '.join(sorted(_SERVE_FIELDS))}")
    raw = list(data.get("stream") or []) + list(data.get("streams") or [])
    streams = []
    for i, t in enumerate(raw, 1):
        if not isinstance(t, dict):
            raise UsageError(f"{where}: stream {i} is not a table", "write each stream as a [[stream]] table")
        t = dict(t)
        if "output" in t and "outputs" not in t:
            t["outputs"] = t.pop("output")
        bad = set(t) - _STREAM_FIELDS
        if bad:
            raise UsageError(f"{where}: stream {t.get('name', i)!r}: unknown key {min(bad)!r}", f"use {', '.join(sorted(_STREAM_FIELDS))}")
        outs = t.get("outputs", [NULL_OUTPUT])
        t["outputs"] = (outs,) if isinstance(outs, str) else tuple(outs)
        t.setdefault("name", f"s{i}")
        t["input"] = str(t.get("input", ""))
        streams.append(StreamConfig(**t))
    return _check_all(ServeConfig(streams=tuple(streams), path=path, **serve), where)


def _looks_like_output(out: str) -> bool:
    from psenet_stream.io.specs import is_live_output

    if out == NULL_OUTPUT or out == "preview:http" or is_live_output(out):
        return True
    return bool(out) and "=" not in out and ":" not in out  # a file name


def parse_pair(text: str, index: int) -> StreamConfig:
    """``IN=OUT`` -> a stream named ``s<index>``. The split is at the last '=' whose right side
    looks like an output (a lavfi graph and URLs contain '=' themselves)."""
    for m in reversed([m.start() for m in re.finditer("=", text)]):
        inp, out = text[:m], text[m + 1 :]
        if inp and _looks_like_output(out):
            return StreamConfig(name=f"s{index}", input=inp, outputs=(out,))
    raise UsageError(f"bad stream {mask_url(text)!r}", "write INPUT=OUTPUT, e.g. rtsp://cam/1=rtsp://127.0.0.1:8554/out1, or pass a streams.toml")


def load(source: str | Path | Sequence[str] | dict[str, Any], **serve_overrides: Any) -> ServeConfig:
    """The config from a TOML file path, a list of ``IN=OUT`` pairs, or a parsed dict.

    ``serve_overrides``: [serve] settings that replace the file's (the CLI's --batch, ...;
    None values are ignored). Raises UsageError (a ValueError) naming the problem."""
    overrides = {k: v for k, v in serve_overrides.items() if v is not None}
    bad = set(overrides) - _SERVE_FIELDS
    if bad:
        raise TypeError(f"load() got unexpected settings {sorted(bad)}")
    if isinstance(source, dict):
        cfg = from_dict(source)
    elif isinstance(source, (str, Path)) and (str(source).endswith(".toml") or Path(source).is_file()):
        p = Path(source)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"config not found: {p}", "check the path of streams.toml") from None
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read {p}: {e}", "check the file") from None
        except tomllib.TOMLDecodeError as e:
            raise UsageError(f"{p} is not valid TOML: {e}", "fix the file (see psenet_stream/serve/config.py for the format)") from None
        cfg = from_dict(data, path=str(p))
    else:
        pairs = [source] if isinstance(source, (str, Path)) else list(source)
        if not pairs:
            raise UsageError("no streams given", "pass streams.toml or IN=OUT pairs")
        cfg = _check_all(ServeConfig(streams=tuple(parse_pair(str(t), i) for i, t in enumerate(pairs, 1))), "command line")
    return _check_all(replace(cfg, **overrides), cfg.path or "serve config") if overrides else cfg


__all__ = ["NULL_OUTPUT", "ServeConfig", "StreamConfig", "from_dict", "load", "parse_pair"]
