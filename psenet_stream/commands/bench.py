"""``psenet-stream bench``: speed figures for every backend, as a table and as JSON."""

from __future__ import annotations

import click


@click.command("bench")
@click.option("--backends", default="auto", show_default=True, help="'auto' (every backend usable here) or a list, e.g. cpu,onnx,cuda.")
@click.option("--sizes", default=None, help="Frame sizes WxH, comma-separated [default: 640x360,1280x720,1920x1080 (+3840x2160 on a GPU)].")
@click.option("--frames", default=64, show_default=True, type=click.IntRange(1, 100000), help="Frames per measurement.")
@click.option("--batch", default=None, type=click.IntRange(1, 256), help="Frames per enhancer call [default: cuda/tensorrt 8, onnx 4, cpu 1].")
@click.option("--threads", default=None, type=click.IntRange(1, 256), help="CPU threads for the cpu/onnx backends [default: all cores].")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False), help="Also write the results as JSON here.")
@click.option("--clip", default=None, type=click.Path(exists=True, dir_okay=False), help="Take frames from this clip (default: the data clips, else a synthetic scene).")
@click.option("--weights", default=None, type=click.Path(dir_okay=False), help="Weight file (default: the shipped weights).")
@click.option("--preset", default="veryfast", show_default=True, help="libx264 preset of both the plain and the enhanced transcode (the enhance command's default).")
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(1, 50), help="Measure each figure this many times, plain and enhanced alternating; report the median and spread.")
@click.option("--infer-size", default=None, help="Working resolution of the network (long side, or 'full') [default: the enhancer default].")
@click.option("--compile", "compile_net", is_flag=True, help="GPU: compile the network with torch.compile (minutes per frame size; fast at full resolution).")
@click.option("--no-file", is_flag=True, help="Skip the file transcode measurements.")
@click.option("--no-live", is_flag=True, help="Skip the live-latency measurement (720p).")
@click.option("--streams", "streams", default=None, help="Instead: how many live 640x360 25 fps streams one `serve` process holds against as many separate processes, e.g. --streams 1,2,4,6.")
@click.option("--stream-seconds", default=20.0, show_default=True, type=click.FloatRange(3, 3600), help="With --streams: seconds per measurement.")
@click.option("--live-frames", default=60, show_default=True, type=click.IntRange(2, 10000), help="Frames of the paced 30 fps live source.")
def bench(backends, sizes, frames, batch, threads, json_path, clip, weights, preset, rounds, infer_size, compile_net, no_file, no_live, streams, stream_seconds, live_frames) -> None:
    """Benchmark backends: inference fps, file fps, transcode ratio, live latency, memory.

    \b
    psenet-stream bench --backends cpu,onnx --sizes 1280x720 --frames 120 --json bench.json
    """
    from psenet_stream.commands._common import setup_logging
    from psenet_stream.evaluation.bench import format_table, parse_sizes, run_bench, write_json

    setup_logging(quiet=True)
    if json_path:  # before the measurements: never an input, its folder writable (guard); an earlier report is replaced
        from psenet_stream import guard

        guard.check_output(json_path, [p for p in (clip, weights) if p], overwrite=True, create_parent=True, what="report")
    if streams:
        _bench_streams(streams, stream_seconds, backends, threads, infer_size, weights, batch, json_path)
        return
    names = "auto" if backends.strip() == "auto" else [b.strip() for b in backends.split(",") if b.strip()]
    result = run_bench(
        names,
        parse_sizes(sizes) if sizes else None,
        frames=frames,
        weights=weights,
        clip=clip,
        batch=batch,
        file=not no_file,
        live=not no_live,
        live_frames=live_frames,
        threads=threads,
        preset=preset,
        compile_net=compile_net,
        rounds=rounds,
        infer_size=(infer_size if infer_size == "full" else int(infer_size)) if infer_size else None,
    )
    import shlex

    args = ["psenet-stream", "bench", "--backends", backends, "--frames", str(frames)]
    for flag, value in (("--sizes", sizes), ("--batch", batch), ("--threads", threads), ("--clip", clip), ("--weights", weights), ("--json", json_path), ("--infer-size", infer_size)):
        if value is not None:
            args += [flag, str(value)]
    if preset != "veryfast":
        args += ["--preset", preset]
    if rounds != 3:
        args += ["--rounds", str(rounds)]
    args += ["--compile"] * compile_net + ["--no-file"] * no_file + ["--no-live"] * no_live + ([] if no_live else ["--live-frames", str(live_frames)])
    result["meta"]["command"] = shlex.join(args)
    click.echo(format_table(result))
    if json_path:
        write_json(result, json_path, inputs=[p for p in (clip, weights) if p])
        click.echo(f"wrote {json_path}")


def _bench_streams(streams, seconds, backends, threads, infer_size, weights, batch, json_path) -> None:
    """``--streams N,M``: psenet_stream/serve/bench.py."""
    from psenet_stream.errors import UsageError
    from psenet_stream.evaluation.bench import write_json
    from psenet_stream.serve.bench import command_line, format_rows, run_streams_bench

    try:
        counts = sorted({int(v) for v in streams.split(",") if v.strip()})
    except ValueError:
        raise UsageError(f"bad --streams {streams!r}", "give stream counts, e.g. --streams 1,2,4,6") from None
    if not counts or counts[0] < 1:
        raise UsageError(f"bad --streams {streams!r}", "give stream counts of at least 1, e.g. --streams 1,2,4,6")
    backend = None if backends.strip() == "auto" else backends.strip()
    if backend is not None and "," in backend:
        raise UsageError("--streams measures one backend", "pass one --backends value, e.g. --backends onnx")
    result = run_streams_bench(
        counts, seconds=seconds, backend=backend, threads=threads, infer_size=infer_size, weights=weights, batch=batch,
        progress=lambda r: click.echo(f"  {r['mode']} x{r['n']}: holds {r.get('holds')}, worst p95 {r.get('worst_p95_ms')} ms, worst drops {r.get('worst_drop_pct')} %", err=True),
    )
    result["meta"]["command"] = command_line(counts, backends=backend, threads=threads, infer_size=infer_size, weights=weights, batch=batch, stream_seconds=seconds, json=json_path)
    click.echo(format_rows(result))
    click.echo(f"command: {result['meta']['command']}")
    if json_path:
        write_json(result, json_path)
        click.echo(f"wrote {json_path}")
