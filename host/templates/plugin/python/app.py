"""`{{name}}`: a XingQiao job type in Python. `xingqiao plugin build` makes the
wasm component (componentize-py); `python3 -m unittest` runs the tests."""

from dataclasses import dataclass, field
from typing import Optional

import xingqiao_plugin as xq


@dataclass
class Extra:
    """job_extra of a `{{name}}` job. The server checks every create_job
    against the JSON Schema generated from this class before the plugin runs."""

    str_info: str = field(metadata={"description": "Sent to the first task, which answers with it."})
    team: Optional[str] = field(default=None, metadata={"description": "Tags the job with team=<team>."})


class {{type_name}}(xq.Plugin):
    job_type = "{{name}}"
    version = "0.1.0"
    description = "hello(str_info) -> ping -> collect(all_taskdata), result saved"
    job_extra = Extra

    def params_check(self, job):
        check = xq.Check(job_timeout=600)
        if job.typed.team:
            check.tag("team", job.typed.team)
        return check

    def workflow(self, job, dag):
        dag.add_task(xq.Task("task1", "/demo_api/hello", requires=["str_info"]))
        dag.add_task(xq.Task("task2", "/demo_api/ping", dependencies=["task1"]))
        dag.add_task(xq.Task("task3", "/demo_api/collect", requires=["all_taskdata"],
                             dependencies=["task1", "task2"], is_save=True))


# componentize-py builds the component from this class.
WitWorld = xq.export({{type_name}})
