// Native tests: `node --test` in this folder.
import assert from "node:assert/strict";
import { test } from "node:test";

import { runWorkflow } from "../../plugin-sdk/js/testing.js";
import plugin from "./plugin.js";

test("task3 collects both and is saved", () => {
  const tasks = runWorkflow(plugin, { str_info: "ceshi" });
  assert.deepEqual(tasks.map((t) => t.label), ["task1", "task2", "task3"]);
  assert.deepEqual(tasks[2].dependencies, ["task1", "task2"]);
  assert.equal(tasks[2].isSave, true);
});

test("str_info is required", () => {
  assert.throws(() => runWorkflow(plugin, {}), /str_info/);
});
