"""A worker in a process of its own, for the test that kills one mid-job:
it claims VIDEO_ID, posts steps 1..STEPS, prints "posted", then works on
(renewing its lease) until it is killed.

usage: worker_process.py SERVER WORKER_TOKEN VIDEO_ID STEPS
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from stephub_worker import Client  # noqa: E402


def main() -> None:
    server, token, video_id, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    job = Client(server, token).claim(wait=10)
    if job is None or job.id != video_id:
        sys.exit(f"claimed {job!r}; want video {video_id}")
    with job:
        for n in range(1, steps + 1):
            job.post(n, f"step {n} by the first worker")
        print("posted", flush=True)
        time.sleep(3600)


if __name__ == "__main__":
    main()
