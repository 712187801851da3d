"""The HTTP side of stephub_worker: the Client, its retry policy, and the
video a claim returns."""

from __future__ import annotations

import http.client
import json
import logging
import random
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

from .errors import APIError, NetworkError, api_error

__all__ = ["Client", "RetryPolicy", "Video", "MAX_CLAIM_WAIT"]

#: MAX_CLAIM_WAIT is the longest long poll the server takes, in seconds.
MAX_CLAIM_WAIT = 60.0

_log = logging.getLogger("stephub_worker")


@dataclass(frozen=True)
class RetryPolicy:
    """RetryPolicy says how a request that fails on the network, or with a
    5xx answer, is tried again: after ``first`` seconds, then twice the
    previous pause up to ``last`` (each pause drawn within +-``jitter`` of
    it, so that many workers do not retry in step), until ``give_up_after``
    seconds have passed since the first try. A 4xx answer is never retried:
    it would be refused again.
    """

    first: float = 0.1
    last: float = 5.0
    jitter: float = 0.2
    give_up_after: float = 60.0

    def pauses(self) -> Iterator[float]:
        """pauses yields the pause before each retry, without end."""
        pause = 0.0
        while True:
            pause = min(max(2 * pause, self.first), self.last)
            yield pause * random.uniform(1 - self.jitter, 1 + self.jitter)


# An RFC 3339 time as Go writes it (time.RFC3339Nano): the fraction has 1
# to 9 digits, its trailing zeros trimmed, or is left out; the zone is "Z"
# or an offset.
_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)


def _parse_time(value: Any) -> Optional[datetime]:
    """_parse_time reads a time of the server's JSON, or returns None.

    datetime.fromisoformat before Python 3.11 takes only 3 or 6 fraction
    digits and no "Z", so the fraction is cut or padded to 6 digits (to the
    microsecond) and the zone written +HH:MM first. A time without a zone
    is taken as UTC."""
    if not isinstance(value, str):
        return None
    m = _TIME.fullmatch(value.strip())
    if m is None:
        return None
    base, fraction, _, sign, hours, minutes = m.groups()
    text = base.replace("t", "T") + "." + (fraction or "").ljust(6, "0")[:6]
    text += f"{sign}{hours}:{minutes}" if sign else "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Video:
    """Video is a video as the server sent it with a claim.

    ``step`` and ``progress`` are where the job stands: 0 for a new video,
    or the last stored step of one that another worker started and lost.
    ``raw`` holds the whole JSON object, fields added later included.
    """

    id: int
    status: str
    prompt: str
    model: str
    reference_image_url: Optional[str]
    step: int
    total_steps: int
    progress: int
    video_url: Optional[str]
    error: Optional[str]
    created_at: Optional[datetime]
    updated_at: Optional[datetime]
    stream_url: str
    raw: Dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "Video":
        """from_json builds a Video from the server's JSON object."""
        return cls(
            id=int(doc["id"]),
            status=str(doc.get("status", "")),
            prompt=str(doc.get("prompt", "")),
            model=str(doc.get("model", "")),
            reference_image_url=doc.get("reference_image_url"),
            step=int(doc.get("step", 0)),
            total_steps=int(doc.get("total_steps", 8)),
            progress=int(doc.get("progress", 0)),
            video_url=doc.get("video_url"),
            error=doc.get("error"),
            created_at=_parse_time(doc.get("created_at")),
            updated_at=_parse_time(doc.get("updated_at")),
            stream_url=str(doc.get("stream_url", "")),
            raw=dict(doc),
        )


# What a failed exchange raises: the network, the connection, or an answer
# cut short. urllib.error.HTTPError is an answer, and is handled before.
_NETWORK_ERRORS = (urllib.error.URLError, OSError, http.client.HTTPException)


