"""Test helpers: a real `stephub serve` in a subprocess, a user's calls to it,
an SSE watcher, and a TCP proxy that loses answers on purpose.

The server is the binary that `make build` makes (bin/stephub), or the one
STEPHUB_BIN names; without either, it is built with `go build` into a
temporary folder once per test run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional, Tuple

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

JWT_SECRET = "python-test-secret"
WORKER_TOKEN = "python-worker-token"

_LISTENING = re.compile(r'"msg":"listening","addr":"([^"]+)"')


class Binary:
    """Binary finds or builds the stephub binary, once per test run."""

    _lock = threading.Lock()
    _path: Optional[str] = None
    _tmp: Optional[str] = None

    @classmethod
    def path(cls) -> str:
        with cls._lock:
            if cls._path is None:
                cls._path = cls._find()
            return cls._path

    @classmethod
    def _find(cls) -> str:
        env = os.environ.get("STEPHUB_BIN")
        if env:
            path = os.path.abspath(env)
            if not os.access(path, os.X_OK):
                raise RuntimeError(f"STEPHUB_BIN={env} is not an executable")
            return path
        built = os.path.join(REPO, "bin", "stephub")
        if os.access(built, os.X_OK):
            return built
        go = shutil.which("go")
        if go is None:
            raise RuntimeError("no bin/stephub and no go to build it: run `make build` first, or set STEPHUB_BIN")
        cls._tmp = tempfile.mkdtemp(prefix="stephub-bin-")
        path = os.path.join(cls._tmp, "stephub")
        subprocess.run([go, "build", "-o", path, "./cmd/stephub"], cwd=REPO, check=True)
        return path


class StephubServer:
    """StephubServer is `stephub serve` with PIPELINE=external on a free
    loopback port and a fresh SQLite database, until stop()."""

    def __init__(self, **env: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="stephub-py-")
        self.log_path = os.path.join(self.dir, "serve.log")
        vars = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.dir,
            "ADDR": "127.0.0.1:0",
            "DATABASE_URL": "sqlite://" + os.path.join(self.dir, "stephub.db"),
            "PIPELINE": "external",
            "WORKER_TOKEN": WORKER_TOKEN,
            "JWT_SECRET": JWT_SECRET,
            "MAX_ATTEMPTS": "3",
        }
        vars.update(env)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [Binary.path(), "serve"], env=vars, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=self._log,
        )
        self.url = ""
        deadline = time.monotonic() + 15
        while not self.url:
            m = _LISTENING.search(self.logs())
            if m:
                self.url = "http://" + m.group(1)
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("stephub serve did not start:\n" + self.logs())
            time.sleep(0.02)
        self._tokens: Dict[str, str] = {}

    def logs(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self) -> None:
        """stop ends the server as SIGTERM does, and removes its files."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # A user's side.

    def user_token(self, sub: str) -> str:
        """user_token mints a token for user sub with `stephub token`."""
        if sub not in self._tokens:
            out = subprocess.run(
                [Binary.path(), "token", "-sub", sub], env={"JWT_SECRET": JWT_SECRET, "PATH": os.environ.get("PATH", "")},
                check=True, capture_output=True, text=True,
            )
            self._tokens[sub] = out.stdout.strip()
        return self._tokens[sub]

    def call(self, method: str, path: str, token: str, body: Any = None) -> Tuple[int, Any]:
        """call sends a request and returns its status and decoded JSON."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + token)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            with e:
                raw = e.read()
            return e.code, json.loads(raw) if raw else None

    def generate(self, user: str) -> Dict[str, Any]:
        status, video = self.call("POST", "/api/v1/videos/generate", self.user_token(user),
                                  {"prompt": "A cat surfing a wave at sunset", "model": "sora-2"})
        if status != 201:
            raise AssertionError(f"generate: {status} {video}")
        return video

    def video(self, user: str, video_id: int) -> Dict[str, Any]:
        status, video = self.call("GET", f"/api/v1/videos/{video_id}", self.user_token(user))
        if status != 200:
            raise AssertionError(f"get video {video_id}: {status} {video}")
        return video

    def cancel(self, user: str, video_id: int) -> None:
        status, body = self.call("POST", f"/api/v1/videos/{video_id}/cancel", self.user_token(user))
        if status != 200:
            raise AssertionError(f"cancel {video_id}: {status} {body}")

    def credits(self, user: str) -> int:
        _, me = self.call("GET", "/api/v1/users/me", self.user_token(user))
        return int(me["credits"])

    def watch(self, user: str, video_id: int) -> "Watcher":
        return Watcher(self.url, self.user_token(user), video_id)

    def wait_status(self, user: str, video_id: int, status: str, timeout: float = 10.0) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            video = self.video(user, video_id)
            if video["status"] == status or time.monotonic() > deadline:
                return video
            time.sleep(0.05)


class Watcher:
    """Watcher reads a video's SSE stream in a thread, as a browser's
    EventSource would, until the server ends it after the terminal event."""

    def __init__(self, server: str, token: str, video_id: int) -> None:
        self.events: List[Dict[str, Any]] = []
        self.ids: List[int] = []  # the `id:` lines
        self.status = 0
        self.error: Optional[BaseException] = None
        self.connected = threading.Event()
        self._req = urllib.request.Request(
            f"{server}/api/v1/videos/{video_id}/stream",
            headers={"Authorization": "Bearer " + token, "Accept": "text/event-stream"},
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self.connected.wait(10):
            raise AssertionError("the stream did not open within 10s")
        if self.error is not None:
            raise AssertionError(f"the stream failed: {self.error!r}")

    def _run(self) -> None:
        try:
            with urllib.request.urlopen(self._req, timeout=30) as resp:
                self.status = resp.status
                self.connected.set()
                data: List[str] = []
                for raw in resp:
                    line = raw.decode("utf-8").rstrip("\r\n")
                    if line.startswith("id:"):
                        self.ids.append(int(line[3:].strip()))
                    elif line.startswith("data:"):
                        data.append(line[5:][1:] if line[5:].startswith(" ") else line[5:])
                    elif line == "" and data:
                        self.events.append(json.loads("\n".join(data)))
                        data = []
        except BaseException as e:  # reported by wait
            self.error = e
        finally:
            self.connected.set()

    def wait(self, timeout: float = 20.0) -> List[Dict[str, Any]]:
        """wait returns every event once the stream ended."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the stream did not end within {timeout}s; got {self.events}")
        if self.error is not None:
            raise AssertionError(f"the stream failed: {self.error!r}")
        return self.events


