#!/usr/bin/env python3
# (Named dask_peer, not dask: a script called dask.py would shadow the dask package itself.)
"""Dask peer of taskweave-bench's NATS cases (src/cases/nats.rs): the same trivial function on a
Dask distributed LocalCluster of 2 worker processes with one thread each, on 127.0.0.1. Needs
`distributed` (the bench installs a pinned one into a virtualenv under target/). One cluster
serves every measurement; it prints one line of key=value pairs.

  dask_peer.py RTT_N INFLIGHT_N MAP_N REPS
      first_result_s  LocalCluster start to the first result
      rtt_us          RTT_N times client.submit(square, i).result(), per call (median of REPS)
      inflight_us     INFLIGHT_N submits, then gather them all, per task (median of REPS)
      map_us          client.gather(client.map(square, range(MAP_N))), per item (median of REPS)
"""
import logging
import statistics
import sys
import time

from distributed import Client, LocalCluster


def square(x):
    return x * x


def main():
    rtt_n, inflight_n, map_n, reps = (int(a) for a in sys.argv[1:5])
    # The cluster's own start-up and shutdown chatter would bury the result line.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None, host="127.0.0.1", silence_logs=logging.ERROR)
    client = Client(cluster)
    assert client.submit(square, 3, pure=False).result() == 9
    first = time.perf_counter() - t0

    rtts = []
    for _ in range(reps):
        t = time.perf_counter()
        for i in range(rtt_n):
            client.submit(square, i, pure=False).result()
        rtts.append((time.perf_counter() - t) / rtt_n * 1e6)

    inflight = []
    for _ in range(reps):
        t = time.perf_counter()
        futures = [client.submit(square, i, pure=False) for i in range(inflight_n)]
        got = client.gather(futures)
        inflight.append((time.perf_counter() - t) / inflight_n * 1e6)
        assert got == [i * i for i in range(inflight_n)]

    maps = []
    for _ in range(reps):
        t = time.perf_counter()
        got = client.gather(client.map(square, range(map_n), pure=False))
        maps.append((time.perf_counter() - t) / map_n * 1e6)
        assert got == [i * i for i in range(map_n)]

    client.close()
    cluster.close()
    print(f"first_result_s={first:.3f} rtt_us={statistics.median(rtts):.1f} "
          f"inflight_us={statistics.median(inflight):.1f} map_us={statistics.median(maps):.1f} "
          f"rtt_n={rtt_n} count inflight_n={inflight_n} count map_n={map_n} count")


if __name__ == "__main__":
    main()
