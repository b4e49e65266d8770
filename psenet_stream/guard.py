"""The one output guard: every file psenet-stream writes goes through here.

Videos, images, folders of images, statistics and evaluation reports, weights, ONNX
models, engines, snapshots and partial recordings all follow the same four rules:

1. an input is never replaced: not by its own name, nor through a symbolic link, a hard
   link, an ancestor folder or another spelling of its path. Identity is the file itself
   (``st_dev``/``st_ino``), not the text of the path;
2. an existing file is never replaced without the overwrite flag, and never when it is
   not a regular file (a folder, a FIFO, a device);
3. the bytes go to a temporary name in the destination folder first and are renamed into
   place when complete (``os.replace``, or a hard link when nothing may be replaced, so a
   file that appeared meanwhile is not clobbered either);
4. no temporary file outlives the process: each one is registered while it exists and
   removed on every exit path: an exception, ``sys.exit``, SIGINT, and SIGTERM (the CLI
   installs :func:`install_signal_cleanup`, which turns SIGTERM into an exception so every
   ``finally`` runs, and the registry is emptied ``atexit`` as a last resort).

Mistakes get an ``OutputError`` (exit 4) naming the path and the fix. This module imports
nothing beyond the standard library and ``errors``, so any layer may use it.

    >>> with atomic_output("report.json", inputs=[src]) as tmp:   # doctest: +SKIP
    ...     tmp.write_text(text)
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import signal
import stat
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from psenet_stream.errors import OutputError

_TEMPS: set[str] = set()
_LOCK = threading.Lock()


def _fs(p: Path) -> str:
    return os.fspath(p)


def _identity(p: Path, follow: bool = True) -> tuple[int, int] | None:
    try:
        st = os.stat(p) if follow else os.lstat(p)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _real(p: Path) -> Path:
    try:
        return Path(os.path.realpath(p))
    except (OSError, ValueError):
        return Path(os.path.abspath(p))


class Protected:
    """The files a run reads, by identity: every regular file given, and every regular file
    under every folder given (recursively, links followed once). ``covers(path)`` is true
    when writing ``path`` would replace one of them, however the path is spelled."""

    def __init__(self, inputs: Iterable[str | Path] = (), *, exclude: str | Path | None = None):
        self.ids: set[tuple[int, int]] = set()
        self.paths: set[Path] = set()
        self.dirs: list[Path] = []
        self.exclude = _real(Path(exclude)) if exclude is not None else None  # an output folder inside an input folder
        for i in inputs:
            if i is None or str(i) in ("", "-") or "://" in str(i):
                continue
            self.add(Path(i))

    def add(self, p: Path) -> None:
        self.paths.add(_real(p))
        ident = _identity(p)
        if ident is None:
            return
        if os.path.isdir(p):
            self.dirs.append(_real(p))
            for root, dirs, files in os.walk(p, followlinks=False):
                if self.exclude is not None:
                    dirs[:] = [d for d in dirs if _real(Path(root) / d) != self.exclude]
                for f in files:
                    fp = Path(root) / f
                    fid = _identity(fp)
                    if fid is not None:
                        self.ids.add(fid)
                        self.paths.add(_real(fp))
        else:
            self.ids.add(ident)

    def covers(self, path: str | Path) -> bool:
        p = Path(path)
        ident = _identity(p)
        if ident is not None and ident in self.ids:
            return True
        return _real(p) in self.paths

    def is_inside_input_dir(self, path: str | Path) -> bool:
        r = _real(Path(path))
        return any(r == d or d in r.parents for d in self.dirs)


def _is_input(p: Path, prot: Protected, what: str) -> OutputError:
    from psenet_stream.io.specs import is_image_path

    which = "the input" if len(prot.ids) <= 1 and not prot.dirs else f"an input {'image' if is_image_path(p) else 'file'}"
    return OutputError(f"the {what} {p} is {which}", f"choose another {what} name; inputs are never overwritten")


def _existing_ancestor(p: Path) -> Path:
    a = Path(os.path.abspath(p)).parent
    while not os.path.lexists(a) and a != a.parent:
        a = a.parent
    return a


def check_parent(path: str | Path, *, create: bool = False, what: str = "output") -> None:
    """The folder of ``path`` exists (or, with ``create``, can be made), is a folder, and is
    writable. An output under a regular file, in a missing folder, on a read-only filesystem
    or in a folder without write permission is an OutputError (exit 4)."""
    p = Path(path)
    parent = Path(os.path.abspath(p)).parent
    if not os.path.isdir(parent):
        anc = _existing_ancestor(p) if not os.path.lexists(parent) else parent
        if os.path.lexists(anc) and not os.path.isdir(anc):
            raise OutputError(f"the {what} {p} is under {anc}, which is a file, not a folder", f"choose an {what} path inside a folder")
        if not create:
            raise OutputError(f"{what} directory does not exist: {parent}", f"create it first (mkdir -p {parent})")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create the {what} folder {parent}: {e.strerror}", f"choose an {what} location you can write to") from None
    if not os.access(parent, os.W_OK):
        ro = _read_only_fs(parent)
        raise OutputError(
            f"cannot write to directory {parent}" + (" (a read-only filesystem)" if ro else " (no write permission)"),
            f"choose an {what} location you can write to with -o",
        )


def _read_only_fs(p: Path) -> bool:
    try:
        return bool(os.statvfs(p).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_output(
    path: str | Path,
    inputs: Iterable[str | Path] | Protected = (),
    *,
    overwrite: bool = False,
    create_parent: bool = False,
    what: str = "output",
    flag: str = "-y (--overwrite)",
    hint: str | None = None,
) -> Path:
    """Refuse to write ``path`` when that would replace an input (ever), an existing file
    (without ``overwrite``), or something that is not a regular file; or when its folder is
    missing, a file, or not writable. Returns ``path`` as a Path."""
    p = Path(path)
    prot = inputs if isinstance(inputs, Protected) else Protected(inputs)
    if prot.covers(p):
        raise _is_input(p, prot, what)
    if os.path.isdir(p):
        raise OutputError(f"{what} is a directory: {p}", "choose a file name with -o")
    if os.path.lexists(p):
        if not os.path.exists(p):  # a dangling link: renaming over it replaces only the link
            pass
        elif not stat.S_ISREG(os.stat(p).st_mode):
            raise OutputError(f"{what} {p} exists and is not a regular file", f"choose another {what} name")
        if not overwrite:
            raise OutputError(f"{what} already exists: {p}", hint or f"pass {flag} to replace it, or choose another name")
    check_parent(p, create=create_parent, what=what)
    return p


def check_output_dir(path: str | Path, inputs: Iterable[str | Path] | Protected = (), *, what: str = "output folder") -> Path:
    """An output folder: not a file, not one of the input folders, its parent writable.
    (Each file written into it is checked by ``check_output``: inputs inside it are kept.
    An output folder inside an input folder is not read: what it holds is earlier output,
    replaced only with the overwrite flag.)"""
    p = Path(path)
    prot = inputs if isinstance(inputs, Protected) else Protected(inputs)
    if os.path.lexists(p) and not os.path.isdir(p):
        raise OutputError(f"{what} {p} exists and is a file", "pass an output folder with -o")
    if any(_real(p) == d for d in prot.dirs):
        raise OutputError(f"the {what} is the input folder: {p}", "choose another folder with -o; inputs are never overwritten")
    if os.path.isdir(p):
        if not os.access(p, os.W_OK):
            raise OutputError(
                f"cannot write to directory {p}" + (" (a read-only filesystem)" if _read_only_fs(p) else " (no write permission)"),
                "choose an output folder you can write to with -o",
            )
    else:
        check_parent(p, create=True, what=what)
    return p


# --- temporary names ---------------------------------------------------------------------------


def temp_path(final: str | Path, tag: str = "tmp") -> Path:
    """A fresh hidden name next to ``final`` (same folder, so the rename is atomic), keeping
    its extension (encoders choose the container by it), registered for cleanup. The name
    itself is ASCII whatever ``final`` holds."""
    final = Path(final)
    suffix = final.suffix if final.suffix.isascii() and final.suffix.isprintable() else ""
    tmp = final.with_name(f".psenet-{os.getpid()}-{os.urandom(4).hex()}.{tag}{suffix}")
    register(tmp)
    return tmp


def register(tmp: str | Path) -> None:
    with _LOCK:
        _TEMPS.add(_fs(Path(tmp)))


def unregister(tmp: str | Path) -> None:
    with _LOCK:
        _TEMPS.discard(_fs(Path(tmp)))


def discard(tmp: str | Path) -> None:
    """Delete a temporary file (if it is there) and forget it."""
    with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
        os.unlink(tmp)
    unregister(tmp)


def live_temps() -> list[str]:
    with _LOCK:
        return sorted(_TEMPS)


def cleanup_temps() -> None:
    """Remove every registered temporary file (atexit, and the SIGTERM path)."""
    with _LOCK:
        temps = list(_TEMPS)
        _TEMPS.clear()
    for t in temps:
        with contextlib.suppress(OSError):
            os.unlink(t)


atexit.register(cleanup_temps)


def commit(tmp: str | Path, final: str | Path, *, overwrite: bool = False, inputs: Iterable[str | Path] | Protected = (), what: str = "output") -> Path:
    """Rename ``tmp`` to ``final``: re-checked first (an input, or a file that appeared while
    writing, is never replaced without leave); without ``overwrite`` the name is claimed with
    a hard link, so nothing is replaced even by a race. ``tmp`` is gone afterwards."""
    tmp, final = Path(tmp), Path(final)
    prot = inputs if isinstance(inputs, Protected) else Protected(inputs)
    try:
        if prot.covers(final):
            raise _is_input(final, prot, what)
        if overwrite:
            if os.path.exists(final) and not stat.S_ISREG(os.stat(final).st_mode):
                raise OutputError(f"{what} {final} is not a regular file", f"choose another {what} name")
            os.replace(tmp, final)
        else:
            try:
                os.link(tmp, final)
            except FileExistsError:
                raise OutputError(f"{what} appeared while writing: {final}", "pass -y (--overwrite) to replace it, or choose another name") from None
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                if os.path.lexists(final):  # no hard links here: check, then rename
                    raise OutputError(f"{what} appeared while writing: {final}", "pass -y (--overwrite) to replace it, or choose another name") from None
                os.replace(tmp, final)
    finally:
        discard(tmp)
    return final


@contextlib.contextmanager
def atomic_output(
    final: str | Path,
    inputs: Iterable[str | Path] | Protected = (),
    *,
    overwrite: bool = False,
    create_parent: bool = False,
    what: str = "output",
    checked: bool = False,
) -> Iterator[Path]:
    """``with atomic_output(path) as tmp:`` write ``tmp``; on success it becomes ``path``,
    on any exception (or signal) it is removed. Checked first unless ``checked``."""
    final = Path(final)
    prot = inputs if isinstance(inputs, Protected) else Protected(inputs)
    if not checked:
        check_output(final, prot, overwrite=overwrite, create_parent=create_parent, what=what)
    tmp = temp_path(final)
    try:
        yield tmp
        if not os.path.exists(tmp):
            raise OutputError(f"nothing was written to {final}", "")
        commit(tmp, final, overwrite=overwrite, inputs=prot, what=what)
    finally:
        discard(tmp)


def write_bytes(final: str | Path, data: bytes, inputs: Iterable[str | Path] | Protected = (), *, overwrite: bool = False, create_parent: bool = False, what: str = "output") -> Path:
    """Write ``data`` to ``final`` under every rule of this module."""
    with atomic_output(final, inputs, overwrite=overwrite, create_parent=create_parent, what=what) as tmp:
        try:
            with open(tmp, "wb") as f:
                f.write(data)
        except OSError as e:
            raise OutputError(f"cannot write {final}: {e.strerror}", "check the disk has space and the folder is writable") from None
    return Path(final)


def write_text(final: str | Path, text: str, inputs: Iterable[str | Path] | Protected = (), **kw) -> Path:
    return write_bytes(final, text.encode("utf-8"), inputs, **kw)


# --- reading: never blocks on a special file ---------------------------------------------------


class NotRegularFile(OSError):
    """The path names a FIFO, device, socket or folder: reading it could block forever."""


def read_regular(path: str | Path) -> bytes:
    """The bytes of a regular file, read by Python (any file name works, UTF-8 or not). A FIFO,
    device, socket or folder raises ``NotRegularFile`` without blocking: it is opened
    non-blocking and checked on the open descriptor (a file swapped after a check is caught
    too). Used for every file handed to a decoder that could block on one (images, weights)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file (a pipe, device, socket or folder)", os.fspath(path))
        return f.read()


# --- signals -------------------------------------------------------------------------------------


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so every ``finally`` (and temporary-file cleanup) runs."""


def _on_sigterm(signum, _frame):
    raise Terminated()


def _die_quietly(signum, _frame):
    """After the CLI returned (the interpreter is exiting): remove temporaries, then end by the
    signal itself, without running Python code that could print a traceback."""
    cleanup_temps()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def finish_signal_cleanup() -> None:
    """The CLI's work is over: a SIGTERM from now on ends the process at once (no exception
    raised inside the interpreter's exit handlers)."""
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(signal.SIGTERM) is _on_sigterm:
                signal.signal(signal.SIGTERM, _die_quietly)


def install_signal_cleanup() -> None:
    """SIGTERM (outside a run, whose own handler stops it cleanly) raises ``Terminated`` in the
    main thread instead of killing the process, so no temporary file is left behind."""
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _on_sigterm)
