"""A claimed video and the posts of its steps: the Job."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Type, Union

from .client import Video, _parse_time
from .errors import JobStopped, StephubError

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Job", "MAX_TEXT_CHARS"]

#: MAX_TEXT_CHARS is the most characters the server takes in a step's
#: ``message`` or ``error``.
MAX_TEXT_CHARS = 1000

# The lease assumed when the claim's answer does not tell it.
_DEFAULT_LEASE = 30.0


def _clean(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """_clean makes text one the server stores: no NUL, at most limit
    characters."""
    text = text.replace("\x00", "\ufffd")
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Job:
    """Job is a video this worker claimed, and the lease it holds on it.
    :meth:`Client.claim` makes it.

    Post the steps with :meth:`post` (as often as the progress moves), then
    end with :meth:`complete` or :meth:`fail`. Each post carries the lease
    token, so that a worker whose lease ran out can write nothing into a
    video that another worker took over, and an idempotency key of its own,
    which its retries reuse, so that a post retried after a network error is
    stored once.

    Each post renews the lease. While the job is open (``with job:``, or
    between :meth:`start_renewal` and :meth:`close`) a thread renews it when
    the job has posted nothing for a third of the lease, by posting the last
    step again, unchanged: watchers see the same step and progress once
    more. A job that must not hold its lease through a long silence can be
    claimed with ``renew=False``.

    Used as a context manager, a Job fails its video when the body raises an
    Exception, with the exception's message as the error, unless the server
    had already stopped the job (:class:`JobStopped`) or the job was
    finished. A body that returns without finishing the job leaves it as it
    is: the lease runs out and the video goes back to the queue.

    A Job is safe to use from several threads: its posts go out one at a
    time, each after the one before it was answered.
    """

    #: renew_message is what a renewal posts when the job has posted no
    #: step yet.
    renew_message = "⏳ Working..."

    def __init__(self, client: "Client", claim: Mapping[str, Any], *, renew: bool = True) -> None:
        self.client = client
        self.video = Video.from_json(claim["video"])
        self.lease_token: str = str(claim.get("lease_token") or "")
        expires = _parse_time(claim.get("lease_expires_at"))
        # The lease is the server's LEASE: the claim set both times from the
        # same clock reading, so no clock of this machine is involved.
        lease = 0.0
        if expires is not None and self.video.updated_at is not None:
            lease = (expires - self.video.updated_at).total_seconds()
        if lease <= 0 and expires is not None:
            lease = (expires - datetime.now(timezone.utc)).total_seconds()
        self.lease_seconds: float = lease if lease > 0 else _DEFAULT_LEASE
        self._lease_expires_at = expires
        self._renew = renew
        self._posting = threading.Lock()  # held by the post under way, so that posts go out one at a time
        self._state = threading.Lock()  # guards what follows, never held across I/O
        self._step = self.video.step
        self._progress = self.video.progress
        self._last_body: Optional[Dict[str, Any]] = None
        self._last_post = time.monotonic()  # the claim renewed the lease too
        self._finished: Optional[str] = None
        self._stop_error: Optional[JobStopped] = None
        self._stopped = threading.Event()
        self._quit = threading.Event()  # tells the renewal thread to end
        # Set to stop the retries of the renewal post under way (None when
        # none is): by the body's posts, which must not wait for them, and
        # by close().
        self._renewal_stop: Optional[threading.Event] = None
        self._posts_waiting = 0  # the body's posts waiting for _posting: no renewal goes before them
        self._thread: Optional[threading.Thread] = None

    def __repr__(self) -> str:
        return f"Job(video={self.video.id}, step={self._step}, progress={self._progress})"  # never the token

    # What the job is at.

    @property
    def id(self) -> int:
        """id is the video's id."""
        return self.video.id

    @property
    def total_steps(self) -> int:
        """total_steps is the number of steps before the terminal one."""
        return self.video.total_steps

    @property
    def resume_step(self) -> int:
        """resume_step is the step to start from: 1 for a new video, or the
        step the video was at when an earlier worker lost it (that step had
        begun, but maybe not ended)."""
        return max(self.video.step, 1)

    @property
    def step(self) -> int:
        """step is the step the video is at: the last one posted."""
        with self._state:
            return self._step

    @property
    def progress(self) -> int:
        """progress is the video's progress, 0 to 100: the last posted."""
        with self._state:
            return self._progress

    @property
    def lease_expires_at(self) -> Optional[datetime]:
        """lease_expires_at is when the lease runs out: the claim's time,
        then, after each post, an estimate by this machine's clock."""
        with self._state:
            return self._lease_expires_at

    @property
    def finished(self) -> bool:
        """finished is True once :meth:`complete` or :meth:`fail` succeeded."""
        with self._state:
            return self._finished is not None

    @property
    def renewing(self) -> bool:
        """renewing is True while the renewal thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def stop_error(self) -> Optional[JobStopped]:
        """stop_error is the :class:`JobStopped` with which the server
        stopped this job (to a post of the body or of the renewal), or
        None."""
        with self._state:
            return self._stop_error

    def check(self) -> None:
        """check raises the :class:`JobStopped` with which the server stopped
        the job, if it did. A long step calls it now and then, so that it
        stops soon after the user cancels (the renewal notices)."""
        err = self.stop_error
        if err is not None:
            raise err

    def sleep(self, seconds: float) -> None:
        """sleep waits ``seconds`` while the lease is renewed, and raises
        the :class:`JobStopped` as soon as the server stops the job."""
        if self._stopped.wait(seconds):
            self.check()

    # Posts.

    def post(
        self,
        step: int,
        message: str,
        progress: Optional[int] = None,
        *,
        data: Optional[Mapping[str, Any]] = None,
        idempotency_key: Optional[str] = None,
    ) -> int:
        """post stores step ``step`` (1 to total_steps) with ``message``
        and ``progress`` (0 to 100; by default the step's share of the job,
        ⌊100·step/(total_steps+1)⌋, never below the progress so far), and
        ``data``, a JSON object of at most 4 KiB that watchers get as is.
        Neither step nor progress may go back. It returns the event's id.

        ``idempotency_key`` defaults to a new random key, which the retries
        of this call reuse. Pass one of your own to make a post that another
        process may repeat (a task retried after a crash) stored once.

        It raises :class:`JobStopped` when the server stopped the job, and
        :class:`APIError` when it refused the step (422 for a step or
        progress that goes back, with ``fields``).
        """
        fields = dict(data) if data is not None else None

        def body() -> Dict[str, Any]:
            b: Dict[str, Any] = {"step": step, "message": message, "progress": progress}
            if progress is None:
                b["progress"] = max(min(100 * step // (self.total_steps + 1), 100), self._progress)
            if fields is not None:
                b["data"] = fields
            return b

        return self._post(body, idempotency_key)

    def complete(
        self,
        video_url: str,
        message: str = "🎉 Video ready!",
        *,
        data: Optional[Mapping[str, Any]] = None,
        idempotency_key: Optional[str] = None,
    ) -> int:
        """complete ends the job: the terminal step, total_steps + 1, at
        100 %, with the finished video's URL. It returns the event's id."""
        body: Dict[str, Any] = {
            "step": self.total_steps + 1,
            "message": message,
            "progress": 100,
            "status": "completed",
            "video_url": video_url,
        }
        if data is not None:
            body["data"] = dict(data)
        return self._post(body, idempotency_key)

    def fail(
        self,
        error: str,
        message: Optional[str] = None,
        *,
        idempotency_key: Optional[str] = None,
    ) -> int:
        """fail ends the job as failed, at the step and progress it reached,
        with ``error`` (cut to 1000 characters) for the user; the server
        gives the credits back. It returns the event's id."""
        error = _clean(error or "the worker failed")
        message = _clean(message or "❌ " + error)

        def body() -> Dict[str, Any]:
            return {"step": max(self._step, 1), "message": message, "progress": self._progress,
                    "status": "failed", "error": error}

        return self._post(body, idempotency_key)

    def renew(self) -> Optional[int]:
        """renew posts the last step again, unchanged but for a new
        idempotency key, which renews the lease; before the first post, it
        posts :attr:`resume_step` with :attr:`renew_message`. It returns the
        event's id, or None when the job is finished or stopped."""
        return self._post(None, None, renewal_due=0.0)

    def _renewal_body(self) -> Dict[str, Any]:
        if self._last_body is not None:
            return dict(self._last_body)
        return {"step": max(self._step, 1), "message": self.renew_message, "progress": self._progress}

    def _post(
        self,
        body: Union[None, Dict[str, Any], Callable[[], Dict[str, Any]]],
        key: Optional[str],
        *,
        renewal_due: Optional[float] = None,
        stop: Optional[threading.Event] = None,
    ) -> Optional[int]:
        """_post sends body, or what body() returns when it is a function
        (called once the posts before it went out). With renewal_due, body
        is None and the post is a renewal, sent only when the job is live
        and has posted nothing for renewal_due seconds.

        A renewal's retries (up to the client's give_up_after while the
        server is down) stop as soon as another post comes: that post renews
        the lease itself, and would otherwise wait for them."""
        if renewal_due is None:
            with self._state:
                self._posts_waiting += 1
                if self._renewal_stop is not None:
                    self._renewal_stop.set()
            try:
                self._posting.acquire()
            finally:
                with self._state:
                    self._posts_waiting -= 1
            try:
                return self._post_locked(body, key, None, stop)
            finally:
                self._posting.release()
        with self._posting:
            return self._post_locked(body, key, renewal_due, stop)

    def _post_locked(
        self,
        body: Union[None, Dict[str, Any], Callable[[], Dict[str, Any]]],
        key: Optional[str],
        renewal_due: Optional[float],
        stop: Optional[threading.Event],
    ) -> Optional[int]:
        """_post_locked is _post once it holds _posting."""
        with self._state:
            if renewal_due is not None:
                if (self._finished or self._stop_error or self._posts_waiting
                        or time.monotonic() - self._last_post < renewal_due):
                    return None  # a post waiting renews the lease
                body = self._renewal_body()
                renewal_stop = threading.Event()
                if stop is not None and stop.is_set():
                    renewal_stop.set()
                self._renewal_stop = stop = renewal_stop
            elif callable(body):
                body = body()
            assert isinstance(body, dict)
            headers = {"Idempotency-Key": key or str(uuid.uuid4())}
            if self.lease_token:
                headers["Lease-Token"] = self.lease_token
        sent, sent_at = time.monotonic(), datetime.now(timezone.utc)
        try:
            _, answer_headers, answer = self.client.request(
                "POST", f"/api/v1/videos/{self.id}/events", body, headers=headers, stop=stop
            )
        except JobStopped as e:
            with self._state:
                if self._stop_error is None:
                    self._stop_error = e
            self._stopped.set()
            self._quit.set()
            raise
        except StephubError:
            if renewal_due is not None and stop is not None and stop.is_set():
                return None  # given way to another post, or closed
            raise
        finally:
            if renewal_due is not None:
                with self._state:
                    self._renewal_stop = None
        with self._state:
            status = body.get("status", "processing")
            if status == "processing":
                self._last_body = body
                self._last_post = sent
                self._lease_expires_at = sent_at + timedelta(seconds=self.lease_seconds)
            else:
                self._finished = status
                self._quit.set()
            self._step, self._progress = body["step"], body["progress"]
            # A token-less post to a pending video claims it; this one
            # always sends a token, but take a new one if it comes.
            self.lease_token = answer_headers.get("Lease-Token") or self.lease_token
        return int(json.loads(answer)["id"])

    # The renewal thread.

    def start_renewal(self) -> None:
        """start_renewal starts the thread that renews the lease (see the
        class), unless it runs already or the job is over. :meth:`close`
        stops it; ``with job:`` does both, and a job may be opened again
        after it was closed."""
        with self._state:
            if self._finished or self._stop_error:
                return
            if self._thread is not None and self._thread.is_alive():
                return
            self._quit.clear()
            thread = threading.Thread(target=self._renew_loop, name=f"stephub-renew-{self.id}", daemon=True)
            self._thread = thread
        thread.start()

    def _renew_loop(self) -> None:
        every = self.lease_seconds / 3
        while True:
            with self._state:
                due = self._last_post + every
            if self._quit.wait(max(due - time.monotonic(), 0.0)):
                return
            try:
                self._post(None, None, renewal_due=every, stop=self._quit)
            except JobStopped:
                return  # recorded; the body's next post or check raises it
            except StephubError as e:
                self.client.logger.warning("stephub video %d: cannot renew the lease: %s", self.id, e)
                if self._quit.wait(every):
                    return
            except Exception as e:  # a bug, say in a proxy library: keep renewing
                self.client.logger.warning(
                    "stephub video %d: cannot renew the lease: unexpected %s: %s", self.id, type(e).__name__, e,
                    exc_info=True,
                )
                if self._quit.wait(every):
                    return

    def close(self) -> None:
        """close stops the renewal thread and waits for it to end (after
        the post it may be sending). It does not finish the job. It may be
        called more than once."""
        with self._state:
            self._quit.set()
            if self._renewal_stop is not None:
                self._renewal_stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.client.timeout + 5)

    def __enter__(self) -> "Job":
        if self._renew:
            self.start_renewal()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        self.close()
        if exc is None:
            if not self.finished and self.stop_error is None:
                self.client.logger.info(
                    "stephub video %d left unfinished; it goes back to the queue when its lease runs out", self.id
                )
            return False
        # Only an Exception fails the job: KeyboardInterrupt or SystemExit
        # stop this process, not the job, which another worker takes over.
        if not isinstance(exc, Exception) or isinstance(exc, JobStopped):
            return False
        if self.finished or self.stop_error is not None:
            return False
        try:
            self.fail(str(exc) or type(exc).__name__)
        except StephubError as e:
            self.client.logger.warning("stephub video %d: cannot fail the job after %r: %s", self.id, exc, e)
        return False
