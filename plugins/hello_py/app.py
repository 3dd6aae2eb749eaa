"""`hello` in Python: the seed's run-time parameter demo, like plugins/hello
in Rust. task1 needs `str_info` (taken from job_extra when it runs), task2
follows it, task3 collects both results (`all_taskdata`) and is saved."""

import xingqiao_plugin as xq


class Hello(xq.Plugin):
    job_type = "hello_py"
    version = "0.1.0"
    description = "hello(str_info) -> ping -> collect(all_taskdata), result saved"
    job_extra_schema = {"type": "object", "properties": {"str_info": {"type": "string"}}}

    def params_check(self, job):
        if job.extra.get("str_info") is None:
            raise xq.Refused("job_extra not have str_info")
        return xq.Check()

    def workflow(self, job, dag):
        dag.add_task(xq.Task("task1", "/demo_api/hello", requires=["str_info"]))
        dag.add_task(xq.Task("task2", "/demo_api/ping", dependencies=["task1"]))
        dag.add_task(xq.Task("task3", "/demo_api/collect", requires=["all_taskdata"],
                             dependencies=["task1", "task2"], is_save=True))


WitWorld = xq.export(Hello)
