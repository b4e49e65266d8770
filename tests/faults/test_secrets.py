"""One mask for every secret (io/redact.py), attacked as a class: random secret-bearing URLs
(passwords in the user info, query parameters whose names only *look* secret, SRT
passphrases, RTMP stream keys in the path) given as the input and as the output of real CLI
runs against closed loopback ports, with -vv, --stats-json and a preview. Everything the
run prints (stdout, stderr) and every file it leaves is searched: the secret, raw or
percent-encoded, never appears.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psenet_stream.io.redact import is_secret_param, mask_text, mask_url, secrets_of
from tests.faults.conftest import FAST
from tests.live_helpers import free_port

N = int(os.environ.get("PSENET_SECRET_EXAMPLES", "200"))
N_CLI = int(os.environ.get("PSENET_SECRET_CLI_EXAMPLES", "5"))
SETTINGS = {"deadline": None, "derandomize": True, "database": None, "suppress_health_check": list(HealthCheck)}

# secrets: long enough that a random one never appears by chance; unreserved URL characters
# plus a few that must be percent-encoded
SECRET = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.~", min_size=10, max_size=24).map(lambda s: "Sx" + s)
ODD_SECRET = st.text(alphabet="abcdefXYZ0123456789$!*()@:/ ", min_size=10, max_size=20).map(lambda s: "Sq" + s + "9")
# names the rule must see as secret, beyond any list: a stem with anything around it
STEMS = ("pass", "pwd", "secret", "token", "auth", "key", "sig", "credential", "session", "cookie")
PARAM = st.builds(
    lambda pre, stem, post, upper: (pre + (stem.upper() if upper else stem) + post),
    st.sampled_from(["", "x-", "my_", "X-Amz-", "api", "access", "srt_"]),
    st.sampled_from(STEMS),
    st.sampled_from(["", "Id", "_value", "2", "-v1", "phrase"]),
    st.booleans(),
)


@st.composite
def secret_url(draw, schemes):
    """(url, [secrets]) with one to three secrets placed where a real camera or server puts them."""
    scheme = draw(st.sampled_from(schemes))
    port = draw(st.integers(1025, 65000))
    secrets: list[str] = []
    user = draw(st.sampled_from(["admin", "u", "cam-user"]))
    netloc = f"127.0.0.1:{port}"
    if draw(st.booleans()) or scheme not in ("rtmp", "srt"):
        pw = draw(st.one_of(SECRET, ODD_SECRET))
        secrets.append(pw)
        netloc = f"{user}:{quote(pw, safe='')}@{netloc}"
    path = draw(st.sampled_from(["/live", "/cam/1", "/stream", ""]))
    if scheme == "rtmp":
        key = draw(SECRET)
        secrets.append(key)
        path = f"/app/{key}"
    query = []
    for _ in range(draw(st.integers(0 if secrets else 1, 2))):
        name, value = draw(PARAM), draw(SECRET)
        query.append(f"{name}={value}")
        secrets.append(value)
    if scheme == "srt" and draw(st.booleans()):
        v = draw(SECRET)
        query.append(f"passphrase={v}")
        secrets.append(v)
    if draw(st.booleans()):
        query.insert(0, "transport=tcp")
    url = f"{scheme}://{netloc}{path}" + ("?" + "&".join(query) if query else "")
    return url, secrets


def forms(secret: str) -> list[str]:
    return [f for f in {secret, quote(secret, safe=""), quote(secret)} if len(f) >= 6]


def leaks(text: str, secrets: list[str]) -> list[str]:
    return [f for s in secrets for f in forms(s) if f in text]


@settings(max_examples=N, **SETTINGS)
@given(case=secret_url(("rtsp", "rtmp", "rtmps", "srt", "http", "https", "tcp", "udp")))
def test_every_mask_hides_every_secret(case):
    """The maskers themselves, on the URL alone and inside any sentence."""
    url, secrets = case
    assert not leaks(mask_url(url), secrets), (url, mask_url(url))
    line = f"error: cannot open {url}: Connection refused (while reading {url})"
    assert not leaks(mask_text(line), secrets), mask_text(line)
    assert not leaks(mask_text(f"got '{url}'", secrets_of(url)), secrets)


@settings(max_examples=N, **SETTINGS)
@given(name=PARAM)
def test_the_rule_sees_secret_names(name):
    assert is_secret_param(name)


def _run_and_collect(forkcli, args, root: Path) -> str:
    r = forkcli.run(args, cwd=root, timeout=120)
    assert not r["timed_out"], r["stderr"][-600:]
    assert "Traceback" not in r["stderr"], r["stderr"]
    text = r["stdout"] + "\n" + r["stderr"]
    for p in root.rglob("*"):
        if p.is_file() and p.stat().st_size < 5_000_000:
            text += "\n" + p.read_bytes().decode("utf-8", "replace") + "\n" + p.name
    return text


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    from tests.media import make_video

    p = tmp_path_factory.mktemp("secret-clip") / "c.mp4"
    make_video(p, width=64, height=48, frames=6, fps=10)
    return p


def test_secret_urls_as_input_never_printed(forkcli):
    @settings(max_examples=N_CLI, **SETTINGS)
    @given(case=secret_url(("rtsp", "rtmp", "http", "tcp")))
    def run(case):
        url, secrets = case
        root = Path(tempfile.mkdtemp(prefix="secret-in-"))
        try:
            url = url.replace(url.split("@")[-1].split("/")[0].split("?")[0], f"127.0.0.1:{free_port()}", 1) if "@" in url else url
            args = [url, "-o", "o.mp4", "--stats-json", "s.json", "-vv", "--max-retries", "0", "--timeout", "2", *FAST]
            text = _run_and_collect(forkcli, args, root)
            assert not leaks(text, secrets), (url, leaks(text, secrets), text[-1500:])
        finally:
            shutil.rmtree(root, ignore_errors=True)

    run()


def test_secret_urls_as_output_never_printed(forkcli, tiny_clip):
    @settings(max_examples=N_CLI, **SETTINGS)
    @given(case=secret_url(("rtsp", "rtmp", "srt", "tcp")), preview=st.booleans())
    def run(case, preview):
        url, secrets = case
        root = Path(tempfile.mkdtemp(prefix="secret-out-"))
        try:
            shutil.copy(tiny_clip, root / "c.mp4")
            args = ["c.mp4", "-o", url, "--stats-json", "s.json", "-vv", *FAST]
            if preview:
                args += ["--preview", "http", "--port", "0"]
            text = _run_and_collect(forkcli, args, root)
            assert not leaks(text, secrets), (url, leaks(text, secrets), text[-1500:])
        finally:
            shutil.rmtree(root, ignore_errors=True)

    run()
