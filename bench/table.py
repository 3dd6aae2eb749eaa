"""Turns bench/compare's JSON lines into the Markdown tables of the README.

    python3 bench/table.py RESULTS/*.jsonl
"""

import json
import sys

NAMES = {
    "celery+redis": "Celery 5.7 + Redis (prefork, 2 processes)",
    "sqlite": "XingQiao, embedded (SQLite, 1 process)",
    "mysql+redis, 2 processes": "XingQiao, MariaDB + Redis (2 processes)",
    "postgres+redis, 2 processes": "XingQiao, PostgreSQL + Redis (2 processes)",
}


def read(paths):
    by_backend = {}
    for path in paths:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                if line.startswith("{"):
                    record = json.loads(line)
                    by_backend.setdefault(record["backend"], {})[record["scenario"]] = record
    return by_backend


def cell(value, unit="", digits=1):
    if value is None:
        return "—"
    return f"{round(value):,}{unit}" if digits == 0 else f"{round(value, digits):,}{unit}"


def mib(values):
    return "—" if not values else " / ".join(f"{v:g}" for v in values) + " MiB"


def main(paths):
    results = read(paths)
    # Celery first, then the setups in the order they ran.
    results = dict(sorted(results.items(), key=lambda item: item[0] != "celery+redis"))
    celery = results.get("celery+redis", {})
    print("| setup | jobs/s, 1,000 at once | create_job of 1,000 | p50 one at a time | p99 "
          "| jobs/s ÷ Celery's (higher is better) | p50 ÷ Celery's (lower is better) |")
    print("|---|---|---|---|---|---|---|")
    for backend, scenarios in results.items():
        dag = scenarios.get("hello-dag", {})
        seq = scenarios.get("hello-sequential", {})
        ratio_rate = ratio_p50 = "—"
        if backend != "celery+redis" and celery.get("hello-dag") and dag:
            ratio_rate = f"{dag['jobs_per_s'] / celery['hello-dag']['jobs_per_s']:.2f}×"
        if backend != "celery+redis" and celery.get("hello-sequential") and seq:
            ratio_p50 = f"{seq['p50_ms'] / celery['hello-sequential']['p50_ms']:.2f}×"
        print(f"| {NAMES.get(backend, backend)} | {cell(dag.get('jobs_per_s'), '', 0)} | {cell(dag.get('submit_s'), ' s', 2)} "
              f"| {cell(seq.get('p50_ms'), ' ms')} | {cell(seq.get('p99_ms'), ' ms')} | {ratio_rate} | {ratio_p50} |")
    print()
    print("| setup | target | measured | met |")
    print("|---|---|---|---|")
    for backend, scenarios in results.items():
        for name, record in scenarios.items():
            if "target" not in record:
                continue
            measured = {
                "hello-dag": lambda r: f"{r['jobs_per_s']:g} jobs/s, create_job of {r['jobs']:,} in {r['submit_s']:.2f} s",
                "hello-sequential": lambda r: f"p50 {r['p50_ms']:.1f} ms",
                "chain": lambda r: f"{r['ms_per_step']:.2f} ms per step",
                "fanout-flatness": lambda r: f"{r['ratio_10000_vs_100']:g}×",
                "memory": lambda r: f"idle {mib(r['idle_rss_mib'])}, peak {mib(r['peak_rss_mib'])}",
            }.get(name, lambda r: "")(record)
            print(f"| {NAMES.get(backend, backend)} | {name}: {record['target']} | {measured} "
                  f"| {'yes' if record['met'] else '**no**'} |")


if __name__ == "__main__":
    main(sys.argv[1:])
