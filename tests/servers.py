"""Real servers on 127.0.0.1 for tests: `transformers serve` with a tiny model, and a proxy in front of it that
injects the faults real endpoints show (timeouts, 429 with Retry-After, 500, replies cut off or malformed)."""

from __future__ import annotations

import contextlib
import http.client
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FAULTS = ("timeout", "429", "500", "truncated", "malformed")


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def transformers_serve(model: Path, log: Path, continuous: bool = False, dtype: str = "float32",
                       device: str = "cpu"):
    """`transformers serve MODEL` on a free loopback port; yields its /v1 base URL. Without `continuous`
    batching it answers one request at a time, so greedy replies do not depend on what else is in flight."""
    port = free_port()
    hub_cache = log.parent / "hf-hub-cache"  # transformers 5.19's serve scans the Hub cache: it must exist
    hub_cache.mkdir(exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_CACHE": str(hub_cache)}
    batching = "--continuous-batching" if continuous else "--no-continuous-batching"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "transformers.cli.transformers", "serve", str(model),
                                 "--host", "127.0.0.1", "--port", str(port), "--device", device, "--dtype", dtype,
                                 batching], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"transformers serve did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


class FaultProxy:
    """Forwards to `upstream`; every `every`-th request (from the `first`-th) fails instead, cycling through
    FAULTS. Records each request's path, its Authorization header and the fault it got."""

    def __init__(self, upstream: str, every: int = 3, first: int = 1, delay: float = 3.0, retry_after: str = "1",
                 faults: tuple[str, ...] = FAULTS):
        self.upstream, self.every, self.first, self.delay, self.retry_after = upstream, every, first, delay, retry_after
        self.log: list[tuple[str, str | None, str | None]] = []
        self._faults, self._lock, self._count = itertools.cycle(faults), threading.Lock(), itertools.count()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy.handle(self, None)

            def do_POST(self):
                proxy.handle(self, self.rfile.read(int(self.headers.get("Content-Length", 0))))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _fault(self) -> str | None:
        with self._lock:
            n = next(self._count)
            return next(self._faults) if n >= self.first and (n - self.first) % self.every == 0 else None

    def handle(self, h: BaseHTTPRequestHandler, body: bytes | None) -> None:
        fault = self._fault()
        self.log.append((h.path, h.headers.get("Authorization"), fault))
        if fault == "timeout":
            time.sleep(self.delay)  # longer than the client waits: it gives up and tries again
            h.close_connection = True
            return
        if fault in ("429", "500"):
            h.send_response(int(fault))
            if fault == "429":
                h.send_header("Retry-After", self.retry_after)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        status, payload = self._forward(h.path, body)
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        if fault == "truncated":  # promises the whole body, sends half, hangs up
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload[: len(payload) // 2])
            h.close_connection = True
            return
        if fault == "malformed":  # a complete HTTP reply whose JSON is cut short
            payload = payload[: len(payload) // 2]
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    def _forward(self, path: str, body: bytes | None) -> tuple[int, bytes]:
        host, port = self.upstream.split("//")[1].split("/")[0].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        try:
            conn.request("POST" if body is not None else "GET", path, body=body,
                         headers={"Content-Type": "application/json"})
            reply = conn.getresponse()
            return reply.status, reply.read()
        finally:
            conn.close()

    @property
    def faults(self) -> list[str]:
        return [f for _, _, f in self.log if f]
