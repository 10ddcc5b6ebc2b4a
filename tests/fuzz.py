"""Long fuzz run of the hostile-input properties (tests/test_properties.py) with hypothesis.

    python -m tests.fuzz --minutes 10            # from the repository root

Cycles through every property in batches of --batch examples until the time is up, with a
fresh random seed per batch and no example database. Prints one line per batch and a summary;
exit status 1 if any property failed (the shrunk failing example is printed). The `cost`
property looks for inputs whose cost grows faster than their size: a unit repeated n and 4n
times, peak memory and CPU time measured, and hypothesis steered (`target`) towards the worst
ratios; `--only cost` runs it alone.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback

from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.test_properties import STRATEGIES


def _runner(name: str, examples: int, rng_seed: int, counter: list[int]):  # noqa: ANN202
    fn, strategies = STRATEGIES[name]

    def counted(**kwargs):  # noqa: ANN003, ANN202
        counter[0] += 1
        return fn(**kwargs)

    counted.__name__ = f"fuzz_{name}"
    test = given(**strategies)(counted)
    test = settings(
        max_examples=examples, deadline=None, database=None, print_blob=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.target, Phase.shrink, Phase.explain],
    )(test)
    return seed(rng_seed)(test)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="how long to run (default 10)")
    ap.add_argument("--batch", type=int, default=2000, help="examples per property per batch")
    ap.add_argument("--only", choices=sorted(STRATEGIES), action="append", help="run only these properties")
    args = ap.parse_args(argv)
    names = args.only or sorted(STRATEGIES)
    deadline = time.monotonic() + args.minutes * 60
    started = time.monotonic()
    totals = dict.fromkeys(names, 0)
    failures: list[tuple[str, int, str]] = []
    batch = 0
    while time.monotonic() < deadline:
        for name in names:
            if time.monotonic() >= deadline:
                break
            rng_seed = random.randrange(2**32)
            counter = [0]
            t0 = time.monotonic()
            try:
                _runner(name, args.batch, rng_seed, counter)()
                status = "ok"
            except Exception:  # noqa: BLE001 - every failure is reported, then the run goes on
                status = "FAILED"
                failures.append((name, rng_seed, traceback.format_exc()))
            totals[name] += counter[0]
            print(f"[{time.monotonic() - started:7.1f}s] batch {batch} {name}: {counter[0]} examples "
                  f"in {time.monotonic() - t0:.1f}s seed={rng_seed} {status}", flush=True)
        batch += 1
    elapsed = time.monotonic() - started
    print(f"\nfuzz: {elapsed / 60:.1f} min, {sum(totals.values())} examples "
          f"({', '.join(f'{k} {v}' for k, v in totals.items())}), {len(failures)} failures")
    for name, rng_seed, tb in failures:
        print(f"\n=== {name} (seed {rng_seed}) ===\n{tb}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
