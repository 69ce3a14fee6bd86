"""What the machine allows processes that take turns: the ceiling of `concurrency.py`, without a
database.

Usage::

    python benchmarks/ceiling.py --pairs 1,2,4,8 --seconds 6 --mib 1,8
                                 [--client-steps 1400] [--server-steps 650]

K pairs of processes run at once. In each pair a client does a fixed piece of interpreter
work, sends a message to its server over a pipe and waits for the answer; the server does
its own piece of work and answers. That is the shape of a `concurrency.py` client and its
PostgreSQL backend, which take turns in the same way (at one client, about 430 µs of client
CPU and 200 µs of server CPU an operation on the machine of `README.md`; the default steps
are about that), with nothing else: no database, no files, no shared data, no lock. Each
process reads at random from a working set of its own, ``--mib`` MiB of dictionary entries,
as an interpreter or a backend touches its objects and caches.

Per working-set size and K it prints::

    phase=turns mib=M pairs=K n=OPS seconds=S ops_per_s=X vs_one=R client_cpu_us=C

``vs_one`` is the aggregate rate over that of one pair (when 1 is among the pair counts,
which run in increasing order); ``client_cpu_us`` is the CPU time a client spends per
turn. On a machine with fewer cores than processes, ``vs_one`` at many pairs is what the
same instructions allow once the processes share the cores and evict each other's
caches: the ceiling of `concurrency.py`'s ratio on that machine, for processes that work
on as much memory.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import random
import sys
import time
from pathlib import Path
from typing import Any

from _common import client_counts, positive_float, positive_int  # benchmarks/ is on the path

#: Bytes a working-set entry takes, roughly (a key, a tuple, a short string).
ENTRY_BYTES = 200
#: The largest working set a process may be given, in MiB (every process of a round has one).
MAX_MIB = 1024
#: The exit status of a process that could not make its working set.
NO_MEMORY = 3
#: The most pairs a round may have.
MAX_PAIRS = 64
#: Seconds the processes and the parent wait for each other at the start.
BARRIER_TIMEOUT = 300.0


class WorkingSet:
    """``mib`` MiB of dictionary entries, read at random ``steps`` at a time."""

    def __init__(self, mib: float) -> None:
        count = max(1, int(mib * 1024 * 1024 / ENTRY_BYTES))
        self.entries = {f"key{i}": (i, str(i) * 3) for i in range(count)}
        self.keys = list(self.entries)
        self.random = random.Random(os.getpid())

    def work(self, steps: int) -> int:
        keys, entries, pick = self.keys, self.entries, self.random.randrange
        total = 0
        for _ in range(steps):
            total += entries[keys[pick(len(keys))]][0]
        return total


def _working_set(mib: float) -> WorkingSet:
    """A process's working set; without the memory for it, the process ends with
    `NO_MEMORY` (its parent says so)."""
    try:
        return WorkingSet(mib)
    except MemoryError:
        sys.exit(NO_MEMORY)


def client(conn: Any, steps: int, mib: float, seconds: float, out: Any, start: Any) -> None:
    """Work, hand over, wait for the answer; until ``seconds`` have passed. Puts
    (turns, seconds, CPU seconds) on ``out``."""
    state = _working_set(mib)
    start.wait(timeout=BARRIER_TIMEOUT)
    began = time.time()
    cpu = time.process_time()
    deadline = began + seconds
    turns = 0
    while time.time() < deadline:
        state.work(steps)
        conn.send_bytes(b"q")
        conn.recv_bytes()
        turns += 1
    conn.send_bytes(b"")  # the server's signal to stop
    out.put((turns, time.time() - began, time.process_time() - cpu))


def server(conn: Any, steps: int, mib: float, start: Any) -> None:
    """Answer each message after ``steps`` of work, until the empty one."""
    state = _working_set(mib)
    start.wait(timeout=BARRIER_TIMEOUT)
    while conn.recv_bytes():
        state.work(steps)
        conn.send_bytes(b"a")


class RoundError(Exception):
    """A process of a round did not finish its work."""


def run_round(
    pairs: int, mib: float, seconds: float, client_steps: int, server_steps: int
) -> tuple[int, float, float]:
    """One round of ``pairs`` pairs: (turns, seconds, client CPU seconds per turn)."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    start = context.Barrier(2 * pairs)
    processes = []
    for _ in range(pairs):
        near, far = context.Pipe()
        processes.append(
            context.Process(target=client, args=(near, client_steps, mib, seconds, out, start))
        )
        processes.append(context.Process(target=server, args=(far, server_steps, mib, start)))
    for process in processes:
        process.start()
    results: list[tuple[int, float, float]] = []
    try:
        while len(results) < pairs:
            try:
                results.append(out.get(timeout=1.0))
            except queue.Empty:
                died = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
                if NO_MEMORY in died:
                    raise RoundError(
                        f"a process had no memory for a working set of {mib:g} MiB (with "
                        f"{pairs} pair(s)); give a smaller --mib or fewer --pairs"
                    ) from None
                if died:
                    raise RoundError(
                        f"a process of the round with {pairs} pair(s) and {mib:g} MiB ended "
                        f"with exit status {died[0]}"
                    ) from None
    finally:
        for process in processes:
            process.join(timeout=BARRIER_TIMEOUT if len(results) == pairs else 0)
            if process.is_alive():
                process.kill()
                process.join()
    turns = sum(r[0] for r in results)
    elapsed = max(r[1] for r in results)
    cpu = sum(r[2] for r in results) / turns if turns else 0.0
    return turns, elapsed, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pairs", type=client_counts, default=[1, 2, 4, 8], help="pair counts, e.g. 1,2,4,8"
    )
    parser.add_argument("--seconds", type=positive_float, default=6.0, help="length of each round")
    parser.add_argument(
        "--mib",
        type=_sizes,
        default=[1.0, 8.0],
        help="working set of each process in MiB, e.g. 1,8",
    )
    parser.add_argument(
        "--client-steps", type=positive_int, default=1400, help="a client's reads per turn"
    )
    parser.add_argument(
        "--server-steps", type=positive_int, default=650, help="a server's reads per turn"
    )
    args = parser.parse_args()
    counts = sorted(set(args.pairs))
    if counts[-1] > MAX_PAIRS:
        parser.error(f"argument --pairs: at most {MAX_PAIRS} pairs (two processes each)")
    try:
        _run(counts, args)
    except RoundError as exc:
        print(f"{Path(sys.argv[0]).name}: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _run(counts: list[int], args: argparse.Namespace) -> None:
    """Each size in turn, each pair count in increasing order: one line a round."""
    for mib in args.mib:
        one: float | None = None
        for pairs in counts:
            turns, elapsed, cpu = run_round(
                pairs, mib, args.seconds, args.client_steps, args.server_steps
            )
            rate = turns / elapsed if elapsed > 0 else 0.0
            if pairs == 1:
                one = rate
            ratio = f" vs_one={rate / one:.2f}" if one else ""
            print(
                f"phase=turns mib={mib:g} pairs={pairs} n={turns} seconds={elapsed:.4f} "
                f"ops_per_s={int(rate)}{ratio} client_cpu_us={int(cpu * 1e6)}",
                flush=True,
            )


def _sizes(text: str) -> list[float]:
    """An argument type: working-set sizes in MiB separated by commas, each above 0."""
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty size; write them like 1,8")
    sizes = [positive_float(part) for part in parts]
    if max(sizes) > MAX_MIB:
        raise argparse.ArgumentTypeError(
            f"{text!r} asks for more than {MAX_MIB} MiB a process; the question is the "
            "cache's, a few MiB show it"
        )
    return sizes


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
