"""Credentials never reach logs or errors: URL masking, free-text masking, the logging filter."""

from __future__ import annotations

import logging

import pytest

from psenet_stream.io.redact import RedactingFilter, Redactor, mask_text, mask_url, secrets_of


@pytest.mark.parametrize(
    "url, masked",
    [
        ("rtsp://admin:hunter2@10.0.0.7:554/Streaming/Channels/101", "rtsp://admin:***@10.0.0.7:554/Streaming/Channels/101"),
        ("rtsp://admin:p%40ss%3Aword@cam.local/live", "rtsp://admin:***@cam.local/live"),
        ("rtsp://admin:@cam/live", "rtsp://admin:***@cam/live"),
        ("rtsp://user@cam/live", "rtsp://user@cam/live"),  # a bare user name is not a secret
        ("rtsp://cam.local/live", "rtsp://cam.local/live"),
        ("http://cam/video.mjpg?user=admin&password=hunter2&res=hd", "http://cam/video.mjpg?user=admin&password=***&res=hd"),
        ("https://h/s.m3u8?token=abc123&x=1", "https://h/s.m3u8?token=***&x=1"),
        ("rtmp://live.example.com/app/sk_live_12345", "rtmp://live.example.com/app/***"),
        ("rtsp://a:b@c@host/p", "rtsp://a:***@host/p"),  # '@' inside an unencoded password
        ("srt://h:9000?mode=caller&passphrase=s3cret&pw=x", "srt://h:9000?mode=caller&passphrase=***&pw=***"),
        # not in the list, but the rule sees a secret in the name
        ("https://b.s3.example/o?X-Amz-Signature=f00&sessionToken=t&authKey=k&res=hd", "https://b.s3.example/o?X-Amz-Signature=***&sessionToken=***&authKey=***&res=hd"),
        ("/dev/video0", "/dev/video0"),
        ("lavfi:testsrc2=size=640x480:rate=30", "lavfi:testsrc2=size=640x480:rate=30"),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_mask_text_finds_urls_and_exact_secrets():
    url = "rtsp://admin:p%40ss%3Aword@cam.local/live"
    msg = f"error opening {url}: 401 Unauthorized for user admin with password p@ss:word"
    out = mask_text(msg, secrets_of(url))
    assert "p@ss:word" not in out and "p%40ss%3Aword" not in out
    assert "rtsp://admin:***@cam.local/live" in out


def test_redactor_and_logging_filter(caplog):
    r = Redactor("rtsp://u:sup3rsecret@h/x")
    assert str(r) == "rtsp://u:***@h/x"
    assert "sup3rsecret" not in r("server said: bad password sup3rsecret")
    assert "sup3rsecret" not in repr(r)
    f = RedactingFilter()
    f.add("rtsp://u:sup3rsecret@h/x")
    logger = logging.getLogger("test.redact")
    logger.addFilter(f)
    try:
        with caplog.at_level(logging.INFO, logger="test.redact"):
            logger.info("connecting to %s", "rtsp://u:sup3rsecret@h/x")
            logger.info("echo sup3rsecret")
    finally:
        logger.removeFilter(f)
    assert "sup3rsecret" not in caplog.text
    assert "rtsp://u:***@h/x" in caplog.text


def test_live_source_errors_and_logs_are_masked(caplog):
    """A refused RTSP camera: the InputError and every log line mask the password."""
    from psenet_stream.errors import InputError
    from psenet_stream.io.live import open_live_source
    from tests.live_helpers import free_port

    port = free_port()  # nothing listens there
    url = f"rtsp://admin:topSecret99@127.0.0.1:{port}/live"
    with caplog.at_level(logging.DEBUG), pytest.raises(InputError) as ei:
        open_live_source(url, open_timeout=3, read_timeout=2, wait_first=True, max_retries=1, backoff_initial=0.05)
    text = str(ei.value) + " " + ei.value.fix + " " + caplog.text
    assert "topSecret99" not in text
    assert "admin:***@127.0.0.1" in str(ei.value)
    assert "reconnecting in 0.1 s" in caplog.text or "reconnecting in 0.0 s" in caplog.text or "reconnecting in" in caplog.text
