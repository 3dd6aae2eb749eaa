"""Drives the Celery worker like bench/engine drives XingQiao: prints one JSON
line per scenario, same names and fields.

    python client.py        # after the worker is up (bench/compare does both)
"""

import json
import sys
import time

from hello_dag import app, hello_dag


def print_line(**line):
    print(json.dumps({"bench": "engine", "backend": "celery+redis", **line}), flush=True)


def check(reply):
    if reply.get("count") != 2:
        sys.exit(f"unexpected reply: {reply}")


def dag_at_once(jobs):
    started = time.perf_counter()
    results = [hello_dag("bench").apply_async() for _ in range(jobs)]
    submitted = time.perf_counter() - started
    for result in results:
        check(result.get(timeout=600))
    elapsed = time.perf_counter() - started
    print_line(scenario="hello-dag", jobs=jobs, submit_s=round(submitted, 3), total_s=round(elapsed, 3),
               jobs_per_s=round(jobs / elapsed), failed=0)


def one_at_a_time(jobs):
    samples = []
    for _ in range(jobs):
        started = time.perf_counter()
        check(hello_dag("bench").apply_async().get(timeout=60))
        samples.append((time.perf_counter() - started) * 1e3)
    samples.sort()

    def pick(p):
        return round(samples[round((len(samples) - 1) * p)], 3)

    print_line(scenario="hello-sequential", jobs=jobs, p50_ms=pick(0.5), p99_ms=pick(0.99))


if __name__ == "__main__":
    # A warm-up job: connections made, worker processes forked and ready.
    check(hello_dag("warm-up").apply_async().get(timeout=60))
    dag_at_once(1000)
    one_at_a_time(100)
    app.close()
