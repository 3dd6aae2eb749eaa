// Write XingQiao job types (workflow plugins) in JavaScript.
//
// The JavaScript face of the WIT world `xingqiao:workflow/plugin@0.1.0`,
// built into a wasm component by componentize-js. A plugin module
// default-exports `definePlugin({...})`; the same module runs under Node for
// unit tests (see `testing.js`), where the server's checks run here.
//
//   import { definePlugin, Task, fields } from "./xingqiao/xingqiao-plugin.js";
//   export default definePlugin({
//     jobType: "hello_js",
//     jobExtra: { str_info: fields.string() },
//     workflow(job, dag) { dag.addTask(new Task("task1", "/demo_api/ping")); },
//   });

import LIMITS from "./limits.js";

export { LIMITS };

/** Throw it (or anything) in paramsCheck or workflow: the message reaches the job's creator. */
export class Refused extends Error {}

/** The server refused a task; `kind` is the WIT variant (`duplicate-label`, ...). */
export class AddTaskError extends Error {
  constructor(kind, detail) {
    super(refusalMessage(kind, detail));
    this.kind = kind;
    this.detail = detail;
  }
}

function refusalMessage(kind, detail) {
  switch (kind) {
    case "duplicate-label": return `duplicate task label ${JSON.stringify(detail)}`;
    case "unknown-dependency": return `dependency ${JSON.stringify(detail)} names no task added before it`;
    case "bad-label": return `bad task label ${JSON.stringify(detail)}: use 1 to ${LIMITS.label_max_bytes} of A-Z a-z 0-9 _ -`;
    case "bad-cmd": return `bad task cmd: ${detail}`;
    case "bad-json": return `bad task JSON: ${detail}`;
    case "too-long": return `${detail} is longer than ${LIMITS.names_max_bytes} bytes`;
    default: return `${kind}: ${detail}`;
  }
}

/** Every thrown value becomes a readable message, never an empty one. */
export function messageOf(thrown) {
  if (thrown instanceof Error) return thrown.message || thrown.name;
  if (typeof thrown === "string") return thrown || "error";
  try {
    return JSON.stringify(thrown) ?? String(thrown);
  } catch {
    return String(thrown);
  }
}

const bytes = (text) => new TextEncoder().encode(text).length;
const NAME = /^[A-Za-z0-9_-]+$/;

/** One task of the seed's `add_task(label, cmd, ...)`. */
export class Task {
  constructor(label, cmd, options = {}) {
    this.label = label;
    /** `/path` (sent to the server's handler base URL) or a full URL. */
    this.cmd = cmd;
    this.dependencies = options.dependencies ?? [];
    this.requires = options.requires ?? [];
    this.provides = options.provides ?? [];
    this.params = options.params;
    this.extra = options.extra;
    this.retryMax = options.retryMax ?? 0;
    this.timeoutSecs = options.timeoutSecs;
    this.isSave = options.isSave ?? false;
  }
}

/** What paramsCheck decides: timeout (seconds), locks (a list; a comma is refused) and tags. */
export class Check {
  constructor({ jobTimeout, jobLocks = [], jobTags = [] } = {}) {
    this.jobTimeout = jobTimeout;
    this.jobLocks = jobLocks;
    this.jobTags = jobTags;
  }

  tag(key, value) {
    this.jobTags.push(`${key}=${value}`);
    return this;
  }
}

let serverHost = null;

/** Called by the component's entry module with the WIT imports. */
export function bindHost(host) {
  serverHost = host;
}

/** The DAG `workflow` describes: in a component each task goes to the server;
 * under Node the server's checks run here and the tasks are kept. */
export class Dag {
  constructor() {
    this.tasks = [];
  }

  addTask(task) {
    if (serverHost) return addToServer(task);
    if (this.tasks.length >= LIMITS.max_tasks) {
      throw new Refused(`more than ${LIMITS.max_tasks} tasks: the server stops such a plugin`);
    }
    checkTask(task, new Set(this.tasks.map((t) => t.label)));
    this.tasks.push(task);
  }
}

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