class Client:
    """Client talks to one stephub server as a worker: it claims videos
    (see :meth:`claim`), and its Jobs post their steps through it.

    Client keeps no state between requests besides its settings: it is safe
    to use from many threads at once, and one Client serves any number of
    concurrent jobs.

    Args:
        server: the base URL, like ``"http://localhost:8000"``.
        token: the server's ``WORKER_TOKEN``.
        timeout: seconds to wait for an answer to a post (a claim waits its
            long poll on top).
        retry: how network failures and 5xx answers are retried.
        logger: where retries and renewals are logged; the
            ``"stephub_worker"`` logger by default.
    """

    def __init__(
        self,
        server: str,
        token: str,
        *,
        timeout: float = 30.0,
        retry: Optional[RetryPolicy] = None,
        logger: Optional[logging.Logger] = None,
    ) -> None:
        if not server or not token:
            raise ValueError("stephub_worker: the server URL and the worker token are required")
        parts = urllib.parse.urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"stephub_worker: the server URL must be http(s)://host[:port], not {server!r}")
        self.server = server.rstrip("/")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.logger = logger or _log
        self._token = token
        # An opener of its own: proxies from the environment as usual, and
        # no handler that another library installed globally.
        self._opener = urllib.request.build_opener()

    def __repr__(self) -> str:
        return f"Client({self.server!r})"  # never the token

    def claim(self, wait: float = 30.0, *, renew: bool = True) -> "Optional[Job]":
        """claim leases the oldest pending video to this worker, waiting up
        to ``wait`` seconds (at most 60) for one to come. It returns the
        :class:`Job`, or None when none came.

        The Job renews its lease while it is open (``with job:``) unless
        ``renew`` is False; see :class:`Job`.

        A claim whose answer the network lost is retried like any request;
        the video it leased meanwhile goes back to the queue when that lease
        runs out.
        """
        from .job import Job  # job imports this module

        if not 0 <= wait <= MAX_CLAIM_WAIT:
            raise ValueError(f"stephub_worker: wait must be from 0 to {MAX_CLAIM_WAIT:g} seconds, not {wait}")
        status, _, body = self.request(
            "POST", f"/api/v1/worker/claim?wait={wait:.3f}s", timeout=wait + self.timeout
        )
        if status == 204:
            return None
        doc = json.loads(body)
        return Job(self, doc, renew=renew)

    def jobs(self, wait: float = 30.0, *, stop: Optional[threading.Event] = None, renew: bool = True) -> "Iterator[Job]":
        """jobs claims one job after another, without end, or until
        ``stop`` is set: each long poll waits ``wait`` seconds, and jobs
        yields each video that came. Errors of a claim (a wrong token, the
        server down for longer than the retry policy) are raised."""
        while stop is None or not stop.is_set():
            job = self.claim(wait, renew=renew)
            if job is not None:
                yield job

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
        stop: Optional[threading.Event] = None,
    ) -> Tuple[int, http.client.HTTPMessage, bytes]:
        """request sends one request to the server as this worker (``body``,
        if not None, as JSON) and returns the status, headers and body of a
        2xx answer.

        Network failures and 5xx answers are retried with the same headers,
        idempotency key included, as the retry policy says; setting ``stop``
        ends the retries early. It raises :class:`APIError` (or its
        :class:`JobStopped` subclasses) for a 4xx answer and for a 5xx that
        outlasted the retries, and :class:`NetworkError` when the server
        could not be reached.
        """
        data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        head = {"Authorization": "Bearer " + self._token, "User-Agent": "stephub-worker-python/0.1"}
        if body is not None:
            head["Content-Type"] = "application/json"
        head.update(headers or {})
        url = self.server + path
        deadline = time.monotonic() + self.retry.give_up_after
        pauses = self.retry.pauses()
        while True:
            failure: Exception
            req = urllib.request.Request(url, data=data, method=method, headers=head)
            try:
                with self._opener.open(req, timeout=timeout or self.timeout) as resp:
                    answer = resp.read()
                    return resp.status, resp.headers, answer
            except urllib.error.HTTPError as e:
                with e:
                    try:
                        answer = e.read()
                    except _NETWORK_ERRORS:
                        answer = b""
                if e.code < 500:
                    raise api_error(e.code, answer) from None
                failure = api_error(e.code, answer)
            except _NETWORK_ERRORS as e:
                failure = e
            pause = next(pauses)
            if time.monotonic() + pause > deadline or (stop is not None and stop.is_set()):
                break
            self.logger.warning("stephub %s %s failed (%s); retrying in %.2fs", method, path.split("?")[0], failure, pause)
            if stop is not None:
                if stop.wait(pause):
                    break
            else:
                time.sleep(pause)
        if isinstance(failure, APIError):
            raise failure
        raise NetworkError(
            f"stephub {method} {path.split('?')[0]}: {failure}", idempotency_key=head.get("Idempotency-Key")
        ) from failure
