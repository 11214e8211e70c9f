"""Benchmarks of the runtime: engine latency, and the real daemon end to end.

- `latency`: per-window latency (p50, p95) and throughput of engines at several batch
  sizes, engines measured round-robin in one run so that their ratios hold on a busy
  machine;
- `workspace`: what a daemon run needs, generated (recordings, calibrations, configs);
- `daemon`: `edge-asd run` as a real process with a real mosquitto: throughput replaying
  a file as fast as possible, time to the first score, RSS, CPU share in real time;
- `suite`: all of it, as one table (`edge-asd bench`, benchmarks/bench_runtime.py).
"""
