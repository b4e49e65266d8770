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

    lg = logging.getLogger("libav")
    handler = next((h for h in lg.handlers if getattr(h, "psenet_cli", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.psenet_cli = True
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(PROCESS_FILTER)
        lg.addHandler(handler)
        lg.propagate = False
    handler.stream = sys.stderr
    avlog.set_level(None if (quiet or verbose <= 0) else (avlog.WARNING if verbose == 1 else avlog.VERBOSE))
