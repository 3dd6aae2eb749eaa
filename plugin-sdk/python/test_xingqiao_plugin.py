"""The helper's own tests: `python3 -m unittest` in plugin-sdk/python."""

import dataclasses
import unittest
from typing import Optional

import xingqiao_plugin as xq
from xingqiao_plugin import testing


class HelperTest(unittest.TestCase):
    def test_a_lock_with_a_comma_is_refused_never_split(self):
        with self.assertRaisesRegex(xq.Refused, "without commas"):
            xq.check_result(xq.Check(job_locks=["a,b"]))
        xq.check_result(xq.Check(job_locks=["a", "b"]))
        with self.assertRaises(xq.Refused):
            xq.check_result(xq.Check(job_locks=["x" * 65]))
        with self.assertRaisesRegex(xq.Refused, "key=value"):
            xq.check_result(xq.Check(job_tags=["novalue"]))

    def test_tasks_are_checked_as_the_server_checks_them(self):
        dag = xq.Dag()
        dag.add_task(xq.Task("a", "/demo_api/ping"))
        with self.assertRaises(xq.AddTaskError) as refused:
            dag.add_task(xq.Task("a", "/x"))
        self.assertEqual(refused.exception.kind, "duplicate-label")
        with self.assertRaisesRegex(xq.AddTaskError, "names no task"):
            dag.add_task(xq.Task("b", "/x", dependencies=["c"]))
        with self.assertRaisesRegex(xq.AddTaskError, "bad task label"):
            dag.add_task(xq.Task("b c", "/x"))
        with self.assertRaisesRegex(xq.AddTaskError, "bad task cmd"):
            dag.add_task(xq.Task("b", "x" * 129))
        with self.assertRaisesRegex(xq.AddTaskError, "params must be a JSON object"):
            dag.add_task(xq.Task("b", "/x", params=[1]))

    def test_an_empty_workflow_is_refused(self):
        class Empty(xq.Plugin):
            job_type = "empty"

            def workflow(self, job, dag):
                pass

        with self.assertRaisesRegex(xq.Refused, "no task"):
            testing.run_workflow(Empty, {})

    def test_a_dataclass_declares_the_schema_and_types_the_job(self):
        @dataclasses.dataclass
        class Extra:
            name: str
            n: Optional[int] = dataclasses.field(default=None, metadata={"minimum": 1})
            tags: list[str] = dataclasses.field(default_factory=list)

        class Typed(xq.Plugin):
            job_type = "typed"
            job_extra = Extra

            def workflow(self, job, dag):
                dag.add_task(xq.Task("a", "/demo_api/ping", params={"name": job.typed.name}))

        self.assertEqual(Typed.extra_schema(), {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "n": {"type": "integer", "minimum": 1},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["name"],
        })
        self.assertEqual(testing.run_workflow(Typed, {"name": "x"})[0].params, {"name": "x"})


if __name__ == "__main__":
    unittest.main()
