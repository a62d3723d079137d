"""Build a dataset once (filling its cache) and report it: ``python -m gcann.data NAME [options]``.

Useful before a multi-process run, so that the processes read one finished
cache instead of each building the set. Options other than root, resolution and
the cache folder are given as ``--option key=value`` (values parsed as Python
literals where they can be, e.g. ``--option max_poses=40``).
"""
from __future__ import annotations

import argparse
import ast
import sys
import time


def main(argv: list[str] | None = None) -> int:
    from gcann.data import DATASETS, build_dataset
    from gcann.errors import GcannError, one_line

    p = argparse.ArgumentParser(prog="python -m gcann.data", description=__doc__.splitlines()[0])
    p.add_argument("name", choices=list(DATASETS), metavar="NAME", help=f"one of: {', '.join(DATASETS)}")
    p.add_argument("--root", default=None, help="the dataset's local root (default: its shipped copy)")
    p.add_argument("--resolution", type=int, default=None, help="image side or voxel grid side")
    p.add_argument("--cache-dir", default=None, help="cache folder (default: $GCANN_CACHE or ~/.cache/gcann)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a builder option")
    args = p.parse_args(argv)
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--option {item!r} is not KEY=VALUE")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    t0 = time.perf_counter()
    try:
        ds = build_dataset(args.name, args.root, resolution=args.resolution, cache_dir=args.cache_dir, **options)
    except GcannError as e:   # DataError and any other user-facing error: one line, its exit status
        print(f"gcann.data: error: {one_line(e)}", file=sys.stderr)
        return e.exit_code
    seconds = time.perf_counter() - t0
    skipped = getattr(ds, "skipped", 0)
    print(f"{ds.name}: {len(ds)} samples of shape {tuple(ds.sample_shape)} ({ds.kind}), key {ds.key}, "
          f"{skipped} file(s) skipped, {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
