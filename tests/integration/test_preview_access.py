"""Who the browser preview answers (io/http_preview.py), against the real server on loopback:
the Host header (DNS rebinding), the token, IPv6, a bounded number of viewers, slow
viewers dropped."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from psenet_stream.io.frames import Frame, StreamInfo
from psenet_stream.io.http_preview import HttpPreviewSink, is_loopback

pytestmark = pytest.mark.timeout(90)


@contextlib.contextmanager
def serving(**kw):
    """A preview sink fed noise frames (poorly compressible: buffers fill fast) until the end."""
    sink = HttpPreviewSink(StreamInfo(320, 240, live=True), port=0, announce=False, **kw)
    stop = threading.Event()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(4)]

    def feed():
        i = 0
        while not stop.is_set():
            f = frames[i % 4]
            sink.write(Frame(rgb=f, index=i, t_capture=time.perf_counter()), f)
            i += 1
            time.sleep(0.01)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    try:
        yield sink
    finally:
        stop.set()
        t.join(2)
        sink.close()


def raw_get(host: str, port: int, path: str, host_header: str, *, family=socket.AF_INET, extra: str = "") -> tuple[int, bytes, socket.socket]:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect((host, port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\n{extra}\r\n".encode())
    head = b""
    while b"\r\n" not in head:
        chunk = s.recv(1024)
        if not chunk:
            break
        head += chunk
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, head, s


def status_of(*args, **kw) -> int:
    st, _, s = raw_get(*args, **kw)
    s.close()
    return st


@pytest.mark.parametrize("host_header", ["evil.example:{port}", "attacker.test", "127.0.0.1.nip.io:{port}", "", "localhost.evil.example"])
def test_loopback_server_refuses_foreign_host_headers(host_header):
    """A page on evil.example whose name rebinds to 127.0.0.1 sends Host: evil.example: 403."""
    with serving() as sink:
        for path in ("/", "/stream.mjpg", "/snapshot.jpg", "/stats.json"):
            assert status_of("127.0.0.1", sink.port, path, host_header.format(port=sink.port)) == 403
        for good in (f"127.0.0.1:{sink.port}", f"localhost:{sink.port}", "localhost", f"[::1]:{sink.port}"):
            assert status_of("127.0.0.1", sink.port, "/stats.json", good) == 200, good


def test_token_guards_every_path():
    with serving(token="s3cret-token") as sink:
        h = f"127.0.0.1:{sink.port}"
        for path in ("/", "/stream.mjpg", "/snapshot.jpg", "/stats.json"):
            assert status_of("127.0.0.1", sink.port, path, h) == 401
            assert status_of("127.0.0.1", sink.port, path + "?token=wrong", h) == 401
        assert status_of("127.0.0.1", sink.port, "/stats.json?token=s3cret-token", h) == 200
        assert status_of("127.0.0.1", sink.port, "/stats.json", h, extra="Authorization: Bearer s3cret-token\r\n") == 200
        page = urllib.request.urlopen(f"{sink.url}?token=s3cret-token", timeout=10).read().decode()
        assert "/stream.mjpg?token=s3cret-token" in page  # the page passes it on to the stream
        st, head, s = raw_get("127.0.0.1", sink.port, "/stream.mjpg?token=s3cret-token", h)
        s.close()
        assert st == 200 and b"multipart/x-mixed-replace" in head + b"multipart/x-mixed-replace"


def test_beyond_loopback_a_token_is_generated_and_printed_once(capfd):
    """Bound to every interface: a token is required, generated when none is given, printed once."""
    sink = HttpPreviewSink(StreamInfo(64, 48, live=True), bind="0.0.0.0", port=0)
    try:
        err = capfd.readouterr().err
        assert sink.token and len(sink.token) >= 16
        assert err.count(sink.token) == 1, err
        assert status_of("127.0.0.1", sink.port, "/stats.json", "192.0.2.1") == 401
        assert status_of("127.0.0.1", sink.port, f"/stats.json?token={sink.token}", "192.0.2.1") == 200
    finally:
        sink.close()
    assert sink.token not in capfd.readouterr().err


def test_ipv6_loopback_bind():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        sink_cm = serving(bind="::1")
        sink = sink_cm.__enter__()
    except Exception as e:  # noqa: BLE001 - a machine without an IPv6 loopback cannot run this test
        pytest.skip(f"cannot bind ::1 here: {e}")
    try:
        assert sink.url.startswith("http://[::1]:")
        assert sink.token is None  # loopback: no token needed
        assert status_of("::1", sink.port, "/stats.json", f"[::1]:{sink.port}", family=socket.AF_INET6) == 200
        assert status_of("::1", sink.port, "/stats.json", "evil.example", family=socket.AF_INET6) == 403
        body = urllib.request.urlopen(f"http://[::1]:{sink.port}/stats.json", timeout=10).read()
        assert b"frames" in body
    finally:
        sink_cm.__exit__(None, None, None)


def test_viewers_are_bounded_and_slow_ones_dropped():
    """max_clients streams at once (503 beyond); a viewer that stops reading is dropped after
    send_timeout, which frees its place."""
    with serving(max_clients=2, send_timeout=1.0) as sink:
        h = f"127.0.0.1:{sink.port}"
        socks = []
        for _ in range(2):  # two viewers that never read: they fill their buffers and stall
            st, _, s = raw_get("127.0.0.1", sink.port, "/stream.mjpg", h)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            assert st == 200
            socks.append(s)
        assert status_of("127.0.0.1", sink.port, "/stream.mjpg", h) == 503
        assert status_of("127.0.0.1", sink.port, "/stats.json", h) == 200  # short requests still served
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:  # the stalled viewers are dropped; a new one gets in
            st = status_of("127.0.0.1", sink.port, "/stream.mjpg", h)
            if st == 200:
                break
            time.sleep(0.5)
        assert st == 200, "stalled viewers were never dropped"
        for s in socks:
            s.close()


def test_silent_connections_are_closed():
    """A client that connects and sends nothing (slowloris) is closed after send_timeout."""
    with serving(send_timeout=1.0) as sink:
        s = socket.create_connection(("127.0.0.1", sink.port), timeout=10)
        t0 = time.monotonic()
        assert s.recv(10) == b""  # closed by the server
        assert time.monotonic() - t0 < 8
        s.close()


@pytest.mark.parametrize("bind,loop", [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.0.2.1", False), ("127.8.9.1", True)])
def test_is_loopback(bind, loop):
    assert is_loopback(bind) is loop


def test_unknown_url_still_needs_the_token():
    with serving(token="tok-123456") as sink:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{sink.url}nothing", timeout=10)
        assert e.value.code == 401
