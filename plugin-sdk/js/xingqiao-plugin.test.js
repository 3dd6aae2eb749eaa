// The helper's own tests: `node --test` in plugin-sdk/js.
import assert from "node:assert/strict";
import { test } from "node:test";

import { AddTaskError, Check, Dag, Refused, Task, checkResult, definePlugin, fields, messageOf, witExports } from "./xingqiao-plugin.js";
import { runWorkflow } from "./testing.js";

test("every thrown value becomes a message", () => {
  assert.equal(messageOf(new Refused("no")), "no");
  assert.equal(messageOf("text"), "text");
  assert.equal(messageOf({ code: 7 }), '{"code":7}');
  assert.equal(messageOf(undefined), "undefined");
  assert.equal(messageOf(new Error("")), "Error");
  const plugin = witExports(definePlugin({ jobType: "t", workflow() { throw { code: 7 }; } }));
  assert.throws(() => plugin.workflow({ jobExtra: "{}" }), (thrown) => thrown === '{"code":7}');
});

test("a lock with a comma is refused, never split", () => {
  assert.throws(() => checkResult(new Check({ jobLocks: ["a,b"] })), /without commas/);
  assert.ok(checkResult(new Check({ jobLocks: ["a", "b"] })));
  assert.throws(() => checkResult(new Check({ jobLocks: ["x".repeat(65)] })), /lock/);
  assert.throws(() => checkResult(new Check({ jobTags: ["novalue"] })), /key=value/);
});

test("tasks are checked as the server checks them", () => {
  const dag = new Dag();
  dag.addTask(new Task("a", "/demo_api/ping"));
  assert.throws(() => dag.addTask(new Task("a", "/x")), (e) => e instanceof AddTaskError && e.kind === "duplicate-label");
  assert.throws(() => dag.addTask(new Task("b", "/x", { dependencies: ["c"] })), /names no task/);
  assert.throws(() => dag.addTask(new Task("b c", "/x")), /bad task label/);
  assert.throws(() => dag.addTask(new Task("b", "x".repeat(129))), /bad task cmd/);
  assert.throws(() => dag.addTask(new Task("b", "/x", { params: [1] })), /params must be a JSON object/);
  assert.throws(() => runWorkflow(definePlugin({ jobType: "t", workflow() {} }), {}), /no task/);
});

test("typed job_extra declares a schema", () => {
  const plugin = definePlugin({
    jobType: "t",
    jobExtra: { name: fields.string(), n: fields.integer({ optional: true, minimum: 1 }) },
    workflow() {},
  });
  assert.deepEqual(plugin.jobExtraSchema, {
    type: "object",
    properties: { name: { type: "string" }, n: { type: "integer", minimum: 1 } },
    required: ["name"],
  });
  assert.equal(witExports(plugin).metadata().jobExtraSchema, JSON.stringify(plugin.jobExtraSchema));
});
