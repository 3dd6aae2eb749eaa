// The XingQiao console: a small single-page app over the public API (the
// same routes and tokens as any client). Each page has a stable URL under
// /ui/; filters live in the query string, so a page can be shared as it is.

const app = document.getElementById("app");
const TOKEN_KEY = "xingqiao-token";
let whoami = { tokens: false, role: "admin", name: "" };

// ---------- the API ----------

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function authHeaders() {
  return token() ? { Authorization: `Bearer ${token()}` } : {};
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || body?.stat || `HTTP ${status}`);
    this.status = status;
    this.stat = body?.stat;
  }
}

/** GET (params in the query) or POST (params as JSON); answers the body or throws ApiError. */
async function api(path, params = {}, method = "GET") {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, value);
  }
  const init = { method, headers: { ...authHeaders() } };
  let url = path;
  if (method === "GET") {
    if ([...query].length) url += `?${query}`;
  } else {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(params);
  }
  const response = await fetch(url, init);
  const type = response.headers.get("content-type") || "";
  const body = type.startsWith("application/json") ? await response.json() : await response.text();
  if (response.status === 401) askForToken();
  if (!response.ok || (typeof body === "object" && body.stat && body.stat !== "OK")) {
    throw new ApiError(response.status, typeof body === "object" ? body : { message: body });
  }
  return body;
}

function askForToken(message) {
  const form = document.getElementById("token-form");
  form.hidden = false;
  if (message) document.getElementById("who").textContent = message;
}

document.getElementById("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
  document.getElementById("token").value = "";
  await loadWhoami();
  route();
});

async function loadWhoami() {
  try {
    whoami = (await api("/xingqiao/whoami")).data;
    document.getElementById("token-form").hidden = !whoami.tokens;
    document.getElementById("who").textContent = whoami.tokens ? `${whoami.name} (${whoami.role})` : "";
  } catch (err) {
    askForToken(err.status === 401 ? "a token is needed" : err.message);
  }
}

const can = (role) => ["read", "write", "admin"].indexOf(whoami.role) >= ["read", "write", "admin"].indexOf(role);

// ---------- helpers ----------

function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (value === true) element.setAttribute(key, "");
    else if (value !== false && value !== undefined && value !== null) element.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function show(...nodes) {
  app.replaceChildren(...nodes);
}

function failure(err) {
  return h("p", { class: "error" }, `${err.stat || "error"}: ${err.message}`);
}

function go(path) {
  history.pushState({}, "", path);
  route();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-link]");
  if (link && !event.ctrlKey && !event.metaKey) {
    event.preventDefault();
    go(link.getAttribute("href"));
  }
});
window.addEventListener("popstate", route);

let leaving = [];
/** Runs `stop` when the page changes (timers, event streams). */
function onLeave(stop) {
  leaving.push(stop);
}

// ---------- pages ----------

const STATUSES = ["waiting", "started", "finished", "failed"];

