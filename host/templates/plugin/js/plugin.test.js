// Native tests of `{{name}}`: `node --test` in this folder.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { paramsCheck, runWorkflow } from "./xingqiao/testing.js";
import plugin from "./plugin.js";

test("three tasks and the last is saved", () => {
  const tasks = runWorkflow(plugin, { str_info: "hi", team: "ops" });
  assert.deepEqual(tasks.map((t) => t.label), ["task1", "task2", "task3"]);
  assert.equal(tasks[2].isSave, true);
  assert.deepEqual(paramsCheck(plugin, { str_info: "hi", team: "ops" }).jobTags, ["team=ops"]);
});

test("the schema requires str_info", () => {
  assert.deepEqual(plugin.jobExtraSchema.required, ["str_info"]);
});

test("the example job_extra is accepted", () => {
  const example = JSON.parse(readFileSync(new URL("./example-job-extra.json", import.meta.url), "utf8"));
  runWorkflow(plugin, example);
});
