"""The playground's speed: surface updates a second that a page gets, and what its polling costs the training.

A 4 x 8 net on 500 points of moons (the issue's case) plays in a real
playground server. A client polls ``/api/state`` over HTTP as the page does
(the next request as soon as the last answer is in) and counts the distinct
snapshots it receives a second: the updates a page can draw (target >= 20).
Windows with the client polling alternate with windows without it, so the
epochs a second of the two are measured under the same load: their ratio is
what the page costs the training.

    python benchmarks/playground.py [--windows 6] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request

from _common import machine
from trainwell.playground import PlaygroundServer, Session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=6, help="windows of each kind (polled, not polled)")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    server = PlaygroundServer(port=0, session=Session())
    server.start()
    session = server.session
    session.configure({"model.depth": 4, "model.width": 8, "data.n_samples": 500, "train.epochs": 10000})
    while json.loads(session.snapshot).get("generation") != session.generation:
        time.sleep(0.05)
    session.control("play")
    time.sleep(1.0)  # past the start

    def epoch() -> int:
        return json.loads(session.snapshot)["epoch"]

    def polled_window() -> tuple[float, float, float]:
        seen, latencies, stop = set(), [], time.monotonic() + args.seconds
        start_epoch, start = epoch(), time.monotonic()
        while time.monotonic() < stop:
            t = time.perf_counter()
            with urllib.request.urlopen(server.url + "api/state", timeout=10) as r:
                snap = json.loads(r.read())
            latencies.append(time.perf_counter() - t)
            seen.add((snap["generation"], snap["step"]))
        elapsed = time.monotonic() - start
        return len(seen) / elapsed, (epoch() - start_epoch) / elapsed, latencies

    def quiet_window() -> float:
        start_epoch, start = epoch(), time.monotonic()
        time.sleep(args.seconds)
        return (epoch() - start_epoch) / (time.monotonic() - start)

    updates, polled, quiet, latency = [], [], [], []
    for w in range(args.windows):
        for kind in (("polled", "quiet") if w % 2 == 0 else ("quiet", "polled")):
            if kind == "polled":
                u, e, lat = polled_window()
                updates.append(u), polled.append(e), latency.extend(lat)
            else:
                quiet.append(quiet_window())
    server.shutdown()
    server.server_close()
    u, p, q = statistics.median(updates), statistics.median(polled), statistics.median(quiet)
    print(f"4x8 net, 500 points, {args.windows} windows of {args.seconds:g} s each: surface updates a page gets "
          f"{u:.1f}/s (target >= 20: {u / 20:.2f}x the target); /api/state answers in {1e3 * statistics.median(latency):.2f} ms "
          f"(median), {1e3 * statistics.quantiles(latency, n=100)[98]:.2f} ms (99th percentile), "
          f"{1e3 * max(latency):.2f} ms (slowest of {len(latency)} answers)")
    print(f"training while polled {p:.1f} epochs/s, not polled {q:.1f} epochs/s: ratio {p / q:.3f}")


if __name__ == "__main__":
    main()
