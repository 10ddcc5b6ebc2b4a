"""Rewrite tests/golden/ from seeds/ after an intended output change:

    python -m tests.regen_golden

Golden builds use fixed settings (GOLDEN_SETTINGS, no config file, no environment), so
they are reproducible anywhere. Review the diff before committing it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from syndicator.config import Settings, load_settings
from syndicator.pipeline.build import build

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
GOLDEN = Path(__file__).resolve().parent / "golden" / "seeds"
#: The same posts with feeds of one item: RFC 5005 archive pages (fh:archive, the link chain).
GOLDEN_ARCHIVED = GOLDEN.with_name("seeds-archived")
ARCHIVED = {"items_per_feed": 1, "archive_page_size": 1}
GOLDEN_SETTINGS = {
    "site_title": "Syndicator",
    "site_description": "Posts by topic",
    "base_url": "http://127.0.0.1:8080/",
    "author": "Syndicator",
    "language": "en",
    "timezone": "UTC",
    "items_per_feed": 50,
    "include_drafts": False,
    "topic_aliases": {},
    "tag_date": "2024-01-01",
    "opml_format": "atom",
}


def golden_settings(seeds: Path, feeds: Path, state: Path, **changes: object) -> Settings:
    """The golden settings; an empty config file keeps a config/syndicator.yaml in the
    working directory out of it."""
    empty = state.parent / "golden-config.yaml"
    empty.write_text("", encoding="utf-8")
    overrides = {**GOLDEN_SETTINGS, "seeds_dir": seeds, "feeds_dir": feeds, "state_dir": state, **changes}
    return load_settings(path=empty, env={}, overrides=overrides)


def golden_files(feeds: Path) -> dict[str, bytes]:
    """Every file a build wrote, except the .gz twins, the manifest and the site record."""
    return {
        p.relative_to(feeds).as_posix(): p.read_bytes()
        for p in sorted(feeds.rglob("*"))
        if p.is_file() and not p.name.endswith(".gz") and p.name not in (".manifest.json", ".site.json")
    }


def build_seeds(work: Path, **changes: object) -> dict[str, bytes]:
    """Build a copy of seeds/ under `work` with the golden settings (and `changes`); returns
    golden_files()."""
    seeds = work / "seeds"
    shutil.copytree(SEEDS, seeds)
    result = build(golden_settings(seeds, work / "feeds", work / "var", **changes))
    assert not result.errors, result.errors
    return golden_files(work / "feeds")


def main() -> None:
    for golden, changes in ((GOLDEN, {}), (GOLDEN_ARCHIVED, ARCHIVED)):
        with tempfile.TemporaryDirectory() as tmp:
            files = build_seeds(Path(tmp), **changes)
        if golden.exists():
            shutil.rmtree(golden)
        for rel, data in files.items():
            target = golden / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        print(f"wrote {len(files)} files to {golden.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
