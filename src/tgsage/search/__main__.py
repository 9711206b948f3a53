"""``python -m tgsage.search --storage URL --study NAME``: one worker process.

This is what ``run_search`` starts for each local worker; ``tgsage worker`` does the same.
"""

from __future__ import annotations

import argparse
import sys

from tgsage.errors import TgsageError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tgsage.search", description=__doc__)
    ap.add_argument("--storage", required=True)
    ap.add_argument("--study", required=True)
    ap.add_argument("--worker-id")
    ap.add_argument("--max-candidates", type=int)
    ap.add_argument("--log-dir")
    ap.add_argument("--parent-pid", type=int)
    ap.add_argument("--torch-threads", type=int)
    args = ap.parse_args(argv)
    from tgsage.search.worker import run_worker

    try:
        summary = run_worker(
            args.storage,
            args.study,
            args.worker_id,
            args.max_candidates,
            log_dir=args.log_dir,
            parent_pid=args.parent_pid,
            torch_threads=args.torch_threads,
        )
    except TgsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if summary.stopped_by in ("done", "max_candidates", "interrupted") else 1


if __name__ == "__main__":
    import logging
    import os

    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip the slow interpreter teardown (torch); all results are stored
