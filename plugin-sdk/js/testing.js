// Run a plugin under Node in unit tests, as the server would call it, with the
// server's checks (LIMITS) applied to what it returns:
//
//   import { runWorkflow } from "./xingqiao/testing.js";
//   const tasks = runWorkflow(plugin, { str_info: "hi" });

import { Check, Dag, Refused, checkResult, makeJob } from "./xingqiao-plugin.js";

/** paramsCheck with the server's checks of its result. */
export function paramsCheck(plugin, extra) {
  const check = plugin.paramsCheck(makeJob(extra)) ?? new Check();
  return checkResult(check instanceof Check ? check : new Check(check));
}

/** paramsCheck then workflow, as create_job does; the tasks added. Throws what
 * the server would refuse: a bad check result, a refused task, an empty DAG. */
export function runWorkflow(plugin, extra) {
  paramsCheck(plugin, extra);
  const dag = new Dag();
  plugin.workflow(makeJob(extra), dag);
  if (dag.tasks.length === 0) throw new Refused("workflow() added no task");
  return dag.tasks;
}
