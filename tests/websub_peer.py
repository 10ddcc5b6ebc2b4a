"""The other side of WebSub for tests and benchmarks, as a real process on 127.0.0.1: a hub
that records publish pings, or a subscriber that answers intent verifications and records
deliveries. Every request is appended to a JSON-lines file as it arrives.

    python -m tests.websub_peer --port P --log FILE [--fail N] [--verify echo|refuse|wrong] [--status 204] [--hang S]

`--fail N`: the first N POSTs are answered 503; `--hang S`: each POST is answered S seconds late. `--verify`: a GET with hub.challenge is answered
with the challenge (echo), 404 (refuse) or another text (wrong). `--status`: the answer to a POST.

    with Peer(tmp_path) as hub:          # starts the process on a free port, waits until it listens
        hub.url("/hub")                  # http://127.0.0.1:P/hub
        hub.wait(lambda rs: len(rs) >= 3)  # the records so far, once the predicate holds
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

Record = dict[str, Any]


def serve(port: int, log: Path, fail: int, verify: str, status: int, hang: float = 0.0) -> None:
    lock = threading.Lock()
    failures = [fail]
    out = open(log, "a", encoding="utf-8")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _record(self, body: bytes) -> None:
            parts = urlsplit(self.path)
            doc = {"time": time.time(), "method": self.command, "path": parts.path,
                   "query": parse_qs(parts.query), "headers": {k.lower(): v for k, v in self.headers.items()},
                   "body": body.decode("utf-8", "replace")}
            with lock:
                out.write(json.dumps(doc) + "\n")
                out.flush()

        def _answer(self, code: int, body: bytes = b"") -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self._record(b"")
            challenge = parse_qs(urlsplit(self.path).query).get("hub.challenge", [""])[0]
            if verify == "echo":
                self._answer(200, challenge.encode())
            elif verify == "wrong":
                self._answer(200, b"not-" + challenge.encode())
            else:
                self._answer(404, b"no")

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._record(body)
            time.sleep(hang)
            with lock:
                failing = failures[0] > 0
                failures[0] -= 1
            self._answer(503 if failing else status)

    ThreadingHTTPServer.request_queue_size = 1024  # a hub's workers connect at once (the default is 5)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("listening", flush=True)
    server.serve_forever()


class Peer:
    """The peer as a child process."""

    def __init__(self, workdir: Path, *, fail: int = 0, verify: str = "echo", status: int = 204,
                 port: int | None = None, hang: float = 0.0) -> None:
        from tests.serverproc import free_port

        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log = self.workdir / f"peer-{self.port}.jsonl"
        self.log.touch()
        self.args = ["--fail", str(fail), "--verify", verify, "--status", str(status), "--hang", str(hang)]
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Peer:
        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.websub_peer", "--port", str(self.port),
                                      "--log", str(self.log), *self.args], cwd=root, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == b"listening", line
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)

    def __enter__(self) -> Peer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def records(self) -> list[Record]:
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]

    def wait(self, ready: Callable[[list[Record]], bool], timeout: float = 15.0) -> list[Record]:
        deadline = time.monotonic() + timeout
        while True:
            records = self.records()
            if ready(records) or time.monotonic() > deadline:
                return records
            time.sleep(0.02)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--fail", type=int, default=0)
    parser.add_argument("--verify", choices=["echo", "refuse", "wrong"], default="echo")
    parser.add_argument("--status", type=int, default=204)
    parser.add_argument("--hang", type=float, default=0.0)
    args = parser.parse_args(argv)
    serve(args.port, args.log, args.fail, args.verify, args.status, args.hang)


if __name__ == "__main__":
    main()