async function jobsPage() {
  const query = new URLSearchParams(location.search);
  const filters = ["job_namespace", "job_type", "job_status", "ret_stat", "operator", "job_name", "job_tag", "created_from", "created_to"];
  const params = Object.fromEntries(filters.map((key) => [key, query.get(key) || ""]));
  const page = Number(query.get("page") || 1);
  const orderBy = query.get("orderBy") || "job_id";
  const orderDir = query.get("orderDir") || "desc";
  const perPage = 20;

  const form = h("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const input of form.querySelectorAll("input, select")) if (input.value) next.set(input.name, input.value);
    go(`/ui/jobs?${next}`);
  } },
    ...filters.map((key) => h("label", {}, key.replace("job_", "").replace("_", " "),
      key === "job_status"
        ? h("select", { name: key }, h("option", { value: "" }, "any"), ...STATUSES.map((s) => h("option", { value: s, selected: s === params[key] }, s)))
        : h("input", { name: key, value: params[key], size: 12, type: key.startsWith("created") ? "date" : "text" }))),
    h("button", { type: "submit" }, "Filter"),
    h("label", {}, "auto-refresh", h("input", { type: "checkbox", id: "auto", checked: sessionStorage.getItem("auto") !== "0" })),
  );
  const counts = h("div", { class: "counts" });
  const table = h("div", {}, h("p", { class: "muted" }, "loading…"));
  show(h("h1", {}, "Jobs"), form, counts, table);

  const load = async () => {
    try {
      const list = await api("/xingqiao/list_jobs", { ...params, orderBy, orderDir, page, perPage, with_counts: 1 });
      counts.replaceChildren(...STATUSES.map((status) => h("span", { class: `status ${status}` }, `${status} ${list.data.counts[status]}`)));
      const rows = list.data.list;
      const sortBy = (column) => {
        const next = new URLSearchParams(location.search);
        next.set("orderBy", column);
        next.set("orderDir", orderBy === column && orderDir === "desc" ? "asc" : "desc");
        go(`/ui/jobs?${next}`);
      };
      const columns = [["job_id", "id"], ["job_name", "name"], ["job_type", "type"], ["job_namespace", "namespace"], ["job_status", "status"], ["ret_stat", "ret_stat"], ["operator", "operator"], ["c_time", "created (UTC)"], ["job_cost", "cost (s)"]];
      table.replaceChildren(
        h("table", { id: "jobs" },
          h("thead", {}, h("tr", {}, ...columns.map(([key, name]) => h("th", {}, h("button", { onclick: () => sortBy(key) }, name + (orderBy === key ? (orderDir === "desc" ? " ▾" : " ▴") : "")))))),
          h("tbody", {}, ...rows.map((job) => h("tr", { class: "row", "data-job-id": job.job_id, onclick: () => go(`/ui/jobs/${job.job_id}`) },
            h("td", {}, job.job_id), h("td", {}, job.job_name), h("td", {}, job.job_type), h("td", {}, job.job_namespace),
            h("td", {}, h("span", { class: `status ${job.job_status}` }, job.job_status)), h("td", {}, job.ret_stat),
            h("td", {}, job.operator), h("td", {}, job.c_time), h("td", {}, job.job_cost.toFixed(3)))))),
        h("div", { class: "pager" },
          h("button", { disabled: page <= 1, onclick: () => { const next = new URLSearchParams(location.search); next.set("page", page - 1); go(`/ui/jobs?${next}`); } }, "‹ previous"),
          h("span", {}, `page ${page} of ${Math.max(1, Math.ceil(list.data.total / perPage))} · ${list.data.total} jobs`),
          h("button", { disabled: page * perPage >= list.data.total, onclick: () => { const next = new URLSearchParams(location.search); next.set("page", page + 1); go(`/ui/jobs?${next}`); } }, "next ›")));
    } catch (err) {
      table.replaceChildren(failure(err));
    }
  };
  await load();
  const timer = setInterval(() => { if (document.getElementById("auto")?.checked) load(); }, 3000);
  document.getElementById("auto").addEventListener("change", (e) => sessionStorage.setItem("auto", e.target.checked ? "1" : "0"));
  onLeave(() => clearInterval(timer));
}

/** Listens to /xingqiao/events with the token (EventSource cannot send one). */
function listen(params, onEvent) {
  const controller = new AbortController();
  (async () => {
    try {
      const response = await fetch(`/xingqiao/events?${new URLSearchParams(params)}`, { headers: authHeaders(), signal: controller.signal });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split("\n").find((line) => line.startsWith("data: "));
          if (data) onEvent(JSON.parse(data.slice(6)));
        }
      }
    } catch (err) {
      if (err.name !== "AbortError") console.warn("event stream ended", err);
    }
  })();
  return () => controller.abort();
}

let graphviz = null;
async function layout(dot) {
  if (!graphviz) {
    const { Graphviz } = await import("/ui/assets/vendor/graphviz.js");
    graphviz = await Graphviz.load();
  }
  return graphviz.dot(dot);
}

/** Pan (drag) and zoom (wheel) an SVG inside its box. */
function panZoom(box, svg) {
  // Fits the whole graph at first (never larger than life).
  const width = svg.viewBox.baseVal.width || 1, height = svg.viewBox.baseVal.height || 1;
  let scale = Math.min(1, box.clientWidth / width, box.clientHeight / height), x = 0, y = 0, dragging = null;
  const apply = () => { svg.style.transform = `translate(${x}px, ${y}px) scale(${scale})`; };
  box.addEventListener("wheel", (event) => {
    event.preventDefault();
    const factor = event.deltaY < 0 ? 1.15 : 1 / 1.15;
    const rect = box.getBoundingClientRect();
    const px = event.clientX - rect.left, py = event.clientY - rect.top;
    x = px - (px - x) * factor; y = py - (py - y) * factor; scale *= factor;
    apply();
  }, { passive: false });
  box.addEventListener("mousedown", (event) => { dragging = [event.clientX - x, event.clientY - y]; });
  window.addEventListener("mouseup", () => { dragging = null; });
  box.addEventListener("mousemove", (event) => { if (dragging) { x = event.clientX - dragging[0]; y = event.clientY - dragging[1]; apply(); } });
  apply();
}

