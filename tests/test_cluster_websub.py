"""Our own WebSub hub on several machines: web nodes take and verify subscription requests, the
elected builder delivers, the subscriptions live in PostgreSQL. Real builder and web node
processes, a real subscriber process, a database of each test's own."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import feedparser

from syndicator.store import Subscription
from syndicator.store.postgres import PostgresSubscriptions
from syndicator.websub.hub import digest
from tests.serverproc import ServerProcess
from tests.test_cluster import (
    Builder_,
    generation,
    leader_of,
    retitle,
    retitle_everywhere,
    upgraded,
    wait_for,
    web_node,
)
from tests.websub_peer import Peer, Record

from . import pgserver

pg_url = pgserver.pg_url  # the fixture: a database of the test's own

HUB = {"SYNDICATOR_WEBSUB_HUBS": "self", "SYNDICATOR_WEBSUB_ALLOW_NETWORKS": "127.0.0.0/8"}
TOPIC = "http://feeds.example.org/all.atom"


def hub_post(node: ServerProcess, **form: str) -> tuple[int, str]:
    body = urlencode({f"hub.{k}": v for k, v in form.items()}).encode()
    status, _, text = node.request("POST", "/hub", {"Content-Type": "application/x-www-form-urlencoded"}, body)
    return status, text.decode()


def deliveries(records: list[Record]) -> list[Record]:
    return [r for r in records if r["method"] == "POST"]


def test_subscriptions_in_postgresql(pg_url: str) -> None:
    upgraded(pg_url).close()
    store, other = PostgresSubscriptions(pg_url), PostgresSubscriptions(pg_url)
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    sub = Subscription("all.atom", "http://127.0.0.1:9/cb", "s3cret", expires, "d1")
    store.save_subscription(sub)
    assert other.subscriptions() == [sub]
    other.save_subscription(Subscription("all.atom", "http://127.0.0.1:9/cb", None, expires + timedelta(days=1), "d1"))
    store.mark_delivered("all.atom", "http://127.0.0.1:9/cb", "d2")  # keeps the renewal made elsewhere
    [renewed] = store.subscriptions()
    assert renewed.secret is None and renewed.expires == expires + timedelta(days=1) and renewed.delivered == "d2"
    other.drop_subscription("all.atom", "http://127.0.0.1:9/cb")
    store.mark_delivered("all.atom", "http://127.0.0.1:9/cb", "d3")  # ended elsewhere: not brought back
    assert store.subscriptions() == [] == other.subscriptions()
    store.close()
    other.close()


def test_web_nodes_take_subscriptions_and_the_elected_builder_delivers(pg_url: str, tmp_path: Path) -> None:
    """Subscribe through one web node, unsubscribe through the other; each edit is delivered
    once, signed, with the bytes the web nodes serve, by whichever builder is elected, and a
    builder that takes over sends nothing twice."""
    db = upgraded(pg_url)
    builders = [Builder_(tmp_path / "a", pg_url, HUB)]
    nodes: list[ServerProcess] = []
    try:
        with Peer(tmp_path / "sub") as sub:
            wait_for(lambda: generation(db) > 0, 60, "a first generation published")
            nodes = [web_node(tmp_path / f"web{i}", pg_url, HUB).start() for i in (1, 2)]
            status, headers, _ = nodes[0].request("GET", "/all.atom")
            assert headers["Link"] == f'<http://feeds.example.org/hub>; rel="hub", <{TOPIC}>; rel="self"'

            status, text = hub_post(nodes[0], mode="subscribe", topic=TOPIC, callback=sub.url("/cb"),
                                    secret="s3cret")
            assert status == 202, text
            wait_for(lambda: db.execute("SELECT count(*) FROM subscriptions") == [(1,)], 10, "the subscription")
            [check] = sub.records()
            assert check["method"] == "GET" and check["query"]["hub.topic"] == [TOPIC]
            builders.append(Builder_(tmp_path / "b", pg_url, HUB))  # a standby, with the same posts
            time.sleep(1)
            assert deliveries(sub.records()) == []  # the subscriber has the feed as it was

            retitle_everywhere(builders, "Delivered")
            records = sub.wait(lambda rs: len(deliveries(rs)) == 1)
            [first] = deliveries(records)
            body = first["body"].encode()
            assert b"Delivered " in body and feedparser.parse(body).entries
            wait_for(lambda: all(node.request("GET", "/all.atom")[2] == body for node in nodes), 10,
                     "both web nodes serving the delivered bytes")
            assert first["headers"]["x-hub-signature"] == \
                "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()

            wait_for(lambda: db.execute("SELECT delivered FROM subscriptions") == [(digest(body),)], 10,
                     "the delivery recorded")
            leader = leader_of(db, builders)
            leader.proc.kill()  # SIGKILL: the standby takes over and sends only what is new
            wait_for(lambda: leader_of(db, builders) is not leader, 10, "the standby elected")
            time.sleep(1)
            assert len(deliveries(sub.records())) == 1, "the new leader sent the same version again"
            standby = leader_of(db, builders)
            retitle(standby.workdir, "Again")
            records = sub.wait(lambda rs: len(deliveries(rs)) == 2)
            assert b"Again " in deliveries(records)[1]["body"].encode()

            status, text = hub_post(nodes[1], mode="unsubscribe", topic=TOPIC, callback=sub.url("/cb"))
            assert status == 202, text
            wait_for(lambda: db.execute("SELECT count(*) FROM subscriptions") == [(0,)], 10, "the unsubscription")
            retitle(standby.workdir, "Unheard")
            wait_for(lambda: b"Unheard " in nodes[0].request("GET", "/all.atom")[2], 10, "the edit served")
            time.sleep(1)
            assert len(deliveries(sub.records())) == 2
            assert "Traceback" not in standby.log() + nodes[0].log() + nodes[1].log()
    finally:
        for node in nodes:
            assert node.stop() == 0, node.log()
        for builder in builders:
            builder.stop()
        db.close()
