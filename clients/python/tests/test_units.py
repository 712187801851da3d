"""Unit tests of stephub_worker without a server: time parsing, and a Job
driven by a scripted client (the renewal thread, errors of posts).

Run from the repository's root: python3 -m unittest discover -s clients/python -t clients/python
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
import time
import unittest
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Optional
from unittest import mock

from stephub_worker import Client, Job, NetworkError, RetryPolicy
from stephub_worker import client as client_module


class _StrictDatetime(datetime):
    """_StrictDatetime.fromisoformat accepts what Python 3.7 to 3.10 do: a
    fraction of 3 or 6 digits and a +HH:MM offset, no 'Z'."""

    @classmethod
    def fromisoformat(cls, s: str) -> datetime:  # type: ignore[override]
        if not re.fullmatch(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d{3}|\.\d{6})?([+-]\d\d:\d\d)?", s):
            raise ValueError(f"Invalid isoformat string: {s!r}")
        return datetime.fromisoformat(s)


class ParseTimeTest(unittest.TestCase):
    def test_go_rfc3339nano_with_any_number_of_fraction_digits(self) -> None:
        digits = "304851234"
        with mock.patch.object(client_module, "datetime", _StrictDatetime):
            for n in range(0, 10):
                frac = "." + digits[:n] if n else ""
                for zone, offset in (("Z", timedelta(0)), ("+02:00", timedelta(hours=2)), ("-0530", -timedelta(hours=5, minutes=30))):
                    text = f"2026-12-03T10:00:47{frac}{zone}"
                    got = client_module._parse_time(text)
                    want_us = int((digits[:n] + "000000")[:6]) if n else 0
                    want = datetime(2026, 12, 3, 10, 0, 47, want_us, tzinfo=timezone(offset))
                    self.assertEqual(got, want, text)
                    assert got is not None
                    self.assertEqual(got.utcoffset(), offset, text)

    def test_not_a_time(self) -> None:
        for value in (None, "", 5, "yesterday", "2026-12-03T10:00:47.Z", "2026-13-03T10:00:47Z"):
            self.assertIsNone(client_module._parse_time(value), repr(value))

    def test_the_lease_of_a_claim_with_trimmed_fractions(self) -> None:
        # Go trims the fraction's trailing zeros: 5 and 4 digits here.
        claim = _claim("2026-12-03T10:00:17.30485Z", "2026-12-03T10:00:47.3048Z")
        with mock.patch.object(client_module, "datetime", _StrictDatetime):
            job = Job(_FakeClient(lambda *a, **k: _ok()), claim)
        self.assertAlmostEqual(job.lease_seconds, 29.99995, places=5)


def _claim(updated_at: str, expires_at: str) -> Dict[str, Any]:
    return {
        "video": {"id": 7, "status": "processing", "step": 0, "total_steps": 8, "progress": 0,
                  "updated_at": updated_at},
        "lease_token": "lease",
        "lease_expires_at": expires_at,
    }


def _short_claim(lease: float) -> Dict[str, Any]:
    now = datetime.now(timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    return _claim(now.strftime(fmt), (now + timedelta(seconds=lease)).strftime(fmt))


_event_ids = iter(range(1, 1_000_000))


def _ok() -> Any:
    return 201, http.client.HTTPMessage(), json.dumps({"id": next(_event_ids)}).encode()


class _FakeClient:
    """_FakeClient answers each request with answer(method, path, body,
    headers=..., stop=...), and keeps the requests."""

    def __init__(self, answer: Callable[..., Any]) -> None:
        self.answer = answer
        self.requests: List[Dict[str, Any]] = []
        self.timeout = 5.0
        self.logger = logging.getLogger("stephub_worker.test")

    def request(self, method: str, path: str, body: Any = None, *, headers: Any = None,
                timeout: Any = None, stop: Optional[threading.Event] = None) -> Any:
        self.requests.append({"method": method, "path": path, "body": body, "headers": dict(headers or {}), "stop": stop})
        return self.answer(method, path, body, headers=headers, stop=stop)


def _wait(cond: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


class NetworkErrorKeyTest(unittest.TestCase):
    def test_the_key_of_a_post_that_failed_on_the_network_can_be_posted_again(self) -> None:
        client = Client("http://stephub.invalid", "secret", retry=RetryPolicy(first=0.01, last=0.01, give_up_after=0.05),
                        logger=logging.getLogger("stephub_worker.test.quiet"))
        client.logger.disabled = True
        sent: List[Optional[str]] = []

        def refuse(req: Any, timeout: Any = None) -> Any:
            sent.append(req.get_header("Idempotency-key"))
            raise ConnectionRefusedError("refused")

        client._opener.open = refuse  # type: ignore[method-assign]
        job = Job(client, _short_claim(30))
        with self.assertRaises(NetworkError) as caught:
            job.post(1, "step one")
        key = caught.exception.idempotency_key
        self.assertTrue(key)
        self.assertEqual(set(sent), {key}, "every try sent the key the error tells")
        sent.clear()
        with self.assertRaises(NetworkError) as again:
            job.post(1, "step one", idempotency_key=key)
        self.assertEqual(again.exception.idempotency_key, key)
        self.assertEqual(set(sent), {key})


class RenewalTest(unittest.TestCase):
    def test_an_unexpected_exception_does_not_end_the_renewal(self) -> None:
        calls: List[int] = []

        def answer(*a: Any, **k: Any) -> Any:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("a bug in a proxy library")
            return _ok()

        fake = _FakeClient(answer)
        job = Job(fake, _short_claim(0.3))  # renewed every 0.1s
        with self.assertLogs("stephub_worker.test", level="WARNING") as logs:
            with job:
                self.assertTrue(_wait(lambda: len(calls) >= 3), f"{len(calls)} renewals")
                self.assertTrue(job.renewing)
        self.assertTrue(any("a bug in a proxy library" in line for line in logs.output), logs.output)

    def test_a_second_with_block_renews_again(self) -> None:
        fake = _FakeClient(lambda *a, **k: _ok())
        job = Job(fake, _short_claim(0.3))
        with job:
            self.assertTrue(_wait(lambda: len(fake.requests) >= 1))
        self.assertFalse(job.renewing)
        before = len(fake.requests)
        with job:
            self.assertTrue(job.renewing)
            self.assertTrue(_wait(lambda: len(fake.requests) >= before + 2), "no renewal in the second block")
        self.assertFalse(job.renewing)

    def test_a_renewal_retrying_does_not_hold_up_the_bodys_post(self) -> None:
        renewing = threading.Event()

        def answer(method: str, path: str, body: Any, *, headers: Any = None, stop: Optional[threading.Event] = None) -> Any:
            if body.get("status") is None:
                # The renewal: the server is down, and the client retries
                # for up to 10s, or until stop is set.
                renewing.set()
                if stop is None or not stop.wait(10):
                    pass
                raise NetworkError("stephub POST: down")
            return _ok()

        fake = _FakeClient(answer)
        job = Job(fake, _short_claim(0.3))
        with job:
            self.assertTrue(renewing.wait(5))
            started = time.monotonic()
            job.complete("/v.mp4")
            took = time.monotonic() - started
        self.assertLess(took, 2.0, "complete() waited for the renewal's retries")
        self.assertTrue(job.finished)


if __name__ == "__main__":
    unittest.main()
