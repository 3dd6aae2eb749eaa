"""Native tests of `{{name}}`: `python3 -m unittest` in this folder."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "xingqiao"))

from xingqiao_plugin import testing  # noqa: E402

from app import {{type_name}}  # noqa: E402


class {{type_name}}Test(unittest.TestCase):
    def test_three_tasks_and_the_last_is_saved(self):
        tasks = testing.run_workflow({{type_name}}, {"str_info": "hi", "team": "ops"})
        self.assertEqual([t.label for t in tasks], ["task1", "task2", "task3"])
        self.assertTrue(tasks[2].is_save)
        self.assertEqual(testing.params_check({{type_name}}, {"str_info": "hi", "team": "ops"}).job_tags, ["team=ops"])

    def test_the_schema_requires_str_info(self):
        self.assertEqual({{type_name}}.extra_schema()["required"], ["str_info"])

    def test_the_example_job_extra_is_accepted(self):
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "example-job-extra.json"), encoding="utf-8") as f:
            testing.run_workflow({{type_name}}, json.load(f))


if __name__ == "__main__":
    unittest.main()
