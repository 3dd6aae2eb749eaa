"""The seed's hello DAG as Celery users write it, for bench/compare.

task1 (hello) -> task2 (ping) -> task3 (collect both), the same three steps
and replies as XingQiao's `hello` job type and its demo handlers. task3 waits
for task1 and task2, a fan-in, so it is the callback of a chord.
"""

import os

from celery import Celery, chord

REDIS = os.environ.get("CELERY_BENCH_REDIS", "redis://127.0.0.1:6390/0")

app = Celery("hello_dag", broker=REDIS, backend=REDIS)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=600,
    broker_connection_retry_on_startup=True,
)


@app.task
def hello(str_info):
    return {"stat": "OK", "hello": f"hello {str_info}"}


@app.task
def ping(task1):
    # Celery passes only the previous reply along a chain: task2 forwards
    # task1's, so that task3 sees both, as in XingQiao.
    return [task1, {"stat": "OK", "ping": "pong"}]


@app.task
def collect(header_replies):
    items = [item for reply in header_replies for item in reply]
    return {"stat": "OK", "count": len(items), "all_taskdata": items}


def hello_dag(str_info):
    """task1, then task2 after it, then task3 with both replies: three tasks,
    the fan-in through a chord (Celery's way to wait for a group)."""
    return hello.s(str_info) | chord([ping.s()], collect.s())
