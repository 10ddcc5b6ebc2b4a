"""What `serve` keeps of the published files in memory is bounded (`file_cache_mb`): a client
walking every archive and post page once (an RFC 5005 client, a crawler) left the whole site
in the service's memory. The cache itself over real files, then the real process crawled over
real HTTP."""

from __future__ import annotations

import http.client
import random
from pathlib import Path

from syndicator.compress import gunzip
from syndicator.web.files import FileCache
from tests.serverproc import ServerProcess
from tests.test_observe import samples

KB = 1024


def _files(root: Path, count: int, size: int) -> list[str]:
    rng = random.Random(5)
    rels = []
    for i in range(count):
        rel = f"topics/t{i}.json"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(bytes(rng.getrandbits(8) for _ in range(size)))  # (gzip cannot shrink it)
        rels.append(rel)
    return rels


def test_the_least_recently_served_go_first_within_the_bound(tmp_path: Path) -> None:
    rels = _files(tmp_path, 12, 10 * KB)
    cache = FileCache(tmp_path, max_bytes=60 * KB)  # room for two files and their gzip bytes, not three
    first = cache.get(rels[0])
    assert first is not None
    for rel in rels[1:]:
        assert cache.get(rels[0]) is first  # served again each time: never the least recent
        entry = cache.get(rel)
        assert entry is not None and entry.data == (tmp_path / rel).read_bytes()
        assert cache.size <= 60 * KB
    assert cache.get(rels[0]) is first
    again = cache.get(rels[1])  # let go long ago: read again, the same bytes and validators
    assert again is not None and again.data == (tmp_path / rels[1]).read_bytes() and gunzip(again.gz) == again.data
    assert cache.size <= 60 * KB


def test_nothing_is_kept_with_no_room_and_every_answer_is_still_right(tmp_path: Path) -> None:
    rels = _files(tmp_path, 3, 4 * KB)
    cache = FileCache(tmp_path, max_bytes=0)
    for rel in rels * 2:
        entry = cache.get(rel)
        assert entry is not None and entry.data == (tmp_path / rel).read_bytes()
    assert cache.size == 0


def _posts(seeds: Path, count: int) -> None:
    seeds.mkdir(parents=True, exist_ok=True)
    rng = random.Random(9)
    words = ["feed", "reader", "archive", "page", "post", "topic", "service", "memory", "crawler", "walk"]
    for i in range(count):
        body = " ".join(rng.choice(words) for _ in range(400))
        (seeds / f"2022-01-01-post-{i:04d}.md").write_text(
            f"---\ntitle: Post {i}\ndate: 2022-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z\n"
            f"topics: [t{i % 5}]\n---\n{body}\n", encoding="utf-8")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_crawl_of_the_whole_site_leaves_the_service_within_its_bound(tmp_path: Path) -> None:
    _posts(tmp_path / "seeds", 1200)
    with ServerProcess(tmp_path, seeds=None, config={"file_cache_mb": 1}, startup_timeout=120) as srv:
        assert srv.proc is not None
        feeds = srv.feeds_dir
        rels = sorted(str(f.relative_to(feeds)) for f in feeds.rglob("*")
                      if f.is_file() and not f.name.startswith(".") and not f.name.endswith(".gz"))
        published = sum((feeds / rel).stat().st_size for rel in rels)
        assert published > 24 << 20, published  # far more than the bound, and than RSS noise
        before = _rss_mib(srv.proc.pid)
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        for headers in ({}, {"Accept-Encoding": "gzip"}):
            for rel in rels:  # every file once, as a crawler or an archive walk asks for them
                conn.request("GET", "/" + rel, headers=headers)
                answer = conn.getresponse()
                body = answer.read()
                assert answer.status == 200, rel
                got = gunzip(body) if answer.getheader("Content-Encoding") == "gzip" else body
                assert got == (feeds / rel).read_bytes(), rel
        conn.close()
        grown = _rss_mib(srv.proc.pid) - before
        metrics = samples(srv.request("GET", "/metrics")[2].decode())
    # unbounded, the walk kept every file and its gzip bytes: more than the published bytes
    assert grown < published / 2**20 / 2, (grown, published)
    assert 0 < metrics["syndicator_file_cache_bytes"] <= 1 << 20
    assert 0 < metrics["syndicator_http_cache_bytes"] <= 1 << 20
    assert "Traceback" not in srv.log()
