"""The output guard (psenet_stream/guard.py) attacked as a class: random relations between an
output path and the inputs (the same file by another spelling, a symbolic link, a hard link,
a link to an ancestor folder, a dangling link, a folder), random overwrite flags; and the
commands that write files (folder runs with the output folder anywhere around the input
folder, --stats-json, reports, weights) with the filesystem refusing in every usual way.

Whatever the relation: an input's bytes never change, an existing file changes only with
the flag, no temporary file is left, and a refusal is one clear OutputError (exit 4).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psenet_stream import guard
from psenet_stream.errors import EXIT_BACKEND, EXIT_OUTPUT, OutputError
from tests.faults.conftest import FAST, assert_clean_error

N = int(os.environ.get("PSENET_GUARD_EXAMPLES", "60"))
N_CLI = int(os.environ.get("PSENET_GUARD_CLI_EXAMPLES", "6"))
SETTINGS = {"deadline": None, "derandomize": True, "database": None, "suppress_health_check": list(HealthCheck)}

INPUT_BYTES = b"INPUT-BYTES-never-changed"
OTHER_BYTES = b"an existing file that is not an input"

# How the output path relates to the input file root/d/in.jpg.
IS_INPUT = ("same", "dot_spelling", "parent_spelling", "double_slash", "relative", "symlink", "hardlink", "dir_symlink", "symlink_chain")
RELATIONS = (*IS_INPUT, "folder", "ancestor_folder", "fresh", "fresh_in_input_folder", "other_existing", "dangling_link", "fifo")


def _temps(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.name.startswith(".psenet-")]


def _output_for(rel: str, root: Path) -> Path:
    d = root / "d"
    inp = d / "in.jpg"
    if rel == "same":
        return inp
    if rel == "dot_spelling":
        return Path(f"{d}/./in.jpg")
    if rel == "parent_spelling":
        (d / "x").mkdir(exist_ok=True)
        return Path(f"{d}/x/../in.jpg")
    if rel == "double_slash":
        return Path(str(root) + "//d//in.jpg")
    if rel == "relative":
        return Path(os.path.relpath(inp))
    if rel == "symlink":
        (root / "ln.jpg").symlink_to(inp)
        return root / "ln.jpg"
    if rel == "symlink_chain":
        (root / "ln1.jpg").symlink_to(inp)
        (root / "ln2.jpg").symlink_to(root / "ln1.jpg")
        return root / "ln2.jpg"
    if rel == "hardlink":
        os.link(inp, root / "hard.jpg")
        return root / "hard.jpg"
    if rel == "dir_symlink":
        (root / "dl").symlink_to(d, target_is_directory=True)
        return root / "dl" / "in.jpg"
    if rel == "folder":
        return d
    if rel == "ancestor_folder":
        return root
    if rel == "fresh":
        return root / "new.jpg"
    if rel == "fresh_in_input_folder":
        return d / "new.jpg"
    if rel == "other_existing":
        (root / "other.jpg").write_bytes(OTHER_BYTES)
        return root / "other.jpg"
    if rel == "dangling_link":
        (root / "dang.jpg").symlink_to(root / "nowhere.jpg")
        return root / "dang.jpg"
    if rel == "fifo":
        os.mkfifo(root / "pipe.jpg")
        return root / "pipe.jpg"
    raise AssertionError(rel)


@settings(max_examples=N, **SETTINGS)
@given(rel=st.sampled_from(RELATIONS), overwrite=st.booleans(), input_as=st.sampled_from(["file", "folder", "link_to_file", "link_to_folder"]))
def test_guard_never_replaces_an_input(rel, overwrite, input_as):
    root = Path(tempfile.mkdtemp(prefix="guard-"))
    cwd = os.getcwd()
    try:
        os.chdir(root)
        d = root / "d"
        d.mkdir()
        inp = d / "in.jpg"
        inp.write_bytes(INPUT_BYTES)
        given_input = {"file": inp, "folder": d}.get(input_as)
        if given_input is None:  # the input itself given through a link
            target = inp if input_as == "link_to_file" else d
            given_input = root / f"in-link-{input_as}"
            given_input.symlink_to(target)
        out = _output_for(rel, root)
        before = out.read_bytes() if out.is_file() else None
        allowed = rel in ("fresh", "fresh_in_input_folder") or (overwrite and rel in ("other_existing", "dangling_link"))
        try:
            guard.write_bytes(out, b"NEW", [given_input], overwrite=overwrite)
            wrote = True
        except OutputError as e:
            wrote = False
            assert str(e), "an OutputError names the problem"
        assert wrote == allowed, (rel, overwrite, input_as)
        assert inp.read_bytes() == INPUT_BYTES, "an input was replaced"
        if wrote:
            assert Path(out).read_bytes() == b"NEW"
        elif before is not None and rel not in IS_INPUT:
            assert Path(out).read_bytes() == before, "a refused write changed the existing file"
        if rel == "fifo":
            assert Path(out).is_fifo()
        assert not _temps(root), _temps(root)
    finally:
        os.chdir(cwd)
        shutil.rmtree(root, ignore_errors=True)


@settings(max_examples=N, **SETTINGS)
@given(fail_at=st.sampled_from(["write", "before_commit", "commit_race"]), overwrite=st.booleans())
def test_guard_leaves_no_temporary_on_failure(fail_at, overwrite):
    """An exception while writing, or a file appearing under the final name while writing:
    the temporary is removed, the file that appeared is kept (without the flag)."""
    root = Path(tempfile.mkdtemp(prefix="guard-"))
    try:
        final = root / "out.json"
        with contextlib.suppress(RuntimeError, OutputError), guard.atomic_output(final, overwrite=overwrite) as tmp:
            tmp.write_bytes(b"partial")
            if fail_at == "write":
                raise RuntimeError("disk on fire")
            if fail_at == "commit_race":
                final.write_bytes(OTHER_BYTES)
        if fail_at == "write":
            assert not final.exists()
        elif fail_at == "commit_race":
            assert final.read_bytes() == (b"partial" if overwrite else OTHER_BYTES)
        else:
            assert final.read_bytes() == b"partial"
        assert not _temps(root)
        assert not [t for t in guard.live_temps() if t.startswith(str(root))]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_guard_refuses_outputs_under_a_file_and_in_missing_folders(tmp_path):
    f = tmp_path / "afile"
    f.write_bytes(b"x")
    with pytest.raises(OutputError, match="which is a file"):
        guard.check_output(f / "sub" / "out.mp4")
    with pytest.raises(OutputError, match="does not exist"):
        guard.check_output(tmp_path / "missing" / "out.mp4")
    guard.check_output(tmp_path / "missing" / "out.mp4", create_parent=True)
    assert (tmp_path / "missing").is_dir()


@contextlib.contextmanager
def immutable(path: Path):
    """``path`` made unwritable even for root (chattr +i); skips where that is impossible."""
    r = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"chattr +i not possible here: {r.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)


def test_guard_read_only_folder(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    with immutable(d), pytest.raises(OutputError, match="cannot write to directory"):
        guard.check_output(d / "out.mp4")


# --- the commands ----------------------------------------------------------------------------


def _png(path: Path, value: int) -> None:
    import cv2
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    _ok, buf = cv2.imencode(".png", np.full((12, 16, 3), value, np.uint8))
    path.write_bytes(buf.tobytes())


def _digest(paths) -> dict[str, bytes]:
    return {str(p): Path(p).read_bytes() for p in paths}


# where the output folder goes, relative to the input folder root/p, which holds img.png and p/img.png
FOLDER_OUTPUTS = ("ancestor", "same", "same_spelled", "link_to_input", "inside", "inside_sub", "sibling", "link_to_ancestor")


def _folder_output(kind: str, root: Path) -> str:
    inp = root / "p"
    if kind == "ancestor":  # frames named p/img.png land on root/p/img.png: the input image
        return str(root)
    if kind == "same":
        return str(inp)
    if kind == "same_spelled":
        return f"{root}/./p/../p/"
    if kind == "link_to_input":
        (root / "lnk").symlink_to(inp, target_is_directory=True)
        return str(root / "lnk")
    if kind == "inside":
        return str(inp / "out")
    if kind == "inside_sub":
        return str(inp / "p")
    if kind == "sibling":
        return str(root / "sib")
    if kind == "link_to_ancestor":
        (root / "up").symlink_to(root, target_is_directory=True)
        return str(root / "up")
    raise AssertionError(kind)


def test_folder_output_around_the_input_never_replaces_an_input(forkcli):
    @settings(max_examples=N_CLI, **SETTINGS)
    @given(kind=st.sampled_from(FOLDER_OUTPUTS), overwrite=st.booleans())
    def run(kind, overwrite):
        root = Path(tempfile.mkdtemp(prefix="guard-folder-"))
        try:
            inp = root / "p"
            images = [inp / "img.png", inp / "p" / "img.png", inp / "q" / "b.png"]
            for i, im in enumerate(images):
                _png(im, 40 + 60 * i)
            before = _digest(images)
            out = _folder_output(kind, root)
            r = forkcli.run([inp, "-o", out, *FAST, *(["--overwrite"] if overwrite else [])], timeout=120)
            assert not r["timed_out"], r["stderr"][-800:]
            assert r["rc"] in (0, EXIT_OUTPUT), r["stderr"]
            assert "Traceback" not in r["stderr"] and "internal error" not in r["stderr"], r["stderr"]
            out_real = Path(os.path.realpath(out))
            read = [im for im in images if out_real not in Path(os.path.realpath(im)).parents]  # a nested output folder is not read
            after = _digest(images)
            assert {k: after[k] for k in map(str, read)} == {k: before[k] for k in map(str, read)}, f"{kind}: an input image was replaced"
            if not overwrite:
                assert after == before, f"{kind}: an existing file was replaced without --overwrite"
            assert not _temps(root), _temps(root)
            if r["rc"] == EXIT_OUTPUT:
                assert "error: " in r["stderr"] and "hint: " in r["stderr"]
        finally:
            shutil.rmtree(root, ignore_errors=True)

    run()


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory) -> Path:
    from tests.media import make_video

    p = tmp_path_factory.mktemp("guard-clip") / "clip.mp4"
    make_video(p, width=64, height=48, frames=6, fps=10)
    return p


def test_stats_json_and_output_relations(forkcli, small_clip, tmp_path):
    """--stats-json and -o against the input through links: refused before any work, input intact."""
    inp = tmp_path / "in.mp4"
    shutil.copy(small_clip, inp)
    (tmp_path / "ln.mp4").symlink_to(inp)
    os.link(inp, tmp_path / "hard.mp4")
    data = inp.read_bytes()
    for extra in (
        ["-o", tmp_path / "o.mp4", "--stats-json", tmp_path / "ln.mp4", "--overwrite"],
        ["-o", tmp_path / "o.mp4", "--stats-json", tmp_path / "hard.mp4", "--overwrite"],
        ["-o", tmp_path / "hard.mp4", "--overwrite"],
        ["-o", f"{tmp_path}/./x/../in.mp4", "--overwrite"],
        ["-o", tmp_path / "o2.mp4", "--stats-json", tmp_path / "o2.mp4"],
    ):
        (tmp_path / "x").mkdir(exist_ok=True)
        r = forkcli.run([inp, *FAST, *extra], timeout=90)
        assert r["rc"] == EXIT_OUTPUT, (extra, r["stderr"])
        assert "error: " in r["stderr"] and "hint: " in r["stderr"] and "Traceback" not in r["stderr"]
        assert inp.read_bytes() == data
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o2.mp4").exists()
    assert not _temps(tmp_path)


def test_user_mistakes_exit_with_their_own_code(forkcli, small_clip, tmp_path):
    """An output under a regular file, in a read-only folder, a --stats-json there: exit 4 with
    a clear line (was: internal error, exit 1)."""
    afile = tmp_path / "afile"
    afile.write_bytes(b"x")
    r = forkcli.run([small_clip, *FAST, "-o", afile / "out.mp4"])
    assert_clean_error(_cp(r), EXIT_OUTPUT, "is a file")
    r = forkcli.run([small_clip, *FAST, "-o", tmp_path / "o.mp4", "--stats-json", afile / "s" / "s.json"])
    assert_clean_error(_cp(r), EXIT_OUTPUT, "is a file")
    img = tmp_path / "imgs"
    _png(img / "a.png", 50)
    r = forkcli.run([img, *FAST, "-o", afile / "folder"])
    assert_clean_error(_cp(r), EXIT_OUTPUT)
    ro = tmp_path / "ro"
    ro.mkdir()
    with immutable(ro):
        r = forkcli.run([small_clip, *FAST, "-o", ro / "out.mp4"])
        assert_clean_error(_cp(r), EXIT_OUTPUT, "cannot write")
        r = forkcli.run([img, *FAST, "-o", ro])
        assert_clean_error(_cp(r), EXIT_OUTPUT, "cannot write")
        r = forkcli.run(["eval", "--data", img, "--json", ro / "e.json", "--limit", "1"])
        assert_clean_error(_cp(r), EXIT_OUTPUT, "cannot write")
    assert not _temps(tmp_path)


def _cp(r: dict) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess([], r["rc"], r["stdout"].encode(), r["stderr"].encode())


def test_bad_weights_are_a_backend_error(forkcli, small_clip, tmp_path):
    """A weight file whose state_dict is a list, or that holds NaN: exit 5 with the reason."""
    import torch

    from psenet_stream.model import PSENet
    from psenet_stream.weights_io import FORMAT

    sd = PSENet().state_dict()
    listed = tmp_path / "list.pt"
    torch.save({"format": FORMAT, "state_dict": list(sd.values()), "meta": {}}, listed)
    nan = tmp_path / "nan.pt"
    bad = {k: v.clone() for k, v in sd.items()}
    first = next(k for k, v in bad.items() if v.is_floating_point())
    bad[first].view(-1)[0] = float("nan")
    torch.save({"format": FORMAT, "state_dict": bad, "meta": {}}, nan)
    r = forkcli.run([small_clip, *FAST, "-o", tmp_path / "a.mp4", "--weights", listed])
    assert_clean_error(_cp(r), EXIT_BACKEND, "state_dict is a list")
    r = forkcli.run([small_clip, *FAST, "-o", tmp_path / "b.mp4", "--weights", nan])
    assert_clean_error(_cp(r), EXIT_BACKEND, "NaN")
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "b.mp4").exists()


@pytest.mark.parametrize("how", ["under_a_file", "immutable"])
def test_unusable_onnx_cache_falls_back_to_cpu(forkcli, small_clip, tmp_path, how):
    """Weights with no shipped ONNX export into the cache; a cache that cannot be written is
    named in a warning and the run goes on with the cpu backend (was: internal error, OSError 30)."""
    import torch

    from psenet_stream.model import PSENet
    from psenet_stream.weights_io import save_weights

    torch.manual_seed(3)
    w = tmp_path / "custom.pt"
    save_weights(w, PSENet().state_dict(), {"note": "no ONNX beside these"})
    if how == "under_a_file":
        (tmp_path / "afile").write_bytes(b"x")
        cache = tmp_path / "afile" / "cache"
        ctx = contextlib.nullcontext()
    else:
        cache = tmp_path / "cache"
        cache.mkdir()
        ctx = immutable(cache)
    with ctx:
        for backend in ("onnx", "auto"):
            out = tmp_path / f"out-{how}-{backend}.mp4"
            args = [small_clip, "-o", out, "--backend", backend, "--infer-size", "48", "--threads", "1", "--weights", w]
            r = forkcli.run(args, timeout=120, env={"PSENET_STREAM_CACHE": str(cache)})
            err = r["stderr"]
            assert r["rc"] == 0, err
            if backend == "onnx" or "onnx" in err:
                assert str(cache) in err and "cpu backend" in err, err
            assert out.is_file()


def test_several_inputs_never_write_onto_each_other(forkcli, small_clip, tmp_path):
    """`psenet-stream a.mp4 a_enhanced.mp4 -y`: the first input's default output is the second
    input. Found by this class (issue 11 added several inputs); refused for that input, the
    other one still runs, the second input's bytes never change."""
    a = tmp_path / "a.mp4"
    b = tmp_path / "a_enhanced.mp4"
    shutil.copy(small_clip, a)
    shutil.copy(small_clip, b)
    data = b.read_bytes()
    r = forkcli.run([a, b, "-y", *FAST], timeout=120)
    assert r["rc"] == EXIT_OUTPUT, r["stderr"]
    assert "is an input" in r["stderr"] and "Traceback" not in r["stderr"], r["stderr"]
    assert b.read_bytes() == data
    assert (tmp_path / "a_enhanced_enhanced.mp4").is_file()  # the second input still ran
    assert not _temps(tmp_path)
