"""FFmpeg's own log (encoder banners, demuxer chatter) as the CLI's verbosity wants it.

PyAV keeps FFmpeg's log off unless asked (``av.logging.get_level()`` is None): a default
or ``-q`` run prints nothing of FFmpeg's. ``-v`` shows its warnings, ``-vv`` everything.
"""

from __future__ import annotations


def set_ffmpeg_log(verbose: int = 0, quiet: bool = False) -> None:
    import av.logging as avlog

    avlog.set_level(None if (quiet or verbose <= 0) else (avlog.WARNING if verbose == 1 else avlog.VERBOSE))
