import { addTask, log } from "xingqiao:workflow/host@0.1.0";
import { bindHost, witExports } from "../../../plugin-sdk/js/xingqiao-plugin.js";
import plugin from "../plugin.js";
bindHost({ addTask, log });
const wit = witExports(plugin);
export const metadata = wit.metadata;
export const paramsCheck = wit.paramsCheck;
export const workflow = wit.workflow;
export const jobNotifier = wit.jobNotifier;
