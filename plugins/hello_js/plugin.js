// `hello` in JavaScript: the seed's run-time parameter demo, like plugins/hello
// in Rust. task1 needs `str_info` (taken from job_extra when it runs), task2
// follows it, task3 collects both results (`all_taskdata`) and is saved.

import { Check, Refused, Task, definePlugin } from "../../plugin-sdk/js/xingqiao-plugin.js";

export default definePlugin({
  jobType: "hello_js",
  version: "0.1.0",
  description: "hello(str_info) -> ping -> collect(all_taskdata), result saved",
  jobExtraSchema: { type: "object", properties: { str_info: { type: "string" } } },

  paramsCheck(job) {
    if (job.extra.str_info === undefined) throw new Refused("job_extra not have str_info");
    return new Check();
  },

  workflow(job, dag) {
    dag.addTask(new Task("task1", "/demo_api/hello", { requires: ["str_info"] }));
    dag.addTask(new Task("task2", "/demo_api/ping", { dependencies: ["task1"] }));
    dag.addTask(new Task("task3", "/demo_api/collect", {
      requires: ["all_taskdata"], dependencies: ["task1", "task2"], isSave: true,
    }));
  },
});
