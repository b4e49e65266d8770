"""``psenet-stream eval``: score weights on synthetic exposure errors, paired folders and clips."""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path

import click

from psenet_stream.errors import OutputError, PsenetError, UsageError

log = logging.getLogger("psenet_stream")


def _infer_size(value: str) -> int | str:
    if value == "full":
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a long side in pixels or 'full'") from None


def _label(base: str, infer_size, knee, sweep_size: bool, sweep_knee: bool) -> str:
    s = base
    if sweep_size:
        s += f" @{infer_size}"
    if sweep_knee:
        s += f" knee {knee:g}"
    return s


@click.command("eval")
@click.option("--data", "data", type=click.Path(file_okay=False), help="Folder of well-exposed photos (synthetic exposure errors).")
@click.option("--paired", type=click.Path(file_okay=False), help="Folder with input/ and gt/ sub-folders matched by file stem.")
@click.option(
    "--weights",
    "-w",
    multiple=True,
    help="Weight file(s) to score (.pt, or an official .pth imported on the fly). Default: the shipped weights.",
)
@click.option(
    "--compare", is_flag=True, help="Also score identity, CLAHE and the official sice/afifi checkpoints (when ../shared has them)."
)
@click.option(
    "--infer-size", "infer_sizes", multiple=True, help="Working resolution(s) for gamma: long side in pixels or 'full'. Repeat to sweep."
)
@click.option(
    "--highlight-knee", "knees", multiple=True, type=float, help="Highlight protection knee(s); 1.0 turns it off. Repeat to sweep."
)
@click.option(
    "--long-side", default=512, show_default=True, type=int, help="Photos are resized to this long side before the error is synthesised."
)
@click.option("--limit", type=int, help="Use only the first N photos (sorted by name).")
@click.option(
    "--family",
    "families",
    multiple=True,
    type=click.Choice(["linear", "camera"]),
    help="Degradation family for --data: linear (clip in linear light) and/or camera (noise, shoulder, JPEG, white balance) [default: both].",
)
@click.option("--backend", default="cpu", show_default=True, help="Backend for the networks (cpu is the reference).")
@click.option(
    "--threads", default=1, show_default=True, type=int, help="CPU threads for torch and OpenCV (1 is fastest on a busy machine)."
)
@click.option(
    "--flicker", "clips", multiple=True, type=click.Path(exists=True), help="Video clip(s) to measure flicker on (decoded with PyAV)."
)
@click.option(
    "--smoothing", "smoothings", multiple=True, type=float, help="Temporal smoothing value(s) for --flicker (default 0, 0.5, 0.8)."
)
@click.option(
    "--flicker-ev", "flicker_evs", multiple=True, type=float, help="Synthetic exposure error(s) on the clip frames (default 0 and -1.5)."
)
@click.option("--max-frames", default=200, show_default=True, type=int, help="Frames per clip for --flicker and --video.")
@click.option(
    "--video",
    "videos",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Real clip(s) given constant, hunting and stepped exposure errors: PSNR/SSIM vs the clean frames and flicker.",
)
@click.option("--video-long-side", default=320, show_default=True, type=click.IntRange(16, None), help="Clip frames are resized to this long side.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write all results as JSON.")
@click.option("--markdown", "md_out", type=click.Path(dir_okay=False), help="Write the tables as Markdown.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
def evaluate(
    data, paired, weights, compare, infer_sizes, knees, long_side, limit, families, backend,
    threads, clips, smoothings, flicker_evs, max_frames, videos, video_long_side, json_out, md_out, quiet,
):
    """Evaluate exposure correction: PSNR, SSIM, clipped pixels and the paper's score.

    \b
    psenet-stream eval --data photos/ --compare --json eval.json --markdown eval.md
    psenet-stream eval --data photos/ -w sice.pth --infer-size 128 --infer-size 256 --infer-size full
    psenet-stream eval --paired lol/ -w my.pt
    psenet-stream eval --video clip.mp4 --compare
    psenet-stream eval --flicker clip.mp4 --smoothing 0 --smoothing 0.8

    None = EV 0 (the photo itself: do no harm); under = EV -2.5, -1.5, -1; over = EV +1, +1.5,
    +2, applied to each photo after resizing it to --long-side, in two families (linear light
    with a hard clip; camera-like), then stored as 8-bit sRGB. Deterministic.
    """
    from psenet_stream.evaluation import photos as ev

    _set_threads(threads)
    if not (data or paired or clips or videos):
        raise UsageError("nothing to evaluate", "pass --data FOLDER, --paired DIR, --video CLIP or --flicker CLIP")
    reads = [data, paired, *weights, *clips, *videos]
    _check_reports(json_out, md_out, reads)  # before minutes of work: a report never replaces an input
    sizes = [_infer_size(s) for s in infer_sizes] or [None]
    knee_list = list(knees) or [None]
    progress = None if quiet else (lambda s: click.echo(s, err=True))
    with ev.temp_weights_dir() as tmp:
        nets, notes = _networks(weights, compare, tmp)
        for n in notes:
            log.warning("note: %s", n)
        result = _header(notes)
        md: list[str] = []
        methods = _methods(nets, compare, sizes, knee_list, backend) if data or paired else []
        for fam in (families or ev.FAMILIES) if data else ():
            result["synthetic" if fam == "linear" else f"synthetic_{fam}"], text = _synthetic(methods, data, limit, long_side, progress, fam)
            md.append(text)
        if paired:
            result["paired"], text = _paired(methods, paired, limit, long_side, progress)
            md.append(text)
        if videos:
            result["video"], text = _video(videos, nets, compare, sizes[0], backend, max_frames, video_long_side, progress)
            md.append(text)
        if clips:
            result["flicker"], text = _flicker(nets, clips, smoothings, flicker_evs, sizes[0], backend, max_frames, long_side, progress, notes)
            md.append(text)
    _report(md, notes, result, json_out, md_out, reads)


def _check_reports(json_out, md_out, reads) -> None:
    """The report files: never an input, never each other; an earlier report is replaced
    (they are regenerated artefacts), through a temporary name (``guard``)."""
    from psenet_stream import guard

    if json_out and md_out and guard.Protected([json_out]).covers(md_out):
        raise OutputError("--json and --markdown name the same file", "give each report its own file name")
    for p in (json_out, md_out):
        if p:
            guard.check_output(p, [r for r in reads if r], overwrite=True, create_parent=True, what="report")


def _set_threads(threads: int) -> None:
    if threads > 0:
        import cv2
        import torch

        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)


