#!/usr/bin/env python3
"""Every YAML header of a folder loaded both ways, the yaml-rs fast path and PyYAML alone, must
give the same data, types, key lines and warnings (or the same error); prints how many headers
the fast path took. The suite holds the two to each other on data files and generated headers;
this is the same check over a whole real site, too slow for the suite (a minute over
../shared/corpus-real/, unpacked).

  .venv/bin/python bench/yaml_differential.py DIR [DIR ...]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from syndicator.sources import yaml_fast  # noqa: E402
from syndicator.sources.frontmatter import Split, _remove_unprintable  # noqa: E402
from tests.test_yaml_fast import check_both, yaml_front  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    a = ap.parse_args(argv)
    headers = fast = 0
    fast_s = 0.0
    for root in a.dirs:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
            front = yaml_front(path)
            if front is None:
                continue
            check_both(front)  # AssertionError with the header on any difference
            headers += 1
            text = _remove_unprintable(Split("yaml", front, "", 2).front, 1)[0] + "\n"
            t0 = time.perf_counter()
            took = yaml_fast.load_fast(text) is not None
            fast_s += time.perf_counter() - t0
            fast += took
            if not took:
                print(f"PyYAML: {os.path.relpath(path)}")
    share = fast / headers if headers else 0.0
    print(f"{headers} headers load the same both ways; fast path {fast} ({share:.1%}), "
          f"{fast_s / max(fast, 1) * 1000:.2f} ms a header")
    return 0 if headers else 1


if __name__ == "__main__":
    sys.exit(main())
