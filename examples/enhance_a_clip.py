"""The library API on one clip: open a source, an Enhancer and a sink, run, commit.

    python examples/enhance_a_clip.py IN.mp4 OUT.mp4        # any video file
    python examples/enhance_a_clip.py --synthetic OUT.mp4   # makes a dark test clip first

The same steps the command line takes (``psenet-stream IN.mp4 -o OUT.mp4``), in a few lines.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import psenet_stream as ps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python examples/enhance_a_clip.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("input", nargs="?", help="a video file")
    ap.add_argument("output", help="where to write the enhanced clip")
    ap.add_argument("--synthetic", action="store_true", help="enhance a generated under-exposed clip instead of INPUT")
    ap.add_argument("--backend", default="auto", help="inference backend (default auto)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(args.input) if args.input else None
        if args.synthetic or inp is None:
            from psenet_stream.evaluation.bench import synthetic_scene, write_clip

            inp = write_clip(Path(tmp) / "dark.mp4", synthetic_scene(320, 180, 24))
        enh = ps.Enhancer.from_pretrained(backend=args.backend, smoothing=0.5)
        with ps.open_source(inp) as src:
            sink = ps.open_sink(args.output, src.info, inputs=[inp], audio_from=inp if src.has_audio else None, overwrite=True)
            stats, _ = ps.run_to_sinks(src, enh, [sink])
    print(f"{args.output}: {stats.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
