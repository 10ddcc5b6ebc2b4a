"""What an operator sees of a running `serve`: the access log and /metrics, from the real
process over real HTTP (the counts include answers the server replays without the app)."""

from __future__ import annotations

import re
import signal
from pathlib import Path

from tests.serverproc import ServerProcess
from tests.test_daemon import wait_for

CONFIG = {"scan_interval": 0.3}
BASE = {"SYNDICATOR_BASE_URL": "http://feeds.example/"}
FEEDLY = "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 42 subscribers; )"
COMBINED = re.compile(r'^(\S+) - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "([^"\\]*(?:\\.[^"\\]*)*)" (\d{3}) '
                      r'(\d+|-) "([^"\\]*(?:\\.[^"\\]*)*)" "([^"\\]*(?:\\.[^"\\]*)*)"$')


def samples(text: str) -> dict[str, float]:
    """Prometheus text format: `name{labels} value` lines, keyed by `name{labels}`."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def access_lines(text: str) -> list[re.Match[str]]:
    return [m for line in text.splitlines() if (m := COMBINED.match(line))]


def test_metrics_count_builds_requests_savings_and_subscribers(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, config=CONFIG, env=BASE) as srv:
        status, h, _ = srv.request("GET", "/all.rss")
        assert status == 200
        for _ in range(3):  # the same request again: answered by the replay, counted all the same
            assert srv.request("GET", "/all.rss", {"If-None-Match": h["ETag"]})[0] == 304
        assert srv.request("GET", "/all.atom", {"Accept-Encoding": "gzip", "User-Agent": FEEDLY})[0] == 200
        assert srv.request("GET", "/nope")[0] == 404
        custom, gzipped = (srv.request("GET", "/topics/ai,azure.rss", {"Accept-Encoding": enc})[2]
                           for enc in ("identity", "gzip"))  # a custom feed: no file, the app gives its size
        status, h, body = srv.request("GET", "/metrics")
        assert status == 200 and h["Content-Type"].startswith("text/plain") and h["Cache-Control"] == "no-store"
        got = samples(body.decode())
        assert got['syndicator_http_requests_total{route="feed",status="304"}'] == 3
        assert got['syndicator_http_requests_total{route="not_found",status="404"}'] == 1
        rss = (srv.feeds_dir / "all.rss").stat().st_size
        assert got['syndicator_http_saved_bytes_total{by="304"}'] == 3 * rss
        atom, atom_gz = ((srv.feeds_dir / name).stat().st_size for name in ("all.atom", "all.atom.gz"))
        assert got['syndicator_http_saved_bytes_total{by="gzip"}'] == atom - atom_gz + len(custom) - len(gzipped)
        assert got['syndicator_http_requests_total{route="feed",status="200"}'] == 4
        assert got['syndicator_http_sent_bytes_total'] >= rss + atom_gz
        assert got['syndicator_feed_subscribers{feed="all.atom",reader="Feedly"}'] == 42
        assert got['syndicator_build_passes_total{outcome="ok"}'] >= 1
        assert got["syndicator_posts_published"] == 4 and got["syndicator_post_errors"] == 0
        assert got["syndicator_files_written_total"] > 30 and got["syndicator_build_duration_seconds_count"] >= 1
        assert got["syndicator_http_cache_bytes"] > 0  # the replayed 304 is kept in memory
        assert got["syndicator_file_cache_bytes"] >= rss + atom  # the files answered from, with twins

        # a client behind the proxy (not in metrics_networks) is not shown them
        assert srv.request("GET", "/metrics", {"X-Forwarded-For": "203.0.113.5"})[0] == 404


def test_metrics_off_with_no_networks(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, config={**CONFIG, "metrics_networks": []}, env=BASE) as srv:
        assert srv.request("GET", "/metrics")[0] == 404


def test_access_log_one_combined_line_per_request(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, config=CONFIG, env=BASE) as srv:
        srv.request("GET", "/all.json", {"User-Agent": 'Tricky "agent" \\ x', "Referer": "https://example.org/"})
        srv.request("HEAD", "/all.rss", {"X-Forwarded-For": "198.51.100.7"})  # via a trusted proxy
        srv.request("GET", "/nope?x=1")
        # (the start's /healthz polls are logged too, and lines are written a batch at a time)
        lines = wait_for(lambda: len(found := [m for m in access_lines(srv.log()) if "/healthz" not in m.group(2)])
                         >= 3 and found, 5, "three access lines")
    first, head, missing = lines[-3:]
    assert first.group(1) == "127.0.0.1" and first.group(2) == "GET /all.json HTTP/1.1" and first.group(3) == "200"
    assert int(first.group(4)) == (srv.feeds_dir / "all.json").stat().st_size
    assert first.group(5) == "https://example.org/" and first.group(6) == 'Tricky \\"agent\\" \\\\ x'
    assert head.group(1) == "198.51.100.7" and head.group(2).startswith("HEAD /all.rss") and head.group(4) == "-"
    assert missing.group(2) == "GET /nope?x=1 HTTP/1.1" and missing.group(3) == "404"


def test_access_log_to_a_file_or_off(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    with ServerProcess(tmp_path / "a", config={**CONFIG, "access_log": str(path)}, env=BASE) as srv:
        srv.request("GET", "/all.rss")
        wait_for(lambda: path.exists() and "GET /all.rss" in path.read_text(), 5, "the line in the file")
        path.rename(tmp_path / "access.log.1")  # logrotate moves it away, then sends SIGHUP
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: srv.request("GET", "/all.json")[0] == 200 and path.exists()
                 and "GET /all.json" in path.read_text(), 10, "lines in a new file")
    assert not access_lines(srv.log())
    with ServerProcess(tmp_path / "b", config={**CONFIG, "access_log": "off"}, env=BASE) as quiet:
        quiet.request("GET", "/all.rss")
    assert not access_lines(quiet.log())


def test_access_log_lines_kept_in_its_buffer_are_written_at_shutdown(tmp_path: Path) -> None:
    """Lines are written in blocks (at most a second late); stopping the service writes the
    last ones, to stderr and to a file."""
    path = tmp_path / "access.log"
    for target, read in (("stderr", None), (str(path), path)):
        srv = ServerProcess(tmp_path / target.replace("/", "_"), config={**CONFIG, "access_log": target}, env=BASE)
        with srv:
            srv.request("GET", "/all.rss", {"User-Agent": "last-one"})
        text = read.read_text(encoding="utf-8") if read else srv.log()
        assert any(m.group(6) == "last-one" for m in access_lines(text)), target
