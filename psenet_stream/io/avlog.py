"""FFmpeg's own log (encoder banners, demuxer chatter) as the CLI's verbosity wants it.

PyAV keeps FFmpeg's log off unless asked (``av.logging.get_level()`` is None): a default
or ``-q`` run prints nothing of FFmpeg's. ``-v`` shows its warnings, ``-vv`` everything.
"""

from __future__ import annotations


def set_ffmpeg_log(verbose: int = 0, quiet: bool = False) -> None:
    """FFmpeg's lines go to stderr through one handler with the process-wide redacting filter
    (io/redact.PROCESS_FILTER): FFmpeg quotes URLs, credentials included."""
    import logging
    import sys

    import av.logging as avlog

    from psenet_stream.io.redact import PROCESS_FILTER

    class _Stderr(logging.StreamHandler):  # whatever sys.stderr is when a line is emitted
        psenet_cli = True

        @property
        def stream(self):
            return sys.stderr

        @stream.setter
        def stream(self, _value):
            pass

    lg = logging.getLogger("libav")
    if not any(getattr(h, "psenet_cli", False) for h in lg.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(PROCESS_FILTER)
        lg.addHandler(handler)
        lg.propagate = False
    avlog.set_level(None if (quiet or verbose <= 0) else (avlog.WARNING if verbose == 1 else avlog.VERBOSE))
