"""Start the real `syndicator serve` process for end-to-end tests (and benchmarks).

    with ServerProcess(tmp_path) as srv:              # copies seeds/ into tmp_path/seeds
        status, headers, body = srv.request("GET", "/all.rss")
        srv.url("/all.rss")                           # http://127.0.0.1:PORT/all.rss

It runs `python -m syndicator serve --host 127.0.0.1 --port <free port> --seeds <tmp>/seeds
--out <tmp>/feeds --state <tmp>/var` in `workdir` (so no config/syndicator.yaml is picked up),
with a clean environment: no inherited SYNDICATOR_* variables, SYNDICATOR_BASE_URL set to the
server's own URL (so autodiscovery links and 301s point back at it), plus `env` and `args`.
`config` (a dict) is written to <workdir>/syndicator.yaml and passed with --config.
It waits until /healthz says anything but `starting` and `stop()` sends SIGTERM and returns the exit code.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


@contextlib.contextmanager
def nginx_in_front(srv: ServerProcess, workdir: Path, **kwargs: Any) -> Iterator[ServerProcess]:
    """nginx with contrib/nginx.conf on srv's feeds/ (srv as its upstream), as an HTTP client
    (`bench/serve_bench.py start_nginx` writes the configuration); stopped on exit."""
    spec = importlib.util.spec_from_file_location("serve_bench", ROOT / "bench" / "serve_bench.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    user = "user root;" if os.geteuid() == 0 else ""  # pytest's temp folders are private
    started = bench.start_nginx(workdir / "nginx", srv.feeds_dir, srv.port, main_extra=user, **kwargs)
    assert started is not None, "nginx is not installed"
    proc, port = started
    try:
        yield ServerProcess(workdir / "client", seeds=None, port=port)  # only used as an HTTP client
    finally:
        proc.send_signal(signal.SIGQUIT)
        proc.wait(10)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(
        self,
        workdir: Path,
        *,
        seeds: Path | None = SEEDS,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        config: Mapping[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.seeds_dir = self.workdir / "seeds"
        self.feeds_dir = self.workdir / "feeds"
        self.state_dir = self.workdir / "var"
        self.host = host
        self.port = port
        self.args = list(args)
        self.extra_env = dict(env or {})
        self.config = dict(config) if config is not None else None
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "serve.log"
        self.workdir.mkdir(parents=True, exist_ok=True)
        if seeds is not None and not self.seeds_dir.exists():
            shutil.copytree(seeds, self.seeds_dir)
        self.seeds_dir.mkdir(exist_ok=True)

    # -- life cycle ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def url(self, path: str = "/") -> str:
        return self.base_url + path.lstrip("/")

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "syndicator"]
        if self.config is not None:
            cfg = self.workdir / "syndicator.yaml"
            cfg.write_text(yaml.safe_dump(self.config, allow_unicode=True), encoding="utf-8")
            cmd += ["--config", str(cfg)]
        return cmd + ["serve", "--host", self.host, "--port", str(self.port), "--seeds", str(self.seeds_dir),
                      "--out", str(self.feeds_dir), "--state", str(self.state_dir), *self.args]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATOR_")}
        env["SYNDICATOR_BASE_URL"] = self.base_url
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return env

    def start(self) -> ServerProcess:
        fixed = self.port is not None
        for _attempt in range(3):
            if not fixed:
                self.port = free_port(self.host)
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(self.command(), cwd=self.workdir, env=self.environment(),
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            if self._wait_ready():
                return self
            if fixed or "in use" not in self.log():
                break
        code = self.proc.poll() if self.proc else None
        self.kill()
        raise RuntimeError(f"syndicator serve did not start (exit {code}):\n{self.log()[-4000:]}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                # a restart answers at once with "starting" while it catches up: ready means current
                if self.health(timeout=2)["status"] != "starting":
                    return True
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait; the exit code (SIGKILL and None if it did not stop in time)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> ServerProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- talking to it ---------------------------------------------------------------------------

    def request(self, method: str, path: str, headers: Mapping[str, str] | None = None,
                body: bytes | None = None, timeout: float = 10) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request with http.client, the path sent exactly as given (no normalisation)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def health(self, headers: Mapping[str, str] | None = None, timeout: float = 10) -> dict[str, Any]:
        """The /healthz document; its HTTP code checked against it (200 only when ok, else 503
        with Retry-After)."""
        status, h, body = self.request("GET", "/healthz", headers, timeout=timeout)
        doc = json.loads(body)
        if status == 503 and doc.get("status") != "ok" and h.get("Retry-After", "").isdigit():
            return doc
        if status == 200 and doc.get("status") == "ok" and "Retry-After" not in h:
            return doc
        raise ValueError(f"/healthz answered {status} (Retry-After {h.get('Retry-After')}) with {doc}")

    def raw(self, data: bytes, timeout: float = 10) -> bytes:
        """Send raw bytes (a whole request), return everything the server answers until it closes."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            s.sendall(data)
            chunks = []
            while True:
                try:
                    chunk = s.recv(65536)
                except TimeoutError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks)
