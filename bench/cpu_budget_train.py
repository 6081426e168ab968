"""``rldispatch train`` with its time budget counted in CPU seconds of this process.

    taskset -c 0 nice -n 10 python bench/cpu_budget_train.py train --agent pairwise \
        --max-minutes 7 --config CONFIG.json --out runs/OUT --no-progress

The training loop's clock (``time.perf_counter`` in :mod:`rldispatch.training.train`) is
replaced by the process's CPU clock, so runs compared on a busy shared machine each get the
same compute, whatever their neighbours take; ``--max-minutes`` and every ``wall_time_s``
and ``seconds`` of the run's files are then CPU time. The arguments are the CLI's.
"""

from __future__ import annotations

import sys
import time
import types

import rldispatch.training.train as training_loop
from rldispatch.cli import main

if __name__ == "__main__":
    training_loop.time = types.SimpleNamespace(perf_counter=time.process_time)
    sys.exit(main())