class FlakyProxy:
    """FlakyProxy forwards requests to a server, one per connection (urllib
    sends `Connection: close`), and obeys a plan for the next ones:

    - "drop": forward the request, read the server's whole answer, then
      reset the connection instead of passing the answer on: the request
      took effect and the client cannot know it;
    - "503": answer 503 itself, forwarding nothing;
    - anything else, or an empty plan: pass the request and its answer.
    """

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self._upstream = (host, int(port))
        self._lock = threading.Lock()
        self._plan: List[str] = []
        self.requests: List[Dict[str, Any]] = []  # what reached the proxy: method, path, headers, body, action
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def plan(self, *actions: str) -> None:
        with self._lock:
            self._plan = list(actions)

    def close(self) -> None:
        """close stops listening: connections to it are refused."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accept
        except OSError:
            pass
        self._sock.close()
        self._thread.join(5)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                request += chunk
            head, _, body = request.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
            length = int(headers.get("content-length", "0"))
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                body += chunk
            with self._lock:
                action = self._plan.pop(0) if self._plan else "pass"
                self.requests.append({"method": method, "path": path, "headers": headers,
                                      "body": json.loads(body) if body else None, "action": action})
            if action == "503":
                answer = b'{"error":{"code":"unavailable","message":"the proxy says no"}}'
                conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                             b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))
                return
            with socket.create_connection(self._upstream, timeout=90) as up:
                up.sendall(head + b"\r\n\r\n" + body)
                response = b""
                while True:
                    chunk = up.recv(65536)
                    if not chunk:
                        break
                    response += chunk
            if action == "drop":
                # RST rather than FIN: the connection dies mid-exchange.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            conn.sendall(response)
