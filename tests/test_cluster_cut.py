"""A web node cut off from PostgreSQL, as separate processes: a builder, two web nodes (one of
them reaching PostgreSQL through a relay that the test cuts), steady requests throughout."""

from __future__ import annotations

import json
from pathlib import Path

from tests import pgserver
from tests.serverproc import ServerProcess
from tests.test_cluster import Builder_, Load, database_site, generation, retitle, upgraded, wait_for, web_node

pg_url = pgserver.pg_url  # the fixture: a database of the test's own


def health(node: ServerProcess) -> dict[str, object]:
    return json.loads(node.request("GET", "/healthz")[2])


def test_a_web_node_cut_off_serves_what_it_has_then_catches_up(pg_url: str, tmp_path: Path) -> None:
    """While cut off: /healthz degraded, every answer the whole generation it had (no 5xx), the
    other node serving the edits made meanwhile; once back: the same bytes and ETags as the other."""
    db = upgraded(pg_url)
    builder = Builder_(tmp_path / "builder", pg_url)
    nodes: list[ServerProcess] = []
    with pgserver.Proxy(pg_url) as proxy:
        try:
            wait_for(lambda: generation(db) > 0, 60, "a first generation published")
            nodes = [web_node(tmp_path / "direct", pg_url).start(), web_node(tmp_path / "cut", proxy.url).start()]
            direct, cut = nodes
            before = cut.request("GET", "/all.rss")
            with Load(nodes, ["/all.rss", "/all.atom", "/topics/ai.json", "/", "/feeds.opml"]) as load:
                proxy.cut()
                wait_for(lambda: health(cut)["status"] == "degraded", 15, "the cut node degraded")
                retitle(builder.workdir, "Meanwhile")
                wait_for(lambda: b"Meanwhile " in direct.request("GET", "/all.rss")[2], 10, "the edit on the other node")
                status, headers, body = cut.request("GET", "/all.rss")
                assert (status, body, headers["ETag"]) == (before[0], before[2], before[1]["ETag"])  # stale but whole
                assert health(direct)["status"] == "ok"

                proxy.restore()
                wait_for(lambda: health(cut)["status"] == "ok", 15, "the cut node back")
                wait_for(lambda: b"Meanwhile " in cut.request("GET", "/all.rss")[2], 10, "the edit on the cut node")
            assert load.failures == [] and not any(status >= 500 for status in load.statuses), \
                (load.statuses, load.failures[:5])
            assert sum(load.statuses.values()) > 100
            for rel, (data, _gz, etag) in database_site(db).items():
                answers = [node.request("GET", "/" + rel) for node in nodes]
                assert [(a[0], a[2], a[1]["ETag"]) for a in answers] == [(200, data, etag)] * 2, rel
        finally:
            for node in nodes:
                assert node.stop() == 0, node.log()
            assert builder.stop() == 0, builder.log()
            db.close()