def _networks(weights, compare: bool, tmp) -> tuple[list[tuple[str, Path]], list[str]]:
    """(label, weight file) of every network to score, and notes on what was skipped."""
    from psenet_stream.evaluation import photos as ev
    from psenet_stream.paths import default_weights_path

    nets: list[tuple[str, Path]] = []
    notes: list[str] = []
    if compare:
        off = ev.official_checkpoints()
        for n in ("sice", "afifi"):
            if n in off:
                nets.append((f"official {n}", ev.as_project_weights(off[n], tmp)))
            else:
                notes.append(f"official {n}.pth not found (../shared/peers/psenet or $PSENET_SHARED): skipped")
    if weights:
        stems = [Path(w).stem for w in weights]
        for w, s in zip(weights, stems):
            nets.append((s if stems.count(s) == 1 else str(w), ev.as_project_weights(w, tmp)))
        return nets, notes
    d = default_weights_path()
    if d.is_file():
        nets.append((f"shipped ({d.name})", d))
    elif compare:
        notes.append(f"shipped weights {d} not found: skipped")
    else:
        raise UsageError(f"no weights: {d} does not exist", "pass --weights, or run psenet-stream train first")
    return nets, notes


def _methods(nets, compare: bool, sizes, knee_list, backend: str) -> list:
    """The methods to score: identity and CLAHE with --compare, then every network x size x knee."""
    from psenet_stream.evaluation import photos as ev

    ms = [ev.identity_method(), ev.clahe_method()] if compare else []
    for base, path in nets:
        for s in sizes:
            for k in knee_list:
                name = _label(base, s, k, len(sizes) > 1, len(knee_list) > 1)
                ms.append(ev.enhancer_method(path, name, infer_size=s, highlight_knee=k, backend=backend))
    return ms


