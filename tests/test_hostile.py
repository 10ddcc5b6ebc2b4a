"""Hostile and broken posts (issue #5): each ends as a correct item or a clear `path:line: message`
error, never an uncaught exception, and nothing else is harmed.

Data cases: tests/data/posts/{bad,hostile}/<case>.<ext> beside <case>.expected.json holding
  {"error": "<substring of the message>", "line": N | null, "max_seconds": S?}
or
  {"ok": {<subset of syndicator.cli.post_json>}, "warnings": ["substring", ...],
   "warning_lines": [N, ...]?, "absent": {field: [substring, ...]}?, "present": {...}?,
   "same_as": "<other case file>"?, "safe_topics": true?}
"warnings": [] means no warning at all. Binary cases (UTF-16, GB18030, NUL, BOM) are real bytes.

Every data case is also built together with the seeds: the seeds' own feeds must come out
byte for byte as without it, and every written file must parse and stay inside feeds/.
Very large cases (50 MB, 10,000 nested divs, 3,000 files, hundreds of topics) and file-system
cases (symlinks, permissions, directories, vanishing files) are generated here at run time.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from lxml import etree

from syndicator import sources, urls
from syndicator.cli import post_json
from syndicator.config import Settings, load_settings
from syndicator.pipeline import Builder, read_one
from syndicator.pipeline.build import build
from tests.conftest import ROOT, SEEDS
from tests.test_properties import check_safe_html

DATA = Path(__file__).resolve().parent / "data" / "posts"
CASES = sorted(p for d in ("bad", "hostile") for p in (DATA / d).iterdir()
               if p.is_file() and not p.name.endswith(".expected.json"))
_XML = etree.XMLParser(resolve_entities=False, no_network=True)
_RENDERED_AS_HTML = ("{http://purl.org/rss/1.0/modules/content/}encoded", "{http://www.w3.org/2005/Atom}content")


def _case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _expected(path: Path) -> dict:
    return json.loads((path.parent / (path.name.partition(".")[0] + ".expected.json")).read_text("utf-8"))


def _settings(tmp: Path, seeds: Path, feeds: Path | None = None, **extra: object) -> Settings:
    return load_settings(env={}, overrides={"seeds_dir": seeds, "feeds_dir": feeds or tmp / "feeds",
                                            "state_dir": tmp / "var", **extra})


def _read(root: Path, rel: str, settings: Settings):  # noqa: ANN202
    return read_one(root, rel, (0, 0), settings, sources.SiteConfigs(root))


def _subset(expected: object, actual: object, where: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing"
            _subset(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list) and expected and isinstance(expected[0], dict):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _subset(e, a, f"{where}[{i}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def _tree(feeds: Path) -> dict[str, bytes]:
    return {p.relative_to(feeds).as_posix(): p.read_bytes() for p in sorted(feeds.rglob("*")) if p.is_file()}


def check_output_tree(feeds: Path) -> dict[str, bytes]:
    """Every written file is inside feeds/ and every feed parses."""
    real = feeds.resolve()
    tree = _tree(feeds)
    for rel, data in tree.items():
        assert (feeds / rel).resolve().is_relative_to(real), rel
        assert not (feeds / rel).is_symlink(), rel
        page = urls.archive_page(rel.removesuffix(".gz"))  # archive pages sit under their feed's stem
        stem = page[0] + "." + page[2] if page else rel
        assert stem.count("/") <= 1 and stem.split("/")[0] in (stem, "topics", "posts"), rel
        raw = gzip.decompress(data) if rel.endswith(".gz") else data
        if rel.endswith((".rss", ".atom", ".rss.gz", ".atom.gz", ".opml")):
            root = etree.fromstring(raw, _XML)
            for el in root.iter(*_RENDERED_AS_HTML):  # what a reader shows as HTML must be safe
                check_safe_html(el.text or "")
            for el in root.iterfind("channel/item/description"):
                check_safe_html(el.text or "")
        elif rel.endswith((".json", ".json.gz")) and not rel.startswith("."):
            json.loads(raw)
    return tree


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """feeds/ built from the seeds alone."""
    tmp = tmp_path_factory.mktemp("baseline")
    shutil.copytree(SEEDS, tmp / "seeds")
    result = build(_settings(tmp, tmp / "seeds"))
    assert not result.errors
    return check_output_tree(tmp / "feeds")


@pytest.fixture
def plain_settings(tmp_path: Path) -> Settings:
    return _settings(tmp_path, tmp_path / "seeds")


def assert_seeds_unharmed(baseline: dict[str, bytes], tree: dict[str, bytes], post: dict | None) -> None:
    """Without a post: everything identical. With one: every seed feed it is not in is identical,
    and all.json still holds every seed item."""
    if post is None:
        assert tree == baseline
        return
    own = {f"topics/{t['slug']}." for t in post["topics"]} | {"all.", "index.html", "feeds.opml", ".manifest", ".site"}
    if post.get("link", "").startswith("http://127.0.0.1:8080/posts/"):
        own.add("posts/" + post["link"].rsplit("/", 1)[1])
    for rel, data in baseline.items():
        if not any(rel.startswith(prefix) for prefix in own):
            assert tree.get(rel) == data, f"{rel} changed"
    seed_ids = {item["id"] for item in json.loads(baseline["all.json"])["items"]}
    ids = {item["id"] for item in json.loads(tree["all.json"])["items"]}
    assert seed_ids <= ids


# ---- data-file cases --------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_case(case: Path, plain_settings: Settings) -> None:
    expected = _expected(case)
    started = time.perf_counter()
    tracemalloc.start()
    try:
        read = _read(case.parent, case.name, plain_settings)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    errors = [p for p in read.problems if p.severity == "error"]
    warnings = [p for p in read.problems if p.severity == "warning"]
    if "max_seconds" in expected:
        assert elapsed < expected["max_seconds"], f"took {elapsed:.2f}s"
        assert peak < 64 * 1024 * 1024, f"peak memory {peak:,} bytes"
    if "error" in expected:
        assert read.post is None and len(errors) == 1, read.problems
        (error,) = errors
        assert expected["error"] in error.message
        assert error.line == expected["line"], (error.line, error.message)
        assert error.path == case.name
        assert str(error).startswith(f"{case.name}:{error.line}: " if error.line else f"{case.name}: ")
        return
    assert read.post is not None and not errors, read.problems
    got = post_json(read.post)
    _subset(expected["ok"], got)
    if "warnings" in expected:
        if not expected["warnings"]:
            assert not warnings, warnings
        for needle in expected["warnings"]:
            assert any(needle in w.message for w in warnings), (needle, warnings)
    if "warning_lines" in expected:
        assert sorted(w.line for w in warnings) == sorted(expected["warning_lines"]), warnings
    for field, needles in expected.get("absent", {}).items():
        for needle in needles:
            assert needle.lower() not in str(got[field]).lower(), (field, needle, got[field])
    for field, needles in expected.get("present", {}).items():
        for needle in needles:
            assert needle in str(got[field]), (field, needle, got[field])
    if "same_as" in expected:
        twin = post_json(_read(case.parent, expected["same_as"], plain_settings).post)
        for key in ("id", "link", "path"):
            got.pop(key), twin.pop(key)
        assert got == twin
    for topic in got["topics"]:
        slug = topic["slug"]
        assert slug and "/" not in slug and "\\" not in slug and not slug.startswith(".") and len(slug) <= 80
        assert slug.isascii() and slug == slug.lower()


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_case_leaves_seeds_unharmed(case: Path, tmp_path: Path, baseline: dict[str, bytes]) -> None:
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    shutil.copyfile(case, seeds / case.name)
    result = build(_settings(tmp_path, seeds))
    tree = check_output_tree(tmp_path / "feeds")
    expected = _expected(case)
    if "error" in expected:
        assert [p.path for p in result.errors] == [case.name]
        assert_seeds_unharmed(baseline, tree, None)
    else:
        assert not result.errors, result.errors
        post = next(post_json(p) for p in result.posts if p.path == case.name)
        assert_seeds_unharmed(baseline, tree, post)


def test_every_case_has_an_expectation() -> None:
    assert len(CASES) >= 60
    for case in CASES:
        expected = _expected(case)
        assert ("error" in expected) != ("ok" in expected), case


def test_check_command_reports_every_bad_case(tmp_path: Path) -> None:
    """`syndicator check` over all the cases plus the seeds: no traceback, one line per error."""
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    for case in CASES:
        shutil.copyfile(case, seeds / case.name)
    proc = subprocess.run([sys.executable, "-m", "syndicator", "check", "--seeds", str(seeds)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    bad = [c.name for c in CASES if "error" in _expected(c)]
    for name in bad:
        assert any(line.startswith(f"{name}:") and ": error: " in line for line in proc.stderr.splitlines()), name


# ---- generated cases: size and depth ----------------------------------------------------------

HEADER = "---\ntitle: Generated\ndate: 2022-05-26 12:19:14 +0800\n"


def _with_seeds(tmp_path: Path) -> Path:
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    return seeds


def test_50_mb_file_is_refused_with_the_limit(tmp_path: Path, baseline: dict[str, bytes]) -> None:
    seeds = _with_seeds(tmp_path)
    big = seeds / "huge.md"
    with open(big, "wb") as f:
        f.write((HEADER + "---\n").encode())
        f.write(b"x" * (50 * 1024 * 1024))
    settings = _settings(tmp_path, seeds)
    started = time.perf_counter()
    read = _read(seeds, "huge.md", settings)
    assert time.perf_counter() - started < 1
    (error,) = read.problems
    assert "over the 1,048,576-byte limit (max_post_bytes)" in error.message and error.severity == "error"
    result = build(settings)
    assert [p.path for p in result.errors] == ["huge.md"]
    assert_seeds_unharmed(baseline, check_output_tree(tmp_path / "feeds"), None)


@pytest.mark.parametrize("ext", ["html", "md"])
def test_10000_nested_divs(tmp_path: Path, ext: str, baseline: dict[str, bytes]) -> None:
    seeds = _with_seeds(tmp_path)
    (seeds / f"deep.{ext}").write_text(HEADER + "---\n" + "<div>" * 10_000 + "deep text" + "</div>" * 10_000)
    settings = _settings(tmp_path, seeds)
    started = time.perf_counter()
    result = build(settings)
    assert time.perf_counter() - started < 20
    assert not result.errors, result.errors
    (post,) = [p for p in result.posts if p.path == f"deep.{ext}"]
    assert "deep text" in post.content_html and post.content_html.count("<div>") == 100
    tree = check_output_tree(tmp_path / "feeds")
    assert_seeds_unharmed(baseline, tree, post_json(post))


def test_deeply_nested_front_matter(tmp_path: Path, plain_settings: Settings) -> None:
    for name, text in {
        "list.md": "---\ntitle: t\ndate: 2022-05-26\nx: " + "[" * 20_000 + "]" * 20_000 + "\n---\n",
        "map.md": "---\ntitle: t\ndate: 2022-05-26\nx: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n---\n",
        "toml.md": "+++\ntitle = 't'\ndate = 2022-05-26\nx = " + "[" * 20_000 + "]" * 20_000 + "\n+++\n",
    }.items():
        (tmp_path / name).write_text(text)
        read = _read(tmp_path, name, plain_settings)
        assert read.post is not None or read.problems[0].severity == "error", name


def test_hundreds_of_topics_are_capped(tmp_path: Path, baseline: dict[str, bytes]) -> None:
    seeds = _with_seeds(tmp_path)
    names = ", ".join(f"topic {i}" for i in range(400))
    (seeds / "many-topics.md").write_text(HEADER + f"tags: [{names}]\n---\nbody\n")
    result = build(_settings(tmp_path, seeds))
    (post,) = [p for p in result.posts if p.path == "many-topics.md"]
    assert len(post.topics) == 50
    warnings = [p for p in result.problems if p.path == "many-topics.md"]
    assert any("400 topics; keeping the first 50" in w.message and w.severity == "warning" for w in warnings)
    assert_seeds_unharmed(baseline, check_output_tree(tmp_path / "feeds"), post_json(post))


def test_3000_files_in_one_folder(tmp_path: Path) -> None:
    seeds = _with_seeds(tmp_path)
    for i in range(3000):
        (seeds / f"p{i:04d}.md").write_text(
            f"---\ntitle: Post {i}\ndate: 2022-05-26 12:{i // 60 % 60:02d}:{i % 60:02d} +0800\n"
            f"webUrl: https://example.com/{i}\ntags: [bulk]\n---\nBody {i}.\n")
    settings = _settings(tmp_path, seeds)
    started = time.perf_counter()
    result = build(settings)
    elapsed = time.perf_counter() - started
    assert not result.errors and result.posts_read >= 3000
    assert elapsed < 60, f"{elapsed:.1f}s"
    feeds = check_output_tree(tmp_path / "feeds")
    assert len(json.loads(feeds["topics/bulk.json"])["items"]) == settings.items_per_feed


# ---- identity ----------------------------------------------------------------------------------


def test_two_files_with_the_same_id(tmp_path: Path) -> None:
    seeds = _with_seeds(tmp_path)
    (seeds / "a.md").write_text(HEADER + "id: shared-id\n---\nfirst\n")
    (seeds / "b").mkdir()
    (seeds / "b" / "b.md").write_text(HEADER + "id: shared-id\n---\nsecond\n")
    result = build(_settings(tmp_path, seeds))
    assert [p.path for p in result.posts if p.id == "shared-id"] == ["a.md"]
    (problem,) = [p for p in result.problems if p.path == "b/b.md"]
    assert "duplicate id 'shared-id'" in problem.message and "a.md" in problem.message
    check_output_tree(tmp_path / "feeds")


def test_moved_post_keeps_its_explicit_id(tmp_path: Path) -> None:
    seeds = _with_seeds(tmp_path)
    (seeds / "old").mkdir()
    (seeds / "old" / "post.md").write_text(HEADER + "id: urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427\n---\nx\n")
    settings = _settings(tmp_path, seeds)
    first = build(settings)
    shutil.move(seeds / "old", seeds / "new-place")
    (seeds / "new-place" / "post.md").rename(seeds / "new-place" / "renamed.md")
    second = build(settings)
    ids = lambda r: {p.id: p.path for p in r.posts}  # noqa: E731
    uid = "urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    assert ids(first)[uid] == "old/post.md" and ids(second)[uid] == "new-place/renamed.md"
    items = json.loads((tmp_path / "feeds" / "all.json").read_bytes())["items"]
    assert [i["id"] for i in items].count(uid) == 1


# ---- the file system ---------------------------------------------------------------------------


def test_symlinks_leaving_seeds_are_not_followed(tmp_path: Path, baseline: dict[str, bytes]) -> None:
    seeds = _with_seeds(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("---\ntitle: SECRET OUTSIDE\ndate: 2022-05-26\n---\nsecret\n")
    (seeds / "link.md").symlink_to(outside / "secret.md")
    (seeds / "linkdir").symlink_to(outside, target_is_directory=True)
    (seeds / "loop").symlink_to(seeds, target_is_directory=True)  # inside, but a cycle
    (seeds / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    scanned = [rel for rel, _ in sources.scan(seeds)]
    assert not any(rel.startswith(("link", "dangling")) for rel in scanned), scanned
    result = build(_settings(tmp_path, seeds))
    assert not result.errors, result.errors
    tree = check_output_tree(tmp_path / "feeds")
    assert not any(b"SECRET OUTSIDE" in data for data in tree.values())
    assert_seeds_unharmed(baseline, tree, None)


def test_unreadable_file(tmp_path: Path, baseline: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """chmod 000 blocks reads only for non-root users; CI runs as root, where the same
    PermissionError is raised by a stand-in for os.open() on that one file instead."""
    seeds = _with_seeds(tmp_path)
    locked = seeds / "locked.md"
    locked.write_text(HEADER + "---\nbody\n")
    locked.chmod(0)
    if os.geteuid() == 0:
        real_open = os.open

        def fake_open(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            if Path(path).name == "locked.md":
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", fake_open)
    try:
        result = build(_settings(tmp_path, seeds))
    finally:
        locked.chmod(0o644)
    (error,) = result.errors
    assert (error.path, error.message) == ("locked.md", "permission denied")
    assert_seeds_unharmed(baseline, check_output_tree(tmp_path / "feeds"), None)


def test_directory_named_like_a_post(tmp_path: Path, plain_settings: Settings) -> None:
    seeds = _with_seeds(tmp_path)
    (seeds / "x.md").mkdir()
    (seeds / "x.md" / "inner.md").write_text(HEADER + "---\ninside a folder named x.md\n")
    os.mkfifo(seeds / "pipe.md")  # never opened: a reader would block forever
    scanned = [rel for rel, _ in sources.scan(seeds)]
    assert "x.md/inner.md" in scanned and "x.md" not in scanned and "pipe.md" not in scanned
    read = _read(seeds, "x.md", plain_settings)
    assert [(p.path, p.message) for p in read.problems] == [("x.md", "is a directory, not a post")]
    result = build(_settings(tmp_path, seeds))
    assert not result.errors and any(p.path == "x.md/inner.md" for p in result.posts)


def test_file_deleted_between_scan_and_read(tmp_path: Path, plain_settings: Settings) -> None:
    seeds = _with_seeds(tmp_path)
    (seeds / "gone.md").write_text(HEADER + "---\nbody\n")
    builder = Builder(_settings(tmp_path, seeds))
    scanned = builder.scan()
    (seeds / "gone.md").unlink()
    read = _read(seeds, "gone.md", plain_settings)
    assert [(p.path, p.message, p.severity) for p in read.problems] == [
        ("gone.md", "file disappeared before it could be read", "error")]
    result = builder.build(scanned)
    assert [p.path for p in result.errors] == ["gone.md"]
    check_output_tree(tmp_path / "feeds")


def test_file_growing_past_the_limit_while_read(tmp_path: Path) -> None:
    settings = _settings(tmp_path, tmp_path, max_post_bytes=100)
    (tmp_path / "small.md").write_text(HEADER + "---\n" + "x" * 200)
    read = _read(tmp_path, "small.md", settings)
    assert "over the 100-byte limit (max_post_bytes)" in read.problems[0].message
