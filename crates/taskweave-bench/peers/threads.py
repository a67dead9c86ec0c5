#!/usr/bin/env python3
"""Python peer of taskweave-bench's thread cases (src/cases/threads.rs): the same work on asyncio
and concurrent.futures.ThreadPoolExecutor.

Standard library only. One warm pool of Python's default size, min(32, cores + 4), per run. Each
mode prints one line of key=value pairs on stdout.

  threads.py rtt N REPS
      inside one coroutine: N times `await loop.run_in_executor(pool, trivial)`, one at a time
      -> us_per_call (median of REPS, after a warm-up)
  threads.py inflight N INFLIGHT REPS
      the same N calls issued as asyncio.gather batches of INFLIGHT
      -> us_per_call (median of REPS, after a warm-up)
  threads.py map N REPS
      list(pool.map(ident, range(N))), checked -> us_per_item (median of REPS, after a warm-up)
      and peak_rss_kib (this process's peak RSS, VmHWM; Python's map submits all N items up
      front, so it grows with N)
"""
import asyncio
import os
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

WORKERS = min(32, (os.cpu_count() or 1) + 4)


def trivial():
    return None


def ident(x):
    return x


async def rtt(loop, pool, n):
    started = time.perf_counter_ns()
    for _ in range(n):
        await loop.run_in_executor(pool, trivial)
    return (time.perf_counter_ns() - started) / n / 1e3


async def inflight(loop, pool, n, k):
    started = time.perf_counter_ns()
    done = 0
    while done < n:
        batch = min(k, n - done)
        await asyncio.gather(*(loop.run_in_executor(pool, trivial) for _ in range(batch)))
        done += batch
    return (time.perf_counter_ns() - started) / n / 1e3


async def run_async(mode, n, reps, k):
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        await inflight(loop, pool, 2000, 64)  # warm-up: start every thread
        if mode == "rtt":
            return statistics.median([await rtt(loop, pool, n) for _ in range(reps)])
        return statistics.median([await inflight(loop, pool, n, k) for _ in range(reps)])


def peak_rss_kib():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def map_items(n, reps):
    expect = list(range(n))
    samples = []
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(ident, range(min(n, 5000))))  # warm-up: start every thread
        for _ in range(reps):
            started = time.perf_counter_ns()
            got = list(pool.map(ident, range(n)))
            samples.append((time.perf_counter_ns() - started) / n / 1e3)
            if got != expect:
                raise SystemExit("map returned wrong results")
    return statistics.median(samples)


def main(argv):
    usage = "usage: threads.py rtt N REPS | inflight N INFLIGHT REPS | map N REPS"
    if len(argv) < 3:
        raise SystemExit(usage)
    mode, n = argv[0], int(argv[1])
    if mode == "rtt" and len(argv) == 3:
        reps = max(1, int(argv[2]))
        us = asyncio.run(run_async("rtt", n, reps, 1))
        print(f"us_per_call={us:.3f} n={n} reps={reps} workers={WORKERS}")
    elif mode == "inflight" and len(argv) == 4:
        k, reps = int(argv[2]), max(1, int(argv[3]))
        us = asyncio.run(run_async("inflight", n, reps, k))
        print(f"us_per_call={us:.3f} n={n} inflight={k} reps={reps} workers={WORKERS}")
    elif mode == "map" and len(argv) == 3:
        reps = max(1, int(argv[2]))
        us = map_items(n, reps)
        print(f"us_per_item={us:.3f} peak_rss_kib={peak_rss_kib()} n={n} reps={reps} workers={WORKERS}")
    else:
        raise SystemExit(usage)


if __name__ == "__main__":
    main(sys.argv[1:])