// The server's checks of one task (host/src/runtime/dag.rs).
function checkTask(task, labels) {
  if (!(bytes(task.label) <= LIMITS.label_max_bytes && NAME.test(task.label))) {
    throw new AddTaskError("bad-label", task.label);
  }
  if (labels.has(task.label)) throw new AddTaskError("duplicate-label", task.label);
  const unknown = task.dependencies.find((dep) => !labels.has(dep));
  if (unknown !== undefined) throw new AddTaskError("unknown-dependency", unknown);
  if (!task.cmd.trim() || bytes(task.cmd) > LIMITS.cmd_max_bytes) {
    throw new AddTaskError("bad-cmd", `${JSON.stringify(task.cmd)} must be 1 to ${LIMITS.cmd_max_bytes} characters`);
  }
  for (const what of ["requires", "provides"]) {
    if (task[what].some((name) => !name)) throw new AddTaskError("bad-label", "empty parameter name");
    if (bytes(task[what].join(",")) > LIMITS.names_max_bytes) throw new AddTaskError("too-long", what);
  }
  for (const what of ["params", "extra"]) {
    if (task[what] !== undefined && task[what] !== null && !isObject(task[what])) {
      throw new AddTaskError("bad-json", `${what} must be a JSON object`);
    }
  }
}

function addToServer(task) {
  const options = {
    dependencies: task.dependencies,
    requires: task.requires,
    provides: task.provides,
    params: task.params == null ? undefined : JSON.stringify(task.params),
    extra: task.extra == null ? undefined : JSON.stringify(task.extra),
    retryMax: task.retryMax,
    timeoutSecs: task.timeoutSecs,
    isSave: task.isSave,
  };
  try {
    serverHost.addTask(task.label, task.cmd, options);
  } catch (thrown) {
    const refusal = thrown?.payload ?? thrown;
    if (refusal && typeof refusal.tag === "string") throw new AddTaskError(refusal.tag, refusal.val);
    throw thrown;
  }
}

/** The server's checks of what paramsCheck returned (validate_check in host/src/runtime/plugin.rs). */
export function checkResult(check) {
  if (!(check instanceof Check)) throw new Refused("paramsCheck must return a Check");
  if (check.jobTimeout !== undefined && check.jobTimeout !== null && !(check.jobTimeout >= 1)) {
    throw new Refused("job-timeout must be at least 1 second");
  }
  for (const raw of check.jobLocks) {
    const lock = raw.trim();
    if (!lock || lock.includes(",") || bytes(lock) > LIMITS.lock_max_bytes) {
      throw new Refused(`lock ${JSON.stringify(lock)} must be 1 to ${LIMITS.lock_max_bytes} bytes without commas`);
    }
  }
  for (const tag of check.jobTags) {
    const eq = tag.indexOf("=");
    if (eq < 0 || !tag.slice(0, eq).trim() || tag.includes(",") || bytes(tag) > LIMITS.tag_max_bytes) {
      throw new Refused(`tag ${JSON.stringify(tag)} must be key=value, without commas, at most ${LIMITS.tag_max_bytes} bytes`);
    }
  }
  if (bytes(check.jobLocks.map((l) => l.trim()).join(",")) > LIMITS.locks_max_bytes) {
    throw new Refused(`job-locks joined by commas exceed ${LIMITS.locks_max_bytes} bytes`);
  }
  if (bytes(check.jobTags.join(",")) > LIMITS.tags_max_bytes) {
    throw new Refused(`job-tags joined by commas exceed ${LIMITS.tags_max_bytes} bytes`);
  }
  return check;
}

// ---- typed job_extra: field declarations become a JSON Schema ----------------

function field(type) {
  return (options = {}) => {
    const { optional = false, ...keywords } = options;
    return { schema: { type, ...keywords }, optional };
  };
}

