#!/usr/bin/env python3
"""Python peer of taskweave-bench's process cases (src/cases/process.rs): the same work on
concurrent.futures.ProcessPoolExecutor with 2 workers and the fork start method (CPython's
default on Linux up to 3.13). Standard library only. Each mode prints one line of key=value pairs.

  process.py rtt N REPS
      on a warm pool, N times pool.submit(trivial).result()      -> us_per_call (median of REPS)
  process.py inflight N REPS
      on a warm pool, N submits back to back, then wait for all  -> us_per_task (median of REPS)
  process.py map N CHUNKSIZES REPS
      on a warm pool, list(pool.map(square, range(N), chunksize=c)) for each c in CHUNKSIZES
      (comma separated)                                          -> ns_per_item (the best c's median)
  process.py payload BYTES CALLS REPS
      on a warm pool, CALLS times pool.submit(echo, payload).result() with a bytes payload of
      BYTES random bytes                                         -> us_per_call (median of REPS)
  process.py first_result REPS
      ProcessPoolExecutor(2) construction to the first submit(trivial).result(), fresh pool each
      repetition, shutdown not included                         -> ms (median of REPS)
"""
import multiprocessing as mp
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, wait

WORKERS = 2


def trivial():
    return None


def square(x):
    return x * x


def echo(b):
    return b


def pool():
    return ProcessPoolExecutor(max_workers=WORKERS, mp_context=mp.get_context("fork"))


def warm(p):
    list(p.map(square, range(WORKERS * 50)))


def rtt(n, reps):
    out = []
    with pool() as p:
        warm(p)
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(n):
                p.submit(trivial).result()
            out.append((time.perf_counter() - t0) / n * 1e6)
    print(f"us_per_call={statistics.median(out):.3f} us/call n={n} count")


def inflight(n, reps):
    out = []
    with pool() as p:
        warm(p)
        for _ in range(reps):
            t0 = time.perf_counter()
            futs = [p.submit(trivial) for _ in range(n)]
            wait(futs)
            out.append((time.perf_counter() - t0) / n * 1e6)
    print(f"us_per_task={statistics.median(out):.3f} us/task n={n} count")


def map_items(n, chunksizes, reps):
    best = None
    expect = [square(i) for i in range(n)]
    with pool() as p:
        warm(p)
        for cs in chunksizes:
            xs = []
            for _ in range(reps):
                t0 = time.perf_counter()
                got = list(p.map(square, range(n), chunksize=cs))
                xs.append((time.perf_counter() - t0) / n * 1e9)
                assert got == expect
            med = statistics.median(xs)
            if best is None or med < best[0]:
                best = (med, cs)
    print(f"ns_per_item={best[0]:.1f} ns/item chunksize={best[1]} count n={n} count")


def payload(size, calls, reps):
    data = os.urandom(size)
    out = []
    with pool() as p:
        warm(p)
        assert p.submit(echo, data).result() == data
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(calls):
                p.submit(echo, data).result()
            out.append((time.perf_counter() - t0) / calls * 1e6)
    print(f"us_per_call={statistics.median(out):.1f} us/call bytes={size} count")


def first_result(reps):
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        p = pool()
        p.submit(trivial).result()
        out.append((time.perf_counter() - t0) * 1e3)
        p.shutdown(wait=True)
    print(f"ms={statistics.median(out):.3f} ms")


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "rtt":
        rtt(int(args[0]), int(args[1]))
    elif mode == "inflight":
        inflight(int(args[0]), int(args[1]))
    elif mode == "map":
        map_items(int(args[0]), [int(c) for c in args[1].split(",")], int(args[2]))
    elif mode == "payload":
        payload(int(args[0]), int(args[1]), int(args[2]))
    elif mode == "first_result":
        first_result(int(args[0]))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