/** Above this many tasks the page shows counts by status first, the graph on request. */
const DRAW_AT_ONCE = 2000;

async function jobPage(jobId) {
  const fields = h("dl", { class: "fields" });
  const actions = h("div", { class: "actions" });
  const graph = h("div", { class: "graph", id: "graph" }, h("p", { class: "muted" }, "drawing…"));
  const taskBox = h("div", { id: "task" });
  const message = h("p", { class: "error", id: "message" });
  show(h("h1", {}, `Job ${jobId}`), message, h("div", { class: "detail" }, h("div", {}, actions, fields, taskBox), graph));
  let tasks = [];
  let drawn = false;

  const showTask = (label) => {
    const task = tasks.find((t) => t.task_label === label);
    if (!task) return;
    taskBox.replaceChildren(h("div", { class: "task", id: "task-detail" },
      h("h2", {}, `${task.task_label} `, h("span", { class: `status ${task.task_status}` }, task.task_status)),
      h("p", {}, task.task_cmd, " · ", `${task.task_cost.toFixed(3)} s`, " · ", task.ret_stat || "no ret_stat"),
      h("h3", {}, "params"), h("pre", {}, JSON.stringify(task.task_params, null, 2)),
      h("h3", {}, "ret_data"), h("pre", {}, JSON.stringify(task.ret_data, null, 2)),
      h("h3", {}, "attempts"), h("table", {}, h("tbody", {}, ...(task.attempts || []).map((a) =>
        h("tr", {}, h("td", {}, `#${a.attempt_no}`), h("td", {}, a.outcome || "running"), h("td", {}, a.ret_stat), h("td", {}, a.s_time), h("td", {}, a.e_time || ""), h("td", {}, a.instance)))))));
  };

  const action = (name, route, confirmText) => h("button", { id: `action-${name}`, onclick: async () => {
    if (!confirm(confirmText)) return;
    try {
      await api(`/xingqiao/${route}`, { job_id: jobId }, "POST");
      message.textContent = "";
      if (route === "delete_job") go("/ui/jobs"); else refresh();
    } catch (err) { message.textContent = `${err.stat}: ${err.message}`; }
  } }, name);

  const drawGraph = async () => {
    const dot = await fetch(`/xingqiao/get_graph?job_id=${jobId}&format=dot`, { headers: authHeaders() }).then((r) => r.text());
    const svgText = await layout(dot);
    const svg = new DOMParser().parseFromString(svgText, "image/svg+xml").documentElement;
    graph.replaceChildren(svg);
    panZoom(graph, svg);
    for (const node of svg.querySelectorAll("g.node")) {
      node.addEventListener("click", () => showTask(node.querySelector("title").textContent));
    }
    drawn = true;
  };

  const refresh = async () => {
    try {
      const [detail, list] = await Promise.all([
        api("/xingqiao/get_job_detail", { job_id: jobId }),
        api("/xingqiao/list_tasks", { job_id: jobId, with_attempts: 1 }),
      ]);
      const job = detail.data;
      tasks = list.data.list;
      fields.replaceChildren(...["job_name", "job_type", "job_namespace", "job_status", "ret_stat", "operator", "job_client", "exe_id", "c_time", "s_time", "e_time", "job_cost", "job_tags", "job_lock", "plugin_version", "job_extra"]
        .flatMap((key) => [h("dt", {}, key), h("dd", { id: `field-${key}` }, typeof job[key] === "object" ? JSON.stringify(job[key]) : String(job[key]))]),
        h("dt", {}, "ret_data"), h("dd", {}, h("pre", {}, JSON.stringify(job.ret_data, null, 2))));
      actions.replaceChildren(...(can("write") ? [
        job.job_status === "failed" ? action("retry", "retry_job", `Retry job ${jobId} from its failed tasks?`) : null,
        ["waiting", "started"].includes(job.job_status) ? action("cancel", "cancel_job", `Cancel job ${jobId}?`) : null,
        action("delete", "delete_job", `Delete job ${jobId}?`),
      ].filter(Boolean) : []));
      if (tasks.length > DRAW_AT_ONCE && !drawn) {
        const byStatus = {};
        for (const t of tasks) (byStatus[t.task_status] ||= []).push(t);
        graph.replaceChildren(h("div", { style: "padding:1rem" },
          h("p", {}, `${tasks.length} tasks: `, ...Object.entries(byStatus).map(([s, list]) => h("span", { class: `status ${s}` }, `${s} ${list.length} `))),
          h("button", { id: "draw", onclick: () => { graph.replaceChildren(h("p", { class: "muted" }, "drawing…")); drawGraph(); } }, "Draw the graph"),
          h("ul", {}, ...tasks.filter((t) => t.task_status !== "finished").slice(0, 200).map((t) => h("li", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); showTask(t.task_label); } }, t.task_label), " ", t.task_status)))));
      } else {
        await drawGraph();
      }
    } catch (err) {
      message.textContent = `${err.stat || "error"}: ${err.message}`;
    }
  };

  await refresh();
  // Live: any change of this job redraws, at most twice a second.
  let pending = null;
  const stop = listen({ job_id: jobId }, () => {
    if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 500);
  });
  onLeave(() => { stop(); clearTimeout(pending); });
}