def _header(notes: list[str]) -> dict:
    import shlex
    import sys

    from psenet_stream import __version__

    return {
        "version": __version__,
        "command": "psenet-stream " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "python": platform.python_version(),
        "notes": notes,
    }


def _synthetic(methods, data, limit, long_side: int, progress, family: str = "linear") -> tuple[dict, str]:
    """One degradation family on a photo folder: the results and their Markdown table."""
    from psenet_stream.evaluation import photos as ev

    files = ev.list_images(data)[: limit or None]
    photos = [(p.name, ev.load_photo(p, long_side)) for p in files]
    r = ev.evaluate_synthetic(methods, photos, progress=progress, family=family)
    r["setup"] = {
        "data": str(data),
        "photos": [p.name for p in files],
        "long_side": long_side,
        "family": family,
        "subsets": {k: list(v) for k, v in ev.SUBSETS.items()},
    }
    how = "linear light, hard clip" if family == "linear" else "camera-like: noise, soft shoulder or clip, white balance, JPEG"
    title = (
        f"{family.capitalize()} family ({how}) on {len(files)} photos from `{data}`, long side {long_side} px; "
        f"none = EV 0 (the photo itself: do no harm), under = EV {', '.join(f'{e:+g}' for e in ev.UNDER_EVS)}, "
        f"over = EV {', '.join(f'{e:+g}' for e in ev.OVER_EVS)}, all = under + over. "
        "PSNR (dB) / SSIM / ΔY (mean luma error, 8-bit levels) against the original photo; "
        "clip % = pixels with a channel at 0 or 255; NR = mean paper quality score x1000."
    )
    return r, ev.to_markdown(r, title)


def _video(videos, nets, compare: bool, infer_size, backend: str, max_frames: int, long_side: int, progress) -> tuple[dict, str]:
    """The video groups: each network as the CLI runs it on video (its temporal defaults), and
    with --compare the identity and every network frame by frame (no temporal filtering)."""
    from psenet_stream.defaults import VIDEO_GAMMA_EVERY, VIDEO_SMOOTHING, VIDEO_STABILIZE
    from psenet_stream.enhancer import Enhancer
    from psenet_stream.evaluation import video as vq

    def factory(path, smoothing, stabilize=0.0, gamma_every=1):
        opts = {"smoothing": smoothing, "stabilize": stabilize, "gamma_every": gamma_every} | ({"infer_size": infer_size} if infer_size is not None else {})
        return lambda: Enhancer.from_pretrained(str(path), backend=backend, **opts)

    methods = {"identity": lambda: (lambda x: x)} if compare else {}
    for base, path in nets:
        if compare or base.startswith("official"):
            methods[f"{base}, frame by frame"] = factory(path, 0.0)
        if not base.startswith("official"):
            methods[f"{base}, video defaults"] = factory(path, VIDEO_SMOOTHING, VIDEO_STABILIZE, VIDEO_GAMMA_EVERY)
    clips = [vq.load_clip(v, max_frames, long_side) for v in videos]
    r = vq.evaluate_video(clips, methods, progress=progress)
    r["setup"] = {"clips": [c[0] for c in clips], "frames": [len(c[1]) for c in clips], "long_side": long_side}
    title = (
        f"Video: {len(clips)} real clips ({', '.join(c[0] for c in clips)}), at most {max_frames} frames, long side {long_side} px. "
        "Variants: constant EV -2 and +1.5, an auto-exposure hunt (EV -0.5 +- 1 over 1.5 s) and a step from EV 0 to -2 halfway. "
        "PSNR over the clip and SSIM against the clean frames; flicker = mean |frame-to-frame change of mean luma| (8-bit levels); "
        "settle = frames the output needs to follow the step within 2 levels."
    )
    return r, vq.to_markdown(r, title)


