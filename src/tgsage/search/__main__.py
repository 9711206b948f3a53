"""``python -m tgsage.search``: one worker process of ``run_search``.

A launcher only: :func:`tgsage.search.runner.worker_process` reads the arguments the runner
wrote and runs the worker (people join a search with ``tgsage worker``).
"""

from __future__ import annotations

import logging
import os
import sys

from tgsage.search.runner import worker_process

if __name__ == "__main__":
    code = worker_process(sys.argv[1:])
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip the slow interpreter teardown (torch); all results are stored
