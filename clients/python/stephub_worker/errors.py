"""The exceptions of stephub_worker.

Every exception the library raises is a :class:`StephubError`. An answer of
the server that refuses a request is an :class:`APIError`; the 409 answers
that tell a worker to stop its job are :class:`JobStopped`, one subclass per
reason, so that a task can stop quietly on them and fail loudly on the rest::

    try:
        with job:
            ...
    except JobStopped:
        pass  # cancelled, finished, or the lease lost: nothing to clean up
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional

__all__ = [
    "StephubError",
    "NetworkError",
    "APIError",
    "JobStopped",
    "VideoCancelled",
    "VideoFinished",
    "LeaseLost",
    "api_error",
]


class StephubError(Exception):
    """StephubError is the base of every exception of this library."""


class NetworkError(StephubError):
    """NetworkError says that the server could not be reached, or its answer
    could not be read, even after retrying for the client's retry policy.

    The cause (an OSError, an http.client.HTTPException...) is in
    ``__cause__``. A post that ended this way may or may not have been
    stored; posting it again with the same idempotency key is safe, and
    ``idempotency_key`` holds that key::

        try:
            job.post(3, "rendering")
        except NetworkError as e:
            ...  # later, once the server is back:
            job.post(3, "rendering", idempotency_key=e.idempotency_key)

    Attributes:
        idempotency_key: the Idempotency-Key every try of the request sent
            (the one the call was given, or the one it made up), or None
            for a request without one (a claim).
    """

    def __init__(self, message: str, *, idempotency_key: Optional[str] = None) -> None:
        super().__init__(message)
        self.idempotency_key = idempotency_key


class APIError(StephubError):
    """APIError is an answer of the server that refuses a request: a 4xx, or
    a 5xx that lasted longer than the retry policy.

    Attributes:
        status: the HTTP status, like 422.
        code: the error's snake_case code, like ``"validation_failed"``, or
            ``""`` when the answer was not one of stephub's JSON errors.
        message: the server's human-readable message (or the raw body).
        fields: for validation errors, what is wrong with each field, like
            ``{"progress": "must not go backwards: the video is at 33%"}``.
    """

    def __init__(self, status: int, code: str, message: str, fields: Optional[Mapping[str, str]] = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.fields: Dict[str, str] = dict(fields or {})
        text = f"{status} {code}: {message}" if code else f"{status}: {message}"
        if self.fields:
            text += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(self.fields.items())) + ")"
        super().__init__(text)


class JobStopped(APIError):
    """JobStopped is a 409 that tells the worker to stop the job: nothing was
    stored, and nothing more will be. Its subclasses say why."""


class VideoCancelled(JobStopped):
    """VideoCancelled: the user cancelled the video (409 ``video_cancelled``).
    Stop working on it; its credits are already refunded."""


class VideoFinished(JobStopped):
    """VideoFinished: the video is already completed or failed (409
    ``video_finished``), by this worker or another."""


class LeaseLost(JobStopped):
    """LeaseLost: this worker does not hold the video's lease any more (409
    ``lease_lost``: the lease ran out and the video went back to the queue or
    to another worker), or never did (409 ``lease_held``: another runner
    holds it). Another worker may be running the video now."""


_STOPS = {
    "video_cancelled": VideoCancelled,
    "video_finished": VideoFinished,
    "lease_lost": LeaseLost,
    "lease_held": LeaseLost,
}


def api_error(status: int, body: bytes) -> APIError:
    """api_error returns the exception for an error answer of the server:
    its status and body (``{"error": {"code", "message", "fields"}}``)."""
    code, message, fields = "", "", None
    try:
        doc: Any = json.loads(body.decode("utf-8"))
        err = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(err, dict):
            code = str(err.get("code") or "")
            message = str(err.get("message") or "")
            if isinstance(err.get("fields"), dict):
                fields = {str(k): str(v) for k, v in err["fields"].items()}
    except (ValueError, UnicodeDecodeError):
        pass
    if not code and not message:
        message = body.decode("utf-8", "replace").strip()[:500] or "(no body)"
    cls = _STOPS.get(code, APIError) if status == 409 else APIError
    return cls(status, code, message, fields)
