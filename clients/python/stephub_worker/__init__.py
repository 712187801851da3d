"""stephub_worker: a worker library for stephub, standard library only.

A worker claims pending videos from a stephub server run with
``PIPELINE=external`` and posts the steps of each::

    from stephub_worker import Client, JobStopped

    client = Client("http://localhost:8000", "secret")   # WORKER_TOKEN
    for job in client.jobs(wait=30):
        try:
            with job:                      # renews the lease; fails the job if the body raises
                for n in range(job.resume_step, job.total_steps + 1):
                    job.post(n, f"step {n}")
                    job.sleep(2)           # raises VideoCancelled soon after a cancel
                job.complete("/uploads/videos/mock-video.mp4")
        except JobStopped:
            pass                           # cancelled, finished, or the lease lost

See the README beside this package for the details.
"""

from .client import MAX_CLAIM_WAIT, Client, RetryPolicy, Video
from .errors import (
    APIError,
    JobStopped,
    LeaseLost,
    NetworkError,
    StephubError,
    VideoCancelled,
    VideoFinished,
)
from .job import MAX_TEXT_CHARS, Job

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Job",
    "Video",
    "RetryPolicy",
    "StephubError",
    "NetworkError",
    "APIError",
    "JobStopped",
    "VideoCancelled",
    "VideoFinished",
    "LeaseLost",
    "MAX_CLAIM_WAIT",
    "MAX_TEXT_CHARS",
]
