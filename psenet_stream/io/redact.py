"""Credential masking for URLs, log lines and error messages.

Camera URLs routinely carry secrets: ``rtsp://admin:hunter2@10.0.0.7/stream``,
``http://cam/video.mjpg?user=admin&password=hunter2``, ``rtmp://live.example/app/<stream key>``.
Nothing psenet-stream prints (logs, errors, the progress line, StreamInfo.description) may
contain them. Every user-supplied URL goes through :func:`mask_url` before it is shown, and
any free text that might echo a URL (FFmpeg errors, exceptions) goes through
:func:`mask_text`, optionally with the exact secrets of the URL in hand (:func:`secrets_of`)
so decoded and percent-encoded forms are caught too.

    >>> mask_url("rtsp://admin:hunter2@cam.local:554/live")
    'rtsp://admin:***@cam.local:554/live'
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MASK = "***"

# Query parameters whose values are secrets (compared case-insensitively). The list names the
# usual ones; ``is_secret_param`` also masks any name that merely looks secret (the rule below).
SECRET_PARAMS = frozenset(
    {"password", "passwd", "pass", "pwd", "pw", "passphrase", "token", "access_token", "auth", "key", "apikey", "api_key", "secret", "signature", "sig", "streamkey", "stream_key", "credential", "credentials"}
)
# A name looks secret when, with case and separators dropped, it contains one of these stems
# (x-amz-signature, sessionToken, authKey, srt's passphrase, ...). Masking a harmless value
# costs a reader little; printing a secret cannot be undone.
_SECRET_STEMS = ("pass", "pwd", "secret", "token", "auth", "key", "sig", "credential", "session", "cookie")


def is_secret_param(name: str) -> bool:
    """Whether a query parameter's value should be masked: a known name, or one that looks secret."""
    n = re.sub(r"[^a-z0-9]", "", unquote(name).lower())
    return name.lower() in SECRET_PARAMS or n in SECRET_PARAMS or n == "pw" or any(stem in n for stem in _SECRET_STEMS)

# scheme://[userinfo@]rest, stopping at whitespace or quotes.
_URL_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>[^\s'\"<>]+)")
_USERINFO_RE = re.compile(r"^(?P<user>[^:@/]*)(?::(?P<pw>[^@/]*))?@")


def _mask_query(query: str) -> str:
    if not query:
        return query
    out = []
    for part in query.split("&"):
        name, sep, _value = part.partition("=")
        if sep and is_secret_param(name):
            out.append(f"{name}={MASK}")
        else:
            out.append(part)
    return "&".join(out)


def _mask_rest(scheme: str, rest: str) -> str:
    # userinfo: everything before the last '@' that comes before the first '/'
    slash = rest.find("/")
    head = rest if slash < 0 else rest[:slash]
    at = head.rfind("@")
    if at >= 0:
        userinfo, tail = rest[:at], rest[at:]
        user, colon, _pw = userinfo.partition(":")
        rest = f"{user}:{MASK}{tail}" if colon else f"{MASK}{tail}" if scheme.lower() in ("rtmp", "rtmps") else f"{user}{tail}"
        # A bare user name is not a secret, except rtmp where it can be the key itself.
    path, q, query = rest.partition("?")
    if scheme.lower() in ("rtmp", "rtmps", "rtmpt", "rtmpe"):
        # rtmp://host/app/STREAMKEY: the last path element is the publishing key.
        hostpath = path.split("/")
        if len(hostpath) >= 3 and hostpath[-1]:
            hostpath[-1] = MASK
            path = "/".join(hostpath)
    return path + (q + _mask_query(query) if q else "")


def mask_url(url: str) -> str:
    """``url`` with its password, secret query values and RTMP stream key replaced by ``***``."""
    if not isinstance(url, str):
        url = str(url)
    m = _URL_RE.fullmatch(url.strip())
    if not m:
        return url
    return f"{m['scheme']}://{_mask_rest(m['scheme'], m['rest'])}"


def secrets_of(url: str) -> list[str]:
    """The secret strings in ``url`` (password, secret query values, RTMP key), raw and decoded."""
    found: list[str] = []
    try:
        parts = urlsplit(url)
    except ValueError:
        return found
    netloc = parts.netloc
    if "@" in netloc:
        userinfo = netloc.rsplit("@", 1)[0]
        if ":" in userinfo:
            found.append(userinfo.split(":", 1)[1])
        elif parts.scheme.lower().startswith("rtmp"):
            found.append(userinfo)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if is_secret_param(name) and value:
            found.append(value)
    if parts.scheme.lower().startswith("rtmp"):
        segs = parts.path.split("/")
        if len(segs) >= 3 and segs[-1]:
            found.append(segs[-1])
    out: list[str] = []
    for s in found:
        for form in (s, unquote(s), quote(unquote(s), safe="")):
            if len(form) >= 3 and form not in out:  # 1-2 chars would mask half of any message
                out.append(form)
    return sorted(out, key=len, reverse=True)


def mask_text(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Mask every URL in ``text`` and every occurrence of the given secret strings."""
    text = str(text)
    text = _URL_RE.sub(lambda m: f"{m['scheme']}://{_mask_rest(m['scheme'], m['rest'])}", text)
    for s in secrets:
        if s:
            text = text.replace(s, MASK)
    return text


class Redactor:
    """Masks one URL's secrets in any text; ``str(redactor)`` is the safe form of the URL."""

    def __init__(self, url: str):
        self._secrets = secrets_of(url) if "://" in str(url) else []
        self.safe = mask_url(url)

    def __call__(self, text: object) -> str:
        return mask_text(str(text), self._secrets)

    def __str__(self) -> str:
        return self.safe

    def __repr__(self) -> str:
        return f"Redactor({self.safe!r})"


class RedactingFilter(logging.Filter):
    """A logging filter that masks URLs (and known secrets) in every record it sees.

    Attach it to a handler (``handler.addFilter(RedactingFilter())``) so it also covers
    records from other libraries; the messages psenet-stream writes are masked at source.
    """

    def __init__(self, secrets: list[str] | tuple[str, ...] = ()):
        super().__init__()
        self.secrets = list(secrets)

    def add(self, url: str) -> None:
        for s in secrets_of(url):
            if s not in self.secrets:
                self.secrets.append(s)
        self.secrets.sort(key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a record whose message cannot be formatted is passed on untouched; logging reports it
            return True
        masked = mask_text(msg, self.secrets)
        if masked != msg:
            record.msg, record.args = masked, ()
        return True


#: The process-wide filter: the CLI adds every URL it was given (``remember``), and attaches it
#: to every handler that prints (the package's log, FFmpeg's log through PyAV), so a secret is
#: masked even where a message quotes it without its URL.
PROCESS_FILTER = RedactingFilter()


def remember(url: str) -> None:
    """Mask this URL's secrets in every line the process prints from now on."""
    if "://" in str(url):
        PROCESS_FILTER.add(str(url))


def mask_all(text: object) -> str:
    """``mask_text`` with every secret the process was given (``remember``)."""
    return mask_text(str(text), PROCESS_FILTER.secrets)
