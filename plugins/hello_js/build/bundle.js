import { addTask, log as log$1 } from "xingqiao:workflow/host@0.1.0";
// ../../plugin-sdk/js/limits.js
var limits_default = {
	"_comment": "What the server accepts from a plugin, shared by the host and by the Rust, Python and JavaScript helpers so a native test refuses what the server refuses. Lengths are UTF-8 bytes.",
	"job_type_max_bytes": 64,
	"version_max_bytes": 64,
	"label_max_bytes": 64,
	"cmd_max_bytes": 128,
	"names_max_bytes": 1024,
	"lock_max_bytes": 64,
	"locks_max_bytes": 1024,
	"tag_max_bytes": 128,
	"tags_max_bytes": 512,
	"max_tasks": 1e4
};
// ../../plugin-sdk/js/xingqiao-plugin.js
/** Throw it (or anything) in paramsCheck or workflow: the message reaches the job's creator. */
var Refused = class extends Error {};
/** The server refused a task; `kind` is the WIT variant (`duplicate-label`, ...). */
var AddTaskError = class extends Error {
	constructor(kind, detail) {
		super(refusalMessage(kind, detail));
		this.kind = kind;
		this.detail = detail;
	}
};
function refusalMessage(kind, detail) {
	switch (kind) {
		case "duplicate-label": return `duplicate task label ${JSON.stringify(detail)}`;
		case "unknown-dependency": return `dependency ${JSON.stringify(detail)} names no task added before it`;
		case "bad-label": return `bad task label ${JSON.stringify(detail)}: use 1 to ${limits_default.label_max_bytes} of A-Z a-z 0-9 _ -`;
		case "bad-cmd": return `bad task cmd: ${detail}`;
		case "bad-json": return `bad task JSON: ${detail}`;
		case "too-long": return `${detail} is longer than ${limits_default.names_max_bytes} bytes`;
		default: return `${kind}: ${detail}`;
	}
}
/** Every thrown value becomes a readable message, never an empty one. */
function messageOf(thrown) {
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
var Task = class {
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
};
/** What paramsCheck decides: timeout (seconds), locks (a list; a comma is refused) and tags. */
var Check = class {
	constructor({ jobTimeout, jobLocks = [], jobTags = [] } = {}) {
		this.jobTimeout = jobTimeout;
		this.jobLocks = jobLocks;
		this.jobTags = jobTags;
	}
	tag(key, value) {
		this.jobTags.push(`${key}=${value}`);
		return this;
	}
};
let serverHost = null;
/** Called by the component's entry module with the WIT imports. */
function bindHost(host) {
	serverHost = host;
}
/** The DAG `workflow` describes: in a component each task goes to the server;
* under Node the server's checks run here and the tasks are kept. */
var Dag = class {
	constructor() {
		this.tasks = [];
	}
	addTask(task) {
		if (serverHost) return addToServer(task);
		if (this.tasks.length >= limits_default.max_tasks) throw new Refused(`more than ${limits_default.max_tasks} tasks: the server stops such a plugin`);
		checkTask(task, new Set(this.tasks.map((t) => t.label)));
		this.tasks.push(task);
	}
};
const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
function checkTask(task, labels) {
	if (!(bytes(task.label) <= limits_default.label_max_bytes && NAME.test(task.label))) throw new AddTaskError("bad-label", task.label);
	if (labels.has(task.label)) throw new AddTaskError("duplicate-label", task.label);
	const unknown = task.dependencies.find((dep) => !labels.has(dep));
	if (unknown !== void 0) throw new AddTaskError("unknown-dependency", unknown);
	if (!task.cmd.trim() || bytes(task.cmd) > limits_default.cmd_max_bytes) throw new AddTaskError("bad-cmd", `${JSON.stringify(task.cmd)} must be 1 to ${limits_default.cmd_max_bytes} characters`);
	for (const what of ["requires", "provides"]) {
		if (task[what].some((name) => !name)) throw new AddTaskError("bad-label", "empty parameter name");
		if (bytes(task[what].join(",")) > limits_default.names_max_bytes) throw new AddTaskError("too-long", what);
	}
	for (const what of ["params", "extra"]) if (task[what] !== void 0 && task[what] !== null && !isObject(task[what])) throw new AddTaskError("bad-json", `${what} must be a JSON object`);
}
function addToServer(task) {
	const options = {
		dependencies: task.dependencies,
		requires: task.requires,
		provides: task.provides,
		params: task.params == null ? void 0 : JSON.stringify(task.params),
		extra: task.extra == null ? void 0 : JSON.stringify(task.extra),
		retryMax: task.retryMax,
		timeoutSecs: task.timeoutSecs,
		isSave: task.isSave
	};
	try {
		serverHost.addTask(task.label, task.cmd, options);
	} catch (thrown) {
		const refusal = thrown?.payload ?? thrown;
		if (refusal && typeof refusal.tag === "string") throw new AddTaskError(refusal.tag, refusal.val);
		throw thrown;
	}
}
/** The JSON Schema of a `jobExtra` declaration: fields are required unless `optional`. */
function schemaOf(declaration) {
	const properties = {};
	const required = [];
	for (const [name, declared] of Object.entries(declaration)) {
		properties[name] = declared.schema;
		if (!declared.optional) required.push(name);
	}
	const schema = {
		type: "object",
		properties
	};
	if (required.length) schema.required = required;
	return schema;
}
/** A job as the plugin receives it. */
function makeJob(extra = {}, { namespace = "", name = "", operator = "" } = {}) {
	return {
		extra: isObject(extra) ? extra : {},
		namespace,
		name,
		operator
	};
}
/**
* A job type: `{ jobType, version?, description?, jobExtra? | jobExtraSchema?,
* paramsCheck?(job), workflow(job, dag), jobNotifier?(event) }`. A fresh
* sandbox runs every call, so a plugin keeps no state between calls.
*/
function definePlugin(spec) {
	if (typeof spec.workflow !== "function") throw new Error("a plugin needs workflow(job, dag)");
	return {
		jobType: spec.jobType,
		version: spec.version ?? "0.0.0",
		description: spec.description ?? "",
		jobExtraSchema: spec.jobExtra ? schemaOf(spec.jobExtra) : spec.jobExtraSchema,
		paramsCheck: spec.paramsCheck ?? (() => new Check()),
		workflow: spec.workflow,
		jobNotifier: spec.jobNotifier ?? (() => {}),
		implementsNotifier: typeof spec.jobNotifier === "function"
	};
}
/** A line in the server's log (`trace` ... `error`); under Node it is printed. */
function log(level, message) {
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
	if (text === void 0 || text === null) return fallback;
	try {
		return JSON.parse(text);
	} catch {
		return fallback;
	}
}
/** The WIT exports for a plugin made by definePlugin: every throw becomes a
* string message (componentize-js would otherwise lose a non-string). */
function witExports(plugin) {
	return {
		metadata() {
			return {
				jobType: plugin.jobType,
				version: plugin.version,
				description: plugin.description,
				jobExtraSchema: plugin.jobExtraSchema ? JSON.stringify(plugin.jobExtraSchema) : void 0
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
			return {
				jobTimeout: check.jobTimeout ?? void 0,
				jobLocks: check.jobLocks,
				jobTags: check.jobTags
			};
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
				plugin.jobNotifier({
					...event,
					retData: parseOr(event.retData, null),
					jobExtra: parseOr(event.jobExtra, {})
				});
			} catch (thrown) {
				log("warn", `jobNotifier threw: ${messageOf(thrown)}`);
			}
		}
	};
}
// plugin.js
var plugin_default = definePlugin({
	jobType: "hello_js",
	version: "0.1.0",
	description: "hello(str_info) -> ping -> collect(all_taskdata), result saved",
	jobExtraSchema: {
		type: "object",
		properties: { str_info: { type: "string" } }
	},
	paramsCheck(job) {
		if (job.extra.str_info === void 0) throw new Refused("job_extra not have str_info");
		return new Check();
	},
	workflow(job, dag) {
		dag.addTask(new Task("task1", "/demo_api/hello", { requires: ["str_info"] }));
		dag.addTask(new Task("task2", "/demo_api/ping", { dependencies: ["task1"] }));
		dag.addTask(new Task("task3", "/demo_api/collect", {
			requires: ["all_taskdata"],
			dependencies: ["task1", "task2"],
			isSave: true
		}));
	}
});
// build/component.js
bindHost({
	addTask,
	log: log$1
});
const wit = witExports(plugin_default);
const metadata = wit.metadata;
const paramsCheck = wit.paramsCheck;
const workflow = wit.workflow;
const jobNotifier = wit.jobNotifier;
export { jobNotifier, metadata, paramsCheck, workflow };