def _paired(methods, paired, limit, long_side: int, progress) -> tuple[dict, str]:
    from psenet_stream.evaluation import photos as ev

    pairs = ev.find_pairs(paired)[: limit or None]
    r = ev.evaluate_paired(methods, pairs, long_side, progress=progress)
    r["setup"] = {"paired": str(paired), "pairs": len(pairs), "long_side": long_side}
    return r, ev.to_markdown(r, f"Paired folder `{paired}`: {len(pairs)} inputs, ground truth resized to long side {long_side} px.")


def _flicker(nets, clips, smoothings, flicker_evs, infer_size, backend: str, max_frames: int, long_side: int, progress, notes: list[str]) -> tuple[list, str]:
    """Flicker of every network x clip x EV x smoothing: the rows and their Markdown table."""
    from psenet_stream.enhancer import Enhancer
    from psenet_stream.evaluation.flicker import measure_flicker

    rows = []
    for base, path in nets:
        for clip in clips:
            for e in list(flicker_evs) or [0.0, -1.5]:
                for s in list(smoothings) or [0.0, 0.5, 0.8]:
                    opts = {"smoothing": s} | ({"infer_size": infer_size} if infer_size is not None else {})
                    enh = Enhancer.from_pretrained(str(path), backend=backend, **opts)
                    try:
                        f = measure_flicker(clip, enh, max_frames, ev=e, long_side=long_side)
                    except PsenetError as err:  # one unreadable clip does not lose the others
                        notes.append(f"flicker: {err.problem}: skipped")
                        log.warning("flicker: %s: skipped", err.problem)
                        continue
                    f.update({"clip": Path(clip).name, "weights": base, "sha256": enh.meta.get("sha256")})
                    rows.append(f)
                    if progress:
                        progress(f"flicker {base} {Path(clip).name} ev {e:+g} smoothing {s:g}: out/in {f['ratio']:.2f}")
    return rows, _flicker_markdown(rows, long_side, max_frames)


def _flicker_markdown(rows: list, long_side: int, max_frames: int) -> str:
    lines = [
        (
            f"Flicker (frames resized to long side {long_side} px, at most {max_frames} frames): "
            "mean absolute frame-to-frame change of mean luma in 8-bit levels (input, output), their ratio, "
            "and of mean log γ."
        ),
        "",
        "| weights | clip | EV | smoothing | frames | in mean abs ΔY | out mean abs ΔY | out/in | out std ΔY | mean abs Δ log γ | std Δ log γ | scene cuts |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in rows:
        g = f.get("log_gamma", {})
        lines.append(
            f"| {f['weights']} | {f['clip']} | {f['ev']:+g} | {f['smoothing']:g} | {f['frames']} | {f['input']['mean_abs_delta']:.3f} | "
            f"{f['output']['mean_abs_delta']:.3f} | {f['ratio']:.2f} | {f['output']['std_delta']:.3f} | "
            f"{g.get('mean_abs_delta', float('nan')):.4f} | {g.get('std_delta', float('nan')):.4f} | {f['scene_cuts']} |"
        )
    return "\n".join(lines) + "\n"


def _report(md: list[str], notes: list[str], result: dict, json_out, md_out, reads=()) -> None:
    from psenet_stream import guard

    text = "\n".join(md)
    click.echo(text)
    for n in notes:
        click.echo(f"note: {n}")
    inputs = [r for r in reads if r]
    if json_out:
        guard.write_text(json_out, json.dumps(result, indent=2, default=str) + "\n", inputs, overwrite=True, create_parent=True, what="report")
    if md_out:
        guard.write_text(md_out, text + "".join(f"\nNote: {n}\n" for n in notes), inputs, overwrite=True, create_parent=True, what="report")
