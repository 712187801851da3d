"""End-to-end tests of stephub_worker against a real `stephub serve`.

Each test starts its own server (PIPELINE=external, SQLite in a temporary
folder) and stops it at the end; nothing of the server is mocked. Run from
the repository's root: python3 -m unittest discover -s clients/python -t clients/python
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import unittest
from typing import Any, Dict, List, Optional

from stephub_worker import (
    APIError,
    Client,
    Job,
    LeaseLost,
    NetworkError,
    RetryPolicy,
    VideoCancelled,
    VideoFinished,
)
from tests.stephub_server import WORKER_TOKEN, FlakyProxy, StephubServer

VIDEO_URL = "/uploads/videos/mock-video.mp4"
USER = "alice"

# Quick retries, so that the tests that lose answers do not wait long.
FAST_RETRY = RetryPolicy(first=0.05, last=0.2, give_up_after=10)


def distinct_steps(events: List[Dict[str, Any]]) -> List[int]:
    """distinct_steps is the steps the events go through, each once for a
    run of events at the same step (a step posted many times, its lease
    renewed, or requeued at it)."""
    steps: List[int] = []
    for e in events:
        if not steps or steps[-1] != e["step"]:
            steps.append(e["step"])
    return steps


class WorkerTestCase(unittest.TestCase):
    """WorkerTestCase gives each test a server, a user and a worker Client."""

    def start(self, **env: str) -> StephubServer:
        self.server = StephubServer(**env)
        self.addCleanup(self.server.stop)
        self.client = Client(self.server.url, WORKER_TOKEN, retry=FAST_RETRY)
        return self.server

    def claim(self, video_id: int, client: Optional[Client] = None, **kw: Any) -> Job:
        job = (client or self.client).claim(wait=10, **kw)
        self.assertIsNotNone(job, "no video to claim within 10s")
        assert job is not None
        self.addCleanup(job.close)
        self.assertEqual(job.id, video_id)
        return job

    def assert_ids_in_order(self, events: List[Dict[str, Any]]) -> None:
        self.assertEqual([e["id"] for e in events], list(range(1, len(events) + 1)),
                         "event ids must be 1, 2, 3... each once, none missing")


class CompletionTest(WorkerTestCase):
    def test_job_runs_to_completion_and_watchers_see_each_step_once(self) -> None:
        s = self.start(LEASE="30s")
        video = s.generate(USER)
        watcher = s.watch(USER, video["id"])
        job = self.claim(video["id"])
        self.assertEqual(job.video.status, "processing")
        self.assertEqual(job.resume_step, 1)
        self.assertAlmostEqual(job.lease_seconds, 30, delta=0.01)
        self.assertTrue(job.lease_token)
        ids = []
        with job:
            for n in range(job.resume_step, job.total_steps + 1):
                ids.append(job.post(n, f"step {n}", data={"frames": n * 10}))
            ids.append(job.complete(VIDEO_URL))
        self.assertTrue(job.finished)
        self.assertEqual(ids, list(range(1, 10)))

        events = watcher.wait()
        self.assertEqual(watcher.status, 200)
        self.assert_ids_in_order(events)
        self.assertEqual(watcher.ids, [e["id"] for e in events])
        self.assertEqual([e["step"] for e in events], list(range(1, 10)), "each step once, in order")
        self.assertEqual([e["progress"] for e in events], [100 * n // 9 for n in range(1, 9)] + [100])
        self.assertEqual([e.get("data") for e in events[:8]], [{"frames": n * 10} for n in range(1, 9)])
        self.assertEqual(events[-1]["status"], "completed")
        self.assertEqual(events[-1]["video_url"], VIDEO_URL)
        self.assertEqual(s.video(USER, video["id"])["status"], "completed")

        # The job is over: a late post is told so, and stores nothing.
        with self.assertRaises(VideoFinished) as cm:
            job.post(8, "late")
        self.assertEqual((cm.exception.status, cm.exception.code), (409, "video_finished"))

    def test_claim_long_polls(self) -> None:
        s = self.start(LEASE="30s")
        began = time.monotonic()
        self.assertIsNone(self.client.claim(wait=1))
        self.assertGreaterEqual(time.monotonic() - began, 0.9, "an empty claim waits its wait")

        got: List[Optional[Job]] = []
        claimer = threading.Thread(target=lambda: got.append(self.client.claim(wait=20)))
        claimer.start()
        time.sleep(0.3)
        began = time.monotonic()
        video = s.generate(USER)
        claimer.join(10)
        self.assertFalse(claimer.is_alive(), "the claim did not return once a video came")
        self.assertLess(time.monotonic() - began, 5)
        self.assertIsNotNone(got[0])
        assert got[0] is not None
        self.assertEqual(got[0].id, video["id"])
        with self.assertRaises(ValueError):
            self.client.claim(wait=61)


class RetryTest(WorkerTestCase):
    def test_a_post_retried_after_a_lost_answer_is_stored_once(self) -> None:
        s = self.start(LEASE="30s")
        proxy = FlakyProxy(s.url)
        self.addCleanup(proxy.close)
        client = Client(proxy.url, WORKER_TOKEN, retry=FAST_RETRY)
        video = s.generate(USER)
        watcher = s.watch(USER, video["id"])
        job = self.claim(video["id"], client)

        # The server stores step 1, then the connection dies before its
        # answer: the library posts it again, with the same key.
        with self.assertLogs("stephub_worker", "WARNING") as logs:
            proxy.plan("drop")
            self.assertEqual(job.post(1, "step 1"), 1)
            # 503s are retried too, and a drop among them.
            proxy.plan("503", "drop", "503")
            self.assertEqual(job.post(2, "step 2"), 2)
        self.assertEqual(len(logs.output), 4, "each retry is logged")
        # A key of the caller's, posted twice on purpose: stored once.
        self.assertEqual(job.post(3, "step 3", idempotency_key="video-step-3"), 3)
        self.assertEqual(job.post(3, "step 3", idempotency_key="video-step-3"), 3)
        self.assertEqual(job.complete(VIDEO_URL), 4)

        posts = [r for r in proxy.requests if r["path"].endswith("/events")]
        self.assertEqual([(r["body"]["step"], r["action"]) for r in posts],
                         [(1, "drop"), (1, "pass"), (2, "503"), (2, "drop"), (2, "503"), (2, "pass"),
                          (3, "pass"), (3, "pass"), (9, "pass")])
        keys = [r["headers"]["idempotency-key"] for r in posts]
        self.assertEqual(len(set(keys[0:2])), 1, "a retry reuses its key")
        self.assertEqual(len(set(keys[2:6])), 1, "a retry reuses its key")
        self.assertEqual(len(set(keys)), 4, "each call has a key of its own")
        self.assertTrue(all(r["headers"]["lease-token"] == job.lease_token for r in posts))

        events = watcher.wait()
        self.assert_ids_in_order(events)
        self.assertEqual([e["step"] for e in events], [1, 2, 3, 9], "nothing stored twice")

    def test_client_errors_are_not_retried(self) -> None:
        s = self.start(LEASE="30s")
        proxy = FlakyProxy(s.url)
        self.addCleanup(proxy.close)
        video = s.generate(USER)
        job = self.claim(video["id"], Client(proxy.url, WORKER_TOKEN, retry=FAST_RETRY))
        job.post(1, "step 1", progress=50)
        with self.assertRaises(APIError) as cm:
            job.post(1, "step 1 again", progress=10)
        e = cm.exception
        self.assertEqual((e.status, e.code), (422, "validation_failed"))
        self.assertIn("progress", e.fields)
        self.assertIn("backwards", e.fields["progress"])

        with self.assertRaises(APIError) as cm:
            Client(proxy.url, "not-the-token", retry=FAST_RETRY).claim(wait=0)
        self.assertEqual((cm.exception.status, cm.exception.code), (401, "unauthorized"))
        self.assertEqual([r["action"] for r in proxy.requests[-2:]], ["pass", "pass"])
        self.assertEqual(len([r for r in proxy.requests if r["path"].endswith("/events")]), 2,
                         "a 422 is not retried")

        # Nobody listens: retried until the policy gives up.
        proxy.close()
        began = time.monotonic()
        with self.assertLogs("stephub_worker", "WARNING") as logs, self.assertRaises(NetworkError):
            Client(proxy.url, WORKER_TOKEN, retry=RetryPolicy(first=0.05, give_up_after=0.5)).claim(wait=0)
        self.assertLess(time.monotonic() - began, 5)
        self.assertIn("Connection refused", logs.output[0])


class CancelTest(WorkerTestCase):
    def test_a_cancel_stops_the_worker_and_posts_no_failure(self) -> None:
        s = self.start(LEASE="2s")
        video = s.generate(USER)
        watcher = s.watch(USER, video["id"])
        job = self.claim(video["id"])
        with self.assertRaises(VideoCancelled) as cm:
            with job:
                job.post(1, "step 1")
                s.cancel(USER, video["id"])
                job.post(2, "step 2")
        self.assertEqual((cm.exception.status, cm.exception.code), (409, "video_cancelled"))
        self.assertIs(job.stop_error, cm.exception)
        self.assertFalse(job.finished)

        events = watcher.wait()
        self.assert_ids_in_order(events)
        self.assertEqual([e["status"] for e in events], ["processing", "cancelled"], "no failure posted")
        self.assertEqual(s.video(USER, video["id"])["status"], "cancelled")
        self.assertEqual(s.credits(USER), 1000, "the credits came back once")

    def test_a_cancel_during_a_long_step_stops_job_sleep(self) -> None:
        s = self.start(LEASE="2s")
        video = s.generate(USER)
        job = self.claim(video["id"])
        threading.Timer(0.3, s.cancel, (USER, video["id"])).start()
        began = time.monotonic()
        with self.assertRaises(VideoCancelled):
            with job:
                job.post(1, "step 1")
                job.sleep(30)  # the renewal's next post learns of the cancel
        self.assertLess(time.monotonic() - began, 5, "the long step did not stop soon after the cancel")
        self.assertFalse(job.renewing)
        self.assertEqual(s.video(USER, video["id"])["status"], "cancelled")


class KilledWorkerTest(WorkerTestCase):
    def test_a_killed_workers_video_is_finished_by_another(self) -> None:
        s = self.start(LEASE="2s")
        video = s.generate(USER)
        watcher = s.watch(USER, video["id"])
        here = os.path.dirname(os.path.abspath(__file__))
        first = subprocess.Popen(
            [sys.executable, os.path.join(here, "worker_process.py"), s.url, WORKER_TOKEN, str(video["id"]), "3"],
            stdout=subprocess.PIPE, text=True,
        )
        assert first.stdout is not None
        self.addCleanup(first.stdout.close)
        self.addCleanup(first.wait)
        self.addCleanup(first.kill)
        self.assertEqual(first.stdout.readline().strip(), "posted")
        time.sleep(1)  # working on step 3, renewing its lease
        os.kill(first.pid, signal.SIGKILL)
        first.wait()

        # The lease runs out within LEASE; the video comes back to the queue.
        job = self.claim(video["id"])
        self.assertEqual((job.video.step, job.resume_step), (3, 3))
        with job:
            for n in range(job.resume_step, job.total_steps + 1):
                job.post(n, f"step {n} by the second worker")
            job.complete(VIDEO_URL)

        events = watcher.wait()
        self.assert_ids_in_order(events)
        self.assertEqual([e["status"] for e in events].count("pending"), 1)
        pending = next(i for i, e in enumerate(events) if e["status"] == "pending")
        self.assertTrue(all(e["message"].endswith("first worker") for e in events[:pending]))
        self.assertTrue(all(e["message"].endswith("second worker") for e in events[pending + 1:-1]))
        self.assertEqual(distinct_steps(events), list(range(1, 10)), "no step goes back or comes again")
        self.assertEqual(events[-1]["status"], "completed")


class ContextManagerTest(WorkerTestCase):
    def test_the_job_fails_when_the_body_raises(self) -> None:
        s = self.start(LEASE="30s")
        video = s.generate(USER)
        watcher = s.watch(USER, video["id"])
        job = self.claim(video["id"])
        with self.assertRaisesRegex(RuntimeError, "the renderer crashed"):
            with job:
                job.post(1, "step 1")
                job.post(2, "step 2", progress=30)
                raise RuntimeError("the renderer crashed")
        self.assertTrue(job.finished)

        events = watcher.wait()
        self.assert_ids_in_order(events)
        last = events[-1]
        self.assertEqual((last["status"], last["step"], last["progress"]), ("failed", 2, 30))
        self.assertEqual(last["error"], "the renderer crashed")
        v = s.video(USER, video["id"])
        self.assertEqual((v["status"], v["error"]), ("failed", "the renderer crashed"))
        self.assertEqual(s.credits(USER), 1000, "the credits came back")

    def test_the_job_is_left_alone_when_the_process_stops_or_the_body_returns(self) -> None:
        s = self.start(LEASE="30s")

        class Interrupted(BaseException):
            pass

        for video, body_raises in ((s.generate(USER), True), (s.generate(USER), False)):
            job = self.claim(video["id"])
            try:
                with job:
                    job.post(1, "step 1")
                    if body_raises:
                        raise Interrupted()  # like KeyboardInterrupt: another worker will take it over
            except Interrupted:
                pass
            v = s.video(USER, video["id"])
            self.assertEqual((v["status"], v["step"]), ("processing", 1), "nothing posted on exit")


class LeaseTest(WorkerTestCase):
    def test_renewal_keeps_a_long_step_alive(self) -> None:
        s = self.start(LEASE="2s")
        video = s.generate(USER)
        watcher = s.watch(USER, video["id"])
        job = self.claim(video["id"])
        self.assertAlmostEqual(job.lease_seconds, 2, delta=0.01)
        claimed_until = job.lease_expires_at
        with job:
            job.post(1, "step 1", data={"phase": "long"})
            time.sleep(5)  # 2.5 leases of a body that posts nothing
            job.post(2, "step 2")
            self.assertGreater(job.lease_expires_at, claimed_until)
            self.assertTrue(job.renewing)
            job.complete(VIDEO_URL)
        self.assertFalse(job.renewing, "the renewal thread outlived the job")

        events = watcher.wait()
        self.assert_ids_in_order(events)
        self.assertNotIn("pending", [e["status"] for e in events], "the lease never ran out")
        renewals = events[1:-2]
        self.assertGreaterEqual(len(renewals), 3)
        for e in renewals:  # the last step again, unchanged
            self.assertEqual((e["step"], e["message"], e["progress"], e.get("data")),
                             (1, "step 1", 11, {"phase": "long"}))
        self.assertEqual(distinct_steps(events), [1, 2, 9])

    def test_without_renewal_a_long_step_loses_the_lease(self) -> None:
        s = self.start(LEASE="2s")
        video = s.generate(USER)
        job = self.claim(video["id"], renew=False)
        with self.assertRaises(LeaseLost) as cm:
            with job:
                job.post(1, "step 1")
                v = s.wait_status(USER, video["id"], "pending")
                self.assertEqual(v["status"], "pending", "the lease did not run out")
                job.post(2, "step 2")
        self.assertEqual((cm.exception.status, cm.exception.code), (409, "lease_lost"))
        self.assertEqual(s.video(USER, video["id"])["status"], "pending", "no failure posted")


if __name__ == "__main__":
    unittest.main()
