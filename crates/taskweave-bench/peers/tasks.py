#!/usr/bin/env python3
"""Python peer of taskweave-bench's task cases (src/cases/tasks.rs): the same work on asyncio.

Standard library only. Each mode prints one line of key=value pairs on stdout.

  tasks.py spawn_await N REPS
      inside one coroutine: N times `await asyncio.create_task(noop())`
      -> ns_per_task (median of REPS, after a warm-up). The coroutine is the one given to
      asyncio.run (which runs it as a task), so this is also the loop "in main"
      (task_spawn_await_main's baseline).
  tasks.py gather N REPS
      create N tasks of noop(), then `await asyncio.gather(*tasks)`
      -> ns_per_task (median of REPS, after a warm-up)
  tasks.py sleep_gather N REPS SLEEP_MS
      gather N tasks that each `await asyncio.sleep(SLEEP_MS / 1000)`, each repetition in a fresh
      asyncio.run() -> wall_ms (median of REPS) and peak_rss_kib (this process's peak RSS,
      VmHWM as for the Rust side; not ru_maxrss, which on Linux keeps the high-water mark of the
      process that started us across fork and exec)
"""
import asyncio
import resource
import statistics
import sys
import time


async def noop():
    return None


async def spawn_await(n):
    started = time.perf_counter_ns()
    for _ in range(n):
        await asyncio.create_task(noop())
    return (time.perf_counter_ns() - started) / n


async def gather(n):
    started = time.perf_counter_ns()
    tasks = [asyncio.create_task(noop()) for _ in range(n)]
    results = await asyncio.gather(*tasks)
    elapsed = time.perf_counter_ns() - started
    if len(results) != n:
        raise SystemExit(f"gather returned {len(results)} results of {n}")
    return elapsed / n


async def per_task(measure, n, reps):
    await measure(min(n, 1000))
    return statistics.median([await measure(n) for _ in range(reps)])


async def sleeper(seconds):
    await asyncio.sleep(seconds)


async def sleep_gather(n, seconds):
    started = time.perf_counter()
    await asyncio.gather(*(asyncio.create_task(sleeper(seconds)) for _ in range(n)))
    return (time.perf_counter() - started) * 1e3


def peak_rss_kib():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def main(argv):
    usage = "usage: tasks.py spawn_await|gather N REPS | sleep_gather N REPS SLEEP_MS"
    if len(argv) < 3:
        raise SystemExit(usage)
    mode, n, reps = argv[0], int(argv[1]), max(1, int(argv[2]))
    if mode in ("spawn_await", "gather"):
        measure = spawn_await if mode == "spawn_await" else gather
        print(f"ns_per_task={asyncio.run(per_task(measure, n, reps)):.1f} n={n} reps={reps}")
    elif mode == "sleep_gather" and len(argv) == 4:
        seconds = int(argv[3]) / 1000
        walls = [asyncio.run(sleep_gather(n, seconds)) for _ in range(reps)]
        print(f"wall_ms={statistics.median(walls):.3f} peak_rss_kib={peak_rss_kib()} n={n} reps={reps}")
    else:
        raise SystemExit(usage)


if __name__ == "__main__":
    main(sys.argv[1:])