async function newPage() {
  const message = h("p", { class: "error", id: "message" });
  const formBox = h("div");
  show(h("h1", {}, "New job"), message, formBox);
  let types;
  try {
    types = (await api("/xingqiao/list_job_types")).data;
  } catch (err) {
    return formBox.replaceChildren(failure(err));
  }
  const select = h("select", { name: "job_type", id: "job_type" }, ...types.map((t) => h("option", { value: t.job_type }, `${t.job_type} ${t.version}`)));
  const extraBox = h("div", { id: "extra" });
  const renderExtra = () => {
    const type = types.find((t) => t.job_type === select.value);
    const schema = type?.job_extra_schema;
    const properties = schema?.properties;
    if (!properties) {
      extraBox.replaceChildren(h("label", {}, "job_extra (JSON)", h("textarea", { name: "job_extra_json" }, "{}")));
      return;
    }
    const required = new Set(schema.required || []);
    extraBox.replaceChildren(h("p", { class: "muted" }, type.description || ""), ...Object.entries(properties).map(([key, prop]) =>
      h("label", {}, `${key}${required.has(key) ? " *" : ""}${prop.description ? ` — ${prop.description}` : ""}`,
        prop.type === "boolean" ? h("input", { type: "checkbox", name: `extra.${key}`, "data-type": "boolean" })
          : h("input", { name: `extra.${key}`, "data-type": prop.type || "string", required: required.has(key), type: ["integer", "number"].includes(prop.type) ? "number" : "text" }))));
  };
  select.addEventListener("change", renderExtra);
  const form = h("form", { class: "job-form", id: "new-job", onsubmit: async (event) => {
    event.preventDefault();
    message.textContent = "";
    let job_extra = {};
    try {
      const raw = form.querySelector("[name=job_extra_json]");
      if (raw) job_extra = JSON.parse(raw.value || "{}");
      for (const input of form.querySelectorAll("[name^='extra.']")) {
        const key = input.name.slice(6), type = input.dataset.type;
        if (type === "boolean") job_extra[key] = input.checked;
        else if (input.value !== "") job_extra[key] = ["integer", "number"].includes(type) ? Number(input.value) : input.value;
      }
    } catch (err) {
      message.textContent = `job_extra is not JSON: ${err.message}`;
      return;
    }
    const body = { job_type: select.value, job_namespace: form.querySelector("[name=job_namespace]").value, job_name: form.querySelector("[name=job_name]").value || undefined, job_extra };
    try {
      const created = await api("/xingqiao/create_job", body, "POST");
      go(`/ui/jobs/${created.job_id}`);
    } catch (err) {
      message.textContent = `${err.stat}: ${err.message}`;
    }
  } },
    h("label", {}, "job type", select),
    h("label", {}, "namespace *", h("input", { name: "job_namespace", value: "console", required: true })),
    h("label", {}, "job name (optional, unique)", h("input", { name: "job_name" })),
    extraBox,
    h("button", { type: "submit", disabled: !can("write") }, "Create"));
  formBox.replaceChildren(form);
  renderExtra();
}

let echartsLoaded = null;
function loadEcharts() {
  echartsLoaded ||= new Promise((resolve, reject) => {
    const script = h("script", { src: "/ui/assets/vendor/echarts.min.js" });
    script.onload = () => resolve(window.echarts);
    script.onerror = reject;
    document.head.append(script);
  });
  return echartsLoaded;
}

