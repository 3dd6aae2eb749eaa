"""Native tests: `python3 -m unittest` in this folder (PYTHONPATH must reach
plugin-sdk/python)."""

import unittest

import xingqiao_plugin as xq
from xingqiao_plugin import testing

from app import Hello


class HelloTest(unittest.TestCase):
    def test_task3_collects_both_and_is_saved(self):
        tasks = testing.run_workflow(Hello, {"str_info": "ceshi"})
        self.assertEqual([t.label for t in tasks], ["task1", "task2", "task3"])
        self.assertEqual(tasks[2].dependencies, ["task1", "task2"])
        self.assertTrue(tasks[2].is_save)

    def test_str_info_is_required(self):
        with self.assertRaisesRegex(xq.Refused, "str_info"):
            testing.run_workflow(Hello, {})


if __name__ == "__main__":
    unittest.main()
