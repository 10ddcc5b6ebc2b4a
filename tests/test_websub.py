"""WebSub with real processes on 127.0.0.1: `syndicator serve` and `syndicator build` pinging an
external hub (tests/websub_peer.py records what it is sent)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

from tests.serverproc import ServerProcess, free_port
from tests.websub_peer import Peer, Record

FEED_SUFFIXES = (".rss", ".atom", ".json")


def _post(seeds: Path, i: int, tags: list[str], title: str | None = None) -> None:
    text = (f"---\ntitle: {title or f'Post {i}'}\ndate: 2024-03-{i + 1:02d}T08:00:00Z\nid: urn:test:{i}\n"
            f"tags: [{', '.join(tags)}]\n---\n\nBody of post {i}.\n")
    (seeds / f"p{i:03d}.md").write_text(text, encoding="utf-8")


def _seed(seeds: Path) -> None:
    seeds.mkdir(parents=True, exist_ok=True)
    for i in range(6):
        _post(seeds, i, ["Red"] if i % 2 else ["Blue"])


def _feeds(feeds_dir: Path) -> dict[str, bytes]:
    """Feed path -> bytes, archive pages left out (they name no hub)."""
    return {p.relative_to(feeds_dir).as_posix(): p.read_bytes() for p in feeds_dir.rglob("*")
            if p.suffix in FEED_SUFFIXES and "/archive/" not in p.as_posix() and not p.name.startswith(".")}


def _pings(records: list[Record]) -> list[dict[str, list[str]]]:
    return [parse_qs(r["body"]) for r in records if r["method"] == "POST"]


def _pinged(records: list[Record], since: int = 0) -> list[str]:
    """The feed URLs pinged (answered 2xx or not) in records[since:]."""
    out = []
    for form in _pings(records[since:]):
        assert form["hub.mode"] == ["publish"] and form["hub.url"] == form["hub.topic"], form
        out += form["hub.url"]
    return out


def test_serve_pings_the_hub_for_the_feeds_whose_bytes_changed(tmp_path: Path) -> None:
    """The first pass pings every feed; an edit pings exactly the feeds it changed; a hub that
    fails is asked again (one log line per failed round) and publishing never waits for it."""
    with Peer(tmp_path / "hub", fail=1) as hub:
        srv = ServerProcess(tmp_path / "site", seeds=None, config={"websub_hubs": [hub.url("/hub")]})
        _seed(srv.seeds_dir)
        with srv:
            first = _feeds(srv.feeds_dir)
            assert len(first) == 9  # all, blue, red in three formats
            expected = sorted(srv.url(rel) for rel in first)
            # the first ping is answered 503: that feed is pinged again a second later
            records = hub.wait(lambda rs: len(_pings(rs)) == 10)
            assert sorted(_pinged(records)[:9]) == expected and _pinged(records)[9:] == _pinged(records)[:1]
            assert all(r["path"] == "/hub" and r["headers"]["content-type"] == "application/x-www-form-urlencoded"
                       for r in records)
            assert records[9]["time"] - records[8]["time"] >= 0.9
            failed = [line for line in srv.log().splitlines() if "websub ping" in line]
            assert len(failed) == 1 and "1 of 9 feeds failed (HTTP 503); retry 1 of 5 in 1 s" in failed[0], failed

            seen = len(records)
            _post(srv.seeds_dir, 3, ["Red"], title="Post 3, edited")
            deadline = time.monotonic() + 10
            while _feeds(srv.feeds_dir) == first and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # the pass finishes writing
            after = _feeds(srv.feeds_dir)
            changed = sorted(srv.url(rel) for rel in after if after[rel] != first.get(rel))
            assert changed == sorted(srv.url(f"{stem}{ext}") for stem in ("all", "topics/red") for ext in FEED_SUFFIXES)
            records = hub.wait(lambda rs: len(_pings(rs)) >= seen + len(changed))
            time.sleep(0.3)  # nothing more follows
            assert sorted(_pinged(hub.records(), seen)) == changed

            status, _, body = srv.request("GET", "/healthz")
            pings = json.loads(body)["websub_pings"][hub.url("/hub")]
            assert status == 200 and pings["pending"] == 0 and pings["last_error"] == "HTTP 503"
        assert srv.proc is not None and srv.proc.returncode == 0


def test_a_dead_hub_never_delays_publishing(tmp_path: Path) -> None:
    """Nothing listens at the hub's address: feeds are written as fast as without a hub, and
    /healthz says what failed."""
    dead = f"http://127.0.0.1:{free_port()}/hub"
    srv = ServerProcess(tmp_path / "site", seeds=None, config={"websub_hubs": [dead], "scan_interval": 0.2})
    _seed(srv.seeds_dir)
    with srv:
        started = time.monotonic()
        _post(srv.seeds_dir, 9, ["Green"])
        while not (srv.feeds_dir / "topics" / "green.atom").exists():
            assert time.monotonic() - started < 5, srv.log()
            time.sleep(0.02)
        deadline = time.monotonic() + 5
        while True:
            pings = json.loads(srv.request("GET", "/healthz")[2])["websub_pings"][dead]
            if pings["last_error"] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert "ConnectionRefusedError" in pings["last_error"] and pings["last_ok_seconds_ago"] is None
        assert pings["pending"] > 0  # waiting for its retry
        assert "Traceback" not in srv.log()


def test_build_pings_the_hub(tmp_path: Path) -> None:
    """`syndicator build` pings the hubs for what it wrote before it exits; a second build over
    the same folder writes and pings nothing."""
    seeds, out = tmp_path / "seeds", tmp_path / "feeds"
    _seed(seeds)
    with Peer(tmp_path / "hub") as hub:
        config = tmp_path / "syndicator.yaml"
        config.write_text(f"websub_hubs: [{hub.url('/hub')}]\nbase_url: https://feeds.example.org/\n")
        cmd = [sys.executable, "-m", "syndicator", "--config", str(config), "build", "--seeds", str(seeds),
               "--out", str(out)]
        subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True)
        pinged = _pinged(hub.records())
        assert sorted(pinged) == sorted(f"https://feeds.example.org/{rel}" for rel in _feeds(out))
        subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True)
        assert len(_pings(hub.records())) == len(pinged)