async function statsPage() {
  const query = new URLSearchParams(location.search);
  const params = { job_type: query.get("job_type") || "hello", job_tag: query.get("job_tag") || "", days: query.get("days") || "7", jobtag_name: query.get("jobtag_name") || "region", jobtag_values: query.get("jobtag_values") || "bj,nj,gz" };
  const form = h("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const input of form.querySelectorAll("input")) if (input.value) next.set(input.name, input.value);
    go(`/ui/stats?${next}`);
  } }, ...Object.entries(params).map(([key, value]) => h("label", {}, key, h("input", { name: key, value, size: 12 }))), h("button", { type: "submit" }, "Draw"));
  const charts = [["success_rate", "statistics_success_rate"], ["jobtag_ratio", "statistics_jobtag_ratio"], ["retstat_ratio", "statistics_retstat_ratio"]];
  const boxes = charts.map(([id]) => h("div", { class: "chart", id: `chart-${id}` }));
  show(h("h1", {}, "Statistics"), form, h("div", { class: "charts" }, ...boxes));
  const echarts = await loadEcharts();
  await Promise.all(charts.map(async ([id, route], i) => {
    try {
      const option = (await api(`/xingqiao/${route}`, params)).data;
      const chart = echarts.init(boxes[i]);
      chart.on("finished", () => boxes[i].setAttribute("data-drawn", "1"));
      chart.setOption(option);
      onLeave(() => chart.dispose());
    } catch (err) {
      boxes[i].replaceChildren(failure(err));
    }
  }));
}

async function pluginsPage() {
  const message = h("p", { class: "error", id: "message" });
  const list = h("div");
  const upload = h("form", { class: "filters", id: "upload", onsubmit: async (event) => {
    event.preventDefault();
    const file = upload.querySelector("input[type=file]").files[0];
    if (!file) return;
    const response = await fetch("/admin/plugins", { method: "POST", headers: { ...authHeaders(), "Content-Type": "application/wasm" }, body: file });
    const body = await response.json();
    message.textContent = body.stat === "OK" ? "" : `${body.stat}: ${body.message}`;
    load();
  } }, h("label", {}, "upload a component (.wasm)", h("input", { type: "file", accept: ".wasm" })), h("button", { type: "submit" }, "Upload"));
  show(h("h1", {}, "Plugins"), message, can("admin") ? upload : h("p", { class: "muted" }, "Uploading needs an admin token."), list);

  const act = async (path, method, body) => {
    const response = await fetch(path, { method, headers: { ...authHeaders(), "Content-Type": "application/json" }, body: body ? JSON.stringify(body) : undefined });
    const answer = await response.json();
    message.textContent = answer.stat === "OK" ? "" : `${answer.stat}: ${answer.message}`;
    load();
  };
  const load = async () => {
    try {
      const plugins = (await api("/admin/plugins")).data;
      const rows = [];
      for (const plugin of plugins) {
        rows.push(h("tr", { "data-job-type": plugin.job_type }, h("td", {}, plugin.job_type), h("td", {}, plugin.source), h("td", {}, plugin.status), h("td", {}, plugin.version || ""), h("td", {}, plugin.versions),
          h("td", {}, plugin.source === "uploaded" && plugin.status === "active" ? h("button", { onclick: () => confirm(`Disable ${plugin.job_type}?`) && act(`/admin/plugins/${plugin.job_type}`, "DELETE") }, "disable") : "")));
        if (plugin.source === "uploaded") {
          const detail = (await api(`/admin/plugins/${plugin.job_type}`)).data;
          for (const version of detail.versions) {
            rows.push(h("tr", { class: "muted", "data-version": `${plugin.job_type}@${version.version}` }, h("td", {}, ""), h("td", {}, version.sha256.slice(0, 12)), h("td", {}, version.active ? "active" : ""), h("td", {}, version.version), h("td", {}, version.uploaded_at),
              h("td", {}, version.active ? "" : h("button", { class: "activate", onclick: () => act(`/admin/plugins/${plugin.job_type}/activate`, "POST", { version: version.version }) }, "activate"))));
          }
        }
      }
      list.replaceChildren(h("table", { id: "plugins" }, h("thead", {}, h("tr", {}, ...["job type", "source", "status", "version", "versions", ""].map((c) => h("th", {}, c)))), h("tbody", {}, ...rows)));
    } catch (err) {
      list.replaceChildren(failure(err));
    }
  };
  await load();
}

// ---------- the router ----------

async function route() {
  for (const stop of leaving) stop();
  leaving = [];
  const path = location.pathname.replace(/\/+$/, "");
  for (const link of document.querySelectorAll("header nav a")) link.classList.toggle("active", path.startsWith(link.getAttribute("href")));
  const job = path.match(/^\/ui\/jobs\/(\d+)$/);
  try {
    if (job) await jobPage(Number(job[1]));
    else if (path === "/ui/new") await newPage();
    else if (path === "/ui/stats") await statsPage();
    else if (path === "/ui/plugins") await pluginsPage();
    else await jobsPage();
  } catch (err) {
    show(failure(err));
  }
  document.body.setAttribute("data-page-ready", path);
}

await loadWhoami();
await route();
