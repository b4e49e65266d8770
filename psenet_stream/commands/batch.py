"""``psenet-stream batch INPUTS... -o OUTDIR [--ray auto|ADDRESS] [--jobs N]``: a library of
files, each enhanced by the single-file path (psenet_stream/batch.py), on a local process
pool or, with --ray, one Ray task per file (psenet_stream/scale/ray_batch.py).

Re-running the same command skips every finished output; the summary lists done, skipped
and failed files (with the reason for each failure) and frames/s per node.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path

import click

from psenet_stream.commands._common import EnhancerOptions, ReportOptions, enhancer_options, report_options, setup_logging, stop_on_signals
from psenet_stream.errors import Interrupted, OutputError, PsenetError


def default_jobs() -> int:
    """Local pool size: half the cores, at least 1 (each job also decodes and encodes in
    threads of its own beside its one inference thread)."""
    return max(1, (os.cpu_count() or 2) // 2)


@click.command("batch")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUTS...")
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False), help="Output folder (created); inputs keep their names and folder layout there.")
@click.option("--ray", "ray_address", metavar="auto|ADDRESS", help="Run one task per file on a Ray cluster (auto: the one `ray start` made here; HOST:6379; ray://HOST:10001). Needs psenet-stream[ray].")
@click.option("-y", "--overwrite", is_flag=True, help="Redo files whose output exists (each replaced atomically when done); default: skip them, so a re-run resumes.")
@click.option("--jobs", type=click.IntRange(1, 4096), help="Files at a time: local processes (default: half the cores), or tasks in flight on Ray (default: twice the cluster's CPUs).")
@click.option("--codec", help="Video encoder (default libx264; libvpx-vp9 for .webm).")
@click.option("--crf", type=click.IntRange(0, 63), help="Encoder quality (default 18).")
@click.option("--preset", help="Encoder speed preset (default veryfast).")
@enhancer_options()
@report_options()
def batch(inputs, outdir, ray_address, overwrite, jobs, codec, crf, preset, enhancer: EnhancerOptions, report: ReportOptions):
    """Enhance many files: folders, globs ('lib/**/*.mp4') and list files (.txt, one path a line).

    \b
    psenet-stream batch library/ -o enhanced/            local process pool
    psenet-stream batch list.txt -o /mnt/out --ray auto  one Ray task per file
    """
    from psenet_stream import batch as b

    setup_logging(report.verbose, report.quiet)
    if ray_address:
        from psenet_stream.scale import connect

        connect(ray_address)  # no Ray, or no cluster there: a clear message before anything is made
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {out} is a file", "pass a folder with -o")
    jobs_list = b.plan(inputs, out)
    if not jobs_list:
        raise PsenetError("no video or image files in the inputs", "pass folders, files, globs or list files of videos/images")
    if crf is not None or codec:  # each output container's encoder takes these (or exit 2 now, not per file)
        from psenet_stream.io.video import check_encoder_settings

        for suffix in sorted({Path(j.output).suffix for j in jobs_list if j.kind == "video"}):
            check_encoder_settings(codec, f"x{suffix}", crf=crf)
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise OutputError(f"cannot write to {out}", "choose an output folder you can write to")
    if report.stats_json and Path(report.stats_json).resolve().is_relative_to(out.resolve()):
        raise OutputError("--stats-json is inside the output folder", "write the statistics elsewhere")
    todo, skipped = (jobs_list, []) if overwrite else b.split_done(jobs_list)
    enh = asdict(enhancer)
    if enh.get("threads") is None and not ray_address:  # the pool shares the cores: half of each job's share for inference
        enh["threads"] = max(1, (os.cpu_count() or 2) // (jobs or default_jobs()) // 2)
    settings = b.Settings(enhancer=enh, encode={"codec": codec, "crf": crf, "preset": preset}, run_id=b.new_run_id(), outdir=str(out.absolute()), overwrite=overwrite)
    where = f"Ray cluster {ray_address}" if ray_address else f"{jobs or default_jobs()} local process(es)"
    if not report.quiet:
        click.echo(f"batch: {len(jobs_list)} files, {len(skipped)} already done, {len(todo)} to run on {where}", err=True)
    prog = b.BatchProgress(len(jobs_list), report.show_progress())
    for r in skipped:
        prog.add(r)
    stop = threading.Event()
    t0 = time.perf_counter()
    try:
        with stop_on_signals(stop):
            if ray_address:
                from psenet_stream.scale import ray_batch

                results = ray_batch.run(todo, settings, address=ray_address, max_in_flight=jobs, on_result=prog.add, stop=stop)
            else:
                results = b.run_local(todo, settings, workers=jobs or default_jobs(), on_result=prog.add, stop=stop)
    finally:
        prog.close()
        b.cleanup_staging(out, settings.run_id)
    summary = b.Summary(results=skipped + results, seconds=time.perf_counter() - t0)
    if report.stats_json:
        tmp = Path(report.stats_json).with_name(f".{Path(report.stats_json).name}.{os.getpid()}.partial")
        tmp.write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
        tmp.replace(report.stats_json)
    if not report.quiet:
        for line in summary.lines():
            click.echo(line, err=True)
    if stop.is_set():
        raise Interrupted(f"interrupted: {summary.count('done')} files done; run the same command again to finish the rest")
    if summary.count("failed"):
        raise PsenetError(
            f"{summary.count('failed')} of {len(jobs_list)} files failed (listed above)",
            "fix them and run again: finished files are skipped",
            exit_code=summary.exit_code(),
        )