/** Field types of `jobExtra`; options: `optional: true` plus any JSON Schema
 * keyword (`description`, `minimum`, `enum`, ...). */
export const fields = {
  string: field("string"),
  integer: field("integer"),
  number: field("number"),
  boolean: field("boolean"),
  object: field("object"),
  array: (items, options = {}) => {
    const declared = field("array")(options);
    if (items) declared.schema.items = items.schema;
    return declared;
  },
};

/** The JSON Schema of a `jobExtra` declaration: fields are required unless `optional`. */
export function schemaOf(declaration) {
  const properties = {};
  const required = [];
  for (const [name, declared] of Object.entries(declaration)) {
    properties[name] = declared.schema;
    if (!declared.optional) required.push(name);
  }
  const schema = { type: "object", properties };
  if (required.length) schema.required = required;
  return schema;
}

/** A job as the plugin receives it. */
export function makeJob(extra = {}, { namespace = "", name = "", operator = "" } = {}) {
  return { extra: isObject(extra) ? extra : {}, namespace, name, operator };
}

/**
 * A job type: `{ jobType, version?, description?, jobExtra? | jobExtraSchema?,
 * paramsCheck?(job), workflow(job, dag), jobNotifier?(event) }`. A fresh
 * sandbox runs every call, so a plugin keeps no state between calls.
 */
export function definePlugin(spec) {
  if (typeof spec.workflow !== "function") throw new Error("a plugin needs workflow(job, dag)");
  return {
    jobType: spec.jobType,
    version: spec.version ?? "0.0.0",
    description: spec.description ?? "",
    jobExtraSchema: spec.jobExtra ? schemaOf(spec.jobExtra) : spec.jobExtraSchema,
    paramsCheck: spec.paramsCheck ?? (() => new Check()),
    workflow: spec.workflow,
    jobNotifier: spec.jobNotifier ?? (() => {}),
    implementsNotifier: typeof spec.jobNotifier === "function",
  };
}

/** A line in the server's log (`trace` ... `error`); under Node it is printed. */
export function log(level, message) {
  if (serverHost) serverHost.log(level, String(message));
  else console.log(`[${level}] ${message}`);
}

function jobFromWire(job) {
  let extra = {};
  try {
    extra = JSON.parse(job.jobExtra);
  } catch {
    extra = {};
  }
  return makeJob(extra, job);
}

function parseOr(text, fallback) {
  if (text === undefined || text === null) return fallback;
  try {
    return JSON.parse(text);
  } catch {
    return fallback;
  }
}

/** The WIT exports for a plugin made by definePlugin: every throw becomes a
 * string message (componentize-js would otherwise lose a non-string). */
export function witExports(plugin) {
  return {
    metadata() {
      return {
        jobType: plugin.jobType,
        version: plugin.version,
        description: plugin.description,
        jobExtraSchema: plugin.jobExtraSchema ? JSON.stringify(plugin.jobExtraSchema) : undefined,
      };
    },
    paramsCheck(job) {
      let check;
      try {
        check = plugin.paramsCheck(jobFromWire(job)) ?? new Check();
        if (!(check instanceof Check)) check = new Check(check);
      } catch (thrown) {
        throw messageOf(thrown);
      }
      return { jobTimeout: check.jobTimeout ?? undefined, jobLocks: check.jobLocks, jobTags: check.jobTags };
    },
    workflow(job) {
      try {
        plugin.workflow(jobFromWire(job), new Dag());
      } catch (thrown) {
        throw messageOf(thrown);
      }
    },
    jobNotifier(event) {
      try {
        plugin.jobNotifier({ ...event, retData: parseOr(event.retData, null), jobExtra: parseOr(event.jobExtra, {}) });
      } catch (thrown) {
        log("warn", `jobNotifier threw: ${messageOf(thrown)}`);
      }
    },
  };
}
