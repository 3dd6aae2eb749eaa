// `{{name}}`: a XingQiao job type in JavaScript. `xingqiao plugin build` makes
// the wasm component (componentize-js); `node --test` runs the tests.

import { Check, Task, definePlugin, fields } from "./xingqiao/xingqiao-plugin.js";

export default definePlugin({
  jobType: "{{name}}",
  version: "0.1.0",
  description: "hello(str_info) -> ping -> collect(all_taskdata), result saved",
  // job_extra: the server checks every create_job against the JSON Schema
  // generated from these fields before the plugin runs.
  jobExtra: {
    str_info: fields.string({ description: "Sent to the first task, which answers with it." }),
    team: fields.string({ optional: true, description: "Tags the job with team=<team>." }),
  },

  paramsCheck(job) {
    const check = new Check({ jobTimeout: 600 });
    if (job.extra.team) check.tag("team", job.extra.team);
    return check;
  },

  workflow(job, dag) {
    dag.addTask(new Task("task1", "/demo_api/hello", { requires: ["str_info"] }));
    dag.addTask(new Task("task2", "/demo_api/ping", { dependencies: ["task1"] }));
    dag.addTask(new Task("task3", "/demo_api/collect", {
      requires: ["all_taskdata"], dependencies: ["task1", "task2"], isSave: true,
    }));
  },
});
