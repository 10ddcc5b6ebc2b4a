"""WebSub with real processes on 127.0.0.1: `syndicator serve` and `syndicator build` pinging an
external hub (tests/websub_peer.py records what it is sent)."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import feedparser
import pytest

from tests.serverproc import ServerProcess, free_port, nginx_binary, nginx_in_front
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


# ---- our own hub --------------------------------------------------------------------------------


def _hub_post(srv: ServerProcess, **fields: str) -> tuple[int, str]:
    body = urlencode({f"hub.{k}": v for k, v in fields.items()}).encode()
    status, _, text = srv.request("POST", "/hub", {"Content-Type": "application/x-www-form-urlencoded"}, body)
    return status, text.decode()


def _hub_status(srv: ServerProcess) -> dict[str, Any]:
    return json.loads(srv.request("GET", "/healthz")[2])["websub_hub"]


def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _deliveries(records: list[Record]) -> list[Record]:
    return [r for r in records if r["method"] == "POST"]


def _own_hub(tmp_path: Path, **config: Any) -> ServerProcess:
    srv = ServerProcess(tmp_path / "site", seeds=None,
                        config={"websub_hubs": ["self"], "websub_allow_networks": ["127.0.0.0/8"], **config})
    _seed(srv.seeds_dir)
    return srv


def test_own_hub_subscribe_verify_deliver_restart_unsubscribe(tmp_path: Path) -> None:
    """The whole cycle with a real subscriber: subscribe → intent verified → a new post is
    delivered, signed, within a second of the save → an edit elsewhere sends nothing → a restart
    keeps the subscription and sends nothing twice → an edit is delivered → unsubscribe →
    nothing more."""
    with Peer(tmp_path / "sub") as sub:
        srv = _own_hub(tmp_path)
        with srv:
            topic = srv.url("topics/red.atom")
            status, headers, _ = srv.request("GET", "/topics/red.atom")
            assert headers["Link"] == f'<{srv.url("hub")}>; rel="hub", <{topic}>; rel="self"'
            callback = sub.url("/cb/red?token=1")
            status, text = _hub_post(srv, mode="subscribe", callback=callback, topic=topic, secret="s3cret",
                                     lease_seconds="600")
            assert status == 202, text
            records = sub.wait(lambda rs: len(rs) == 1)
            check = records[0]
            assert check["method"] == "GET" and check["path"] == "/cb/red" and check["query"]["token"] == ["1"]
            assert check["query"]["hub.mode"] == ["subscribe"] and check["query"]["hub.topic"] == [topic]
            assert check["query"]["hub.lease_seconds"] == ["600"] and len(check["query"]["hub.challenge"][0]) >= 16
            _until(lambda: _hub_status(srv)["subscriptions"] == 1)
            time.sleep(0.3)
            assert _deliveries(sub.records()) == []  # the subscriber has the feed as it was

            saved = time.time()
            _post(srv.seeds_dir, 20, ["Red"])
            records = sub.wait(lambda rs: len(_deliveries(rs)) == 1)
            first = _deliveries(records)[0]
            assert first["time"] - saved < 1.0
            feed = (srv.feeds_dir / "topics" / "red.atom").read_bytes()
            body = first["body"].encode()
            assert body == feed and b"Post 20" in body and feedparser.parse(body).entries
            assert first["headers"]["content-type"] == "application/atom+xml; charset=utf-8"
            assert first["headers"]["link"] == headers["Link"]
            expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
            assert first["headers"]["x-hub-signature"] == f"sha256={expected}"

            _post(srv.seeds_dir, 0, ["Blue"], title="Post 0, edited")  # not in Red
            _until(lambda: b"Post 0, edited" in (srv.feeds_dir / "all.atom").read_bytes())
            time.sleep(0.5)
            assert len(_deliveries(sub.records())) == 1
        assert srv.proc is not None and srv.proc.returncode == 0

        srv.proc = None
        with srv:  # a restart (same port, so the same feed bytes): the subscription is kept, nothing sent again
            time.sleep(0.5)
            assert _hub_status(srv)["subscriptions"] == 1 and len(_deliveries(sub.records())) == 1
            _post(srv.seeds_dir, 20, ["Red"], title="Post 20, edited")
            records = sub.wait(lambda rs: len(_deliveries(rs)) == 2)
            assert "Post 20, edited" in _deliveries(records)[1]["body"]

            status, text = _hub_post(srv, mode="unsubscribe", callback=callback, topic=topic)
            assert status == 202, text
            records = sub.wait(lambda rs: len(rs) == 4)
            assert records[3]["method"] == "GET" and records[3]["query"]["hub.mode"] == ["unsubscribe"]
            _until(lambda: _hub_status(srv)["subscriptions"] == 0)
            _post(srv.seeds_dir, 20, ["Red"], title="Post 20, edited again")
            _until(lambda: b"edited again" in (srv.feeds_dir / "topics" / "red.atom").read_bytes())
            time.sleep(0.5)
            assert len(_deliveries(sub.records())) == 2
        assert "Traceback" not in srv.log()


def test_own_hub_refuses_what_it_must(tmp_path: Path) -> None:
    """Requests that are wrong or over a limit are refused at once, with the reason; callbacks
    on this machine are refused unless their network is allowed; a subscriber that does not
    echo the challenge is not subscribed."""
    with Peer(tmp_path / "wrong", verify="wrong") as wrong, Peer(tmp_path / "ok") as ok:
        srv = _own_hub(tmp_path, websub_max_per_host=2, websub_allow_networks=[])
        with srv:
            topic = srv.url("all.rss")
            cases = [
                ({"mode": "publish", "callback": ok.url("/a"), "topic": topic}, 400, "hub.mode"),
                ({"mode": "subscribe", "callback": "ftp://127.0.0.1/x", "topic": topic}, 400, "hub.callback"),
                ({"mode": "subscribe", "callback": ok.url("/a"), "topic": "https://elsewhere.example/all.rss"}, 400, "hub.topic"),
                ({"mode": "subscribe", "callback": ok.url("/a"), "topic": srv.url("all.html")}, 400, "hub.topic"),
                ({"mode": "subscribe", "callback": ok.url("/a"), "topic": srv.url("all/archive/1.rss")}, 400, "hub.topic"),
                ({"mode": "subscribe", "callback": ok.url("/a"), "topic": topic, "secret": "x" * 200}, 400, "hub.secret"),
                ({"mode": "subscribe", "callback": ok.url("/a"), "topic": topic, "lease_seconds": "soon"}, 400, "lease"),
                ({"mode": "subscribe", "callback": ok.url("/a"), "topic": topic}, 403, "not allowed"),
                ({"mode": "subscribe", "callback": "http://localhost:9/a", "topic": topic}, 403, "not allowed"),
                ({"mode": "subscribe", "callback": "http://[::ffff:10.0.0.1]/a", "topic": topic}, 403, "not allowed"),
            ]
            for fields, status, reason in cases:
                got, text = _hub_post(srv, **fields)
                assert (got, reason in text) == (status, True), (fields, got, text)
            assert srv.request("GET", "/hub")[0] == 404
        assert ok.records() == [] and wrong.records() == []

        srv = _own_hub(tmp_path / "2", websub_max_per_host=2)
        with srv:
            topic = srv.url("all.rss")
            assert _hub_post(srv, mode="subscribe", callback=wrong.url("/w"), topic=topic)[0] == 202
            wrong.wait(lambda rs: len(rs) == 1)
            assert _hub_post(srv, mode="subscribe", callback=ok.url("/1"), topic=topic)[0] == 202
            ok.wait(lambda rs: len(rs) == 1)
            _until(lambda: _hub_status(srv)["subscriptions"] == 1 and _hub_status(srv)["verifications_waiting"] == 0)
            assert _hub_post(srv, mode="subscribe", callback=ok.url("/2"), topic=topic)[0] == 202
            _until(lambda: _hub_status(srv)["subscriptions"] == 2)
            status, text = _hub_post(srv, mode="subscribe", callback=ok.url("/3"), topic=topic)
            assert status == 403 and "127.0.0.1 has as many subscriptions" in text
            assert "not confirmed (wrong challenge)" in srv.log()


def test_own_hub_retries_ends_leases_and_honours_gone(tmp_path: Path) -> None:
    """A callback that fails gets the feed again after a second; one that answers 410 Gone is
    unsubscribed; a lease that ended gets nothing and is forgotten."""
    with Peer(tmp_path / "flaky", fail=1) as flaky, Peer(tmp_path / "gone", status=410) as gone, \
            Peer(tmp_path / "brief") as brief:
        srv = _own_hub(tmp_path)
        with srv:
            topic = srv.url("topics/blue.json")
            for peer, lease in ((flaky, "600"), (gone, "600"), (brief, "1")):
                assert _hub_post(srv, mode="subscribe", callback=peer.url("/cb"), topic=topic, lease_seconds=lease)[0] == 202
            _until(lambda: _hub_status(srv)["subscriptions"] == 3)
            time.sleep(1.2)  # brief's lease ends
            _post(srv.seeds_dir, 30, ["Blue"])
            records = flaky.wait(lambda rs: len(_deliveries(rs)) == 2)
            first, second = _deliveries(records)
            assert first["body"] == second["body"] and "Post 30" in second["body"]
            assert 0.9 <= second["time"] - first["time"] < 3
            assert first["headers"]["content-type"] == "application/feed+json; charset=utf-8"
            assert "x-hub-signature" not in first["headers"]
            assert len(_deliveries(gone.records())) == 1 and _deliveries(brief.records()) == []
            _until(lambda: _hub_status(srv)["subscriptions"] == 1)
            log = srv.log()
            assert "failed (HTTP 503); retry 1 of 5 in 1 s" in log and "410 Gone" in log and "lease of" in log


def test_slow_subscribers_delay_neither_the_pass_nor_the_others(tmp_path: Path) -> None:
    """Subscribers that take 30 s to answer hold the hub's workers, not the pass, and not a
    prompt subscriber: its delivery still comes within a second of the save."""
    with Peer(tmp_path / "slow", hang=30) as slow, Peer(tmp_path / "prompt") as prompt:
        srv = _own_hub(tmp_path)
        with srv:
            topic = srv.url("topics/red.rss")
            for i in range(12):  # more than the hub has workers
                assert _hub_post(srv, mode="subscribe", callback=slow.url(f"/cb/{i}"), topic=topic)[0] == 202
            assert _hub_post(srv, mode="subscribe", callback=prompt.url("/cb"), topic=topic)[0] == 202
            _until(lambda: _hub_status(srv)["subscriptions"] == 13)
            saved = time.time()
            _post(srv.seeds_dir, 20, ["Red"])
            records = prompt.wait(lambda rs: len(_deliveries(rs)) == 1)
            assert _deliveries(records)[0]["time"] - saved < 1.0
            assert len(_deliveries(slow.wait(lambda rs: len(_deliveries(rs)) >= 8, timeout=5))) >= 8
            saved = time.time()
            _post(srv.seeds_dir, 21, ["Blue"])  # the pass itself, with every worker still waiting
            _until(lambda: b"Post 21" in (srv.feeds_dir / "all.rss").read_bytes(), timeout=2)
            assert time.time() - saved < 2
        assert srv.stop() == 0


def test_nginx_passes_subscription_requests_to_the_hub(tmp_path: Path) -> None:
    """contrib/nginx.conf hands POST /hub to syndicator and still refuses every other POST."""
    if nginx_binary() is None:
        pytest.skip("nginx is not installed")
    with Peer(tmp_path / "sub") as sub:
        srv = _own_hub(tmp_path)
        with srv, nginx_in_front(srv, tmp_path) as ngx:
            form = urlencode({"hub.mode": "subscribe", "hub.callback": sub.url("/cb"),
                              "hub.topic": srv.url("all.atom")}).encode()
            status, _, text = ngx.request("POST", "/hub", {"Content-Type": "application/x-www-form-urlencoded"}, form)
            assert status == 202, text
            _until(lambda: _hub_status(srv)["subscriptions"] == 1)
            status, _, text = ngx.request("POST", "/hub", {"Content-Type": "application/x-www-form-urlencoded"},
                                          b"hub.mode=publish")
            assert status == 400 and b"hub.mode" in text
            status, headers, _ = ngx.request("POST", "/all.rss", body=b"x")
            assert status == 405 and headers["Allow"] == "GET, HEAD"
