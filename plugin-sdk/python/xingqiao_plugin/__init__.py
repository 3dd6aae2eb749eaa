"""Write XingQiao job types (workflow plugins) in Python.

The Python face of the WIT world ``xingqiao:workflow/plugin@0.1.0``, built
into a wasm component by componentize-py. The same classes run natively, so a
plugin's unit tests need no wasm at all (see ``xingqiao_plugin.testing``)::

    import xingqiao_plugin as xq

    class Hello(xq.Plugin):
        job_type = "hello"

        def workflow(self, job, dag):
            dag.add_task(xq.Task("task1", "/demo_api/ping"))

    WitWorld = xq.export(Hello)   # componentize-py looks for `WitWorld`
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Optional

__all__ = [
    "AddTaskError", "Check", "Dag", "Job", "JobEvent", "LIMITS", "Plugin", "Refused", "Task",
    "export", "log", "schema_of",
]


def _read_limits() -> dict:
    # Read when the module is imported, which componentize-py does at build
    # time: the numbers are baked into the component's memory snapshot.
    with open(os.path.join(os.path.dirname(__file__), "limits.json"), encoding="utf-8") as f:
        return json.load(f)


#: What the server accepts (``plugin-sdk/limits.json``, shared with the host).
LIMITS: dict = _read_limits()

# The component's bindings exist only inside componentize-py. Imported here,
# at build time, they are part of the memory snapshot: imported lazily, every
# call (each in a fresh instance) would import them again, dataclasses and all.
try:
    from componentize_py_types import Err as _Err
    from wit_world.imports import host as _host
    from wit_world.imports import types as _types
except ImportError:  # natively: tests use the recording Dag, never these
    _Err = _host = _types = None

_NAME = re.compile(r"[A-Za-z0-9_-]+")


def _valid_name(name: str) -> bool:
    return 0 < len(name.encode()) <= LIMITS["label_max_bytes"] and _NAME.fullmatch(name) is not None


class Refused(Exception):
    """Raise it (or any exception) in ``params_check`` or ``workflow``: the
    message reaches the job's creator."""


class AddTaskError(Exception):
    """The server refused a task; ``kind`` is the WIT variant's name
    (``duplicate-label``, ``unknown-dependency``, ``bad-label``, ``bad-cmd``,
    ``bad-json``, ``too-long``)."""

    def __init__(self, kind: str, detail: str):
        self.kind = kind
        self.detail = detail
        super().__init__(_refusal_message(kind, detail))


def _refusal_message(kind: str, detail: str) -> str:
    return {
        "duplicate-label": f"duplicate task label {detail!r}",
        "unknown-dependency": f"dependency {detail!r} names no task added before it",
        "bad-label": f"bad task label {detail!r}: use 1 to {LIMITS['label_max_bytes']} of A-Z a-z 0-9 _ -",
        "bad-cmd": f"bad task cmd: {detail}",
        "bad-json": f"bad task JSON: {detail}",
        "too-long": f"{detail} is longer than {LIMITS['names_max_bytes']} bytes",
    }.get(kind, f"{kind}: {detail}")


@dataclass
class Job:
    """The job being created, as create_job received it."""

    extra: dict = field(default_factory=dict)
    namespace: str = ""
    name: str = ""
    #: Who created it (the token's name, or ``x_username``); empty when unknown.
    operator: str = ""
    #: ``extra`` as the plugin's ``job_extra`` dataclass, when it declares one.
    typed: Any = None


@dataclass
class Check:
    """What ``params_check`` decides: timeout (seconds), locks and tags."""

    job_timeout: Optional[int] = None
    #: Jobs sharing a lock name never run at the same time. A list: a comma
    #: inside a name is refused, as by the server.
    job_locks: list = field(default_factory=list)
    #: ``key=value`` tags for filters and statistics.
    job_tags: list = field(default_factory=list)

    def tag(self, key: str, value: str) -> "Check":
        self.job_tags.append(f"{key}={value}")
        return self


@dataclass
class Task:
    """One task of the seed's ``add_task(label, cmd, ...)``."""

    label: str
    #: ``/path`` (sent to the server's handler base URL) or a full URL.
    cmd: str
    dependencies: list = field(default_factory=list)
    requires: list = field(default_factory=list)
    provides: list = field(default_factory=list)
    params: Optional[dict] = None
    extra: Optional[dict] = None
    retry_max: int = 0
    timeout_secs: Optional[int] = None
    is_save: bool = False


@dataclass
class JobEvent:
    """A job's state change (the seed's ``job_obj``); ``job_status`` is
    ``started``, ``finished`` or ``failed``."""

    job_id: int
    job_status: str
    job_type: str
    job_name: str = ""
    job_namespace: str = ""
    job_reqid: str = ""
    job_client: str = ""
    job_tags: str = ""
    ret_stat: str = ""
    ret_data: Any = None
    job_cost: float = 0.0
    job_extra: dict = field(default_factory=dict)
    job_timeout: int = 0
    job_lock: str = ""
    exe_id: int = 0
    operator: str = ""
    is_valid: bool = True
    c_time: str = ""
    s_time: str = ""
    e_time: str = ""


class Dag:
    """The DAG ``workflow`` describes. In a component each task goes straight
    to the server; natively the server's checks run here and tasks are kept."""

    def __init__(self, add_to_server=None):
        self._add_to_server = add_to_server
        self.tasks: list[Task] = []
        self._labels: set[str] = set()

    def add_task(self, task: Task) -> None:
        """Raises ``AddTaskError`` when refused; the workflow fails anyway."""
        if self._add_to_server is not None:
            self._add_to_server(task)
            return
        if len(self.tasks) >= LIMITS["max_tasks"]:
            raise Refused(f"more than {LIMITS['max_tasks']} tasks: the server stops such a plugin")
        _check_task(task, self._labels)
        self._labels.add(task.label)
        self.tasks.append(task)


def _check_task(task: Task, labels: set) -> None:
    """The server's checks of one task (``host/src/runtime/dag.rs``)."""
    if not _valid_name(task.label):
        raise AddTaskError("bad-label", task.label)
    if task.label in labels:
        raise AddTaskError("duplicate-label", task.label)
    for dep in task.dependencies:
        if dep not in labels:
            raise AddTaskError("unknown-dependency", dep)
    if not task.cmd.strip() or len(task.cmd.encode()) > LIMITS["cmd_max_bytes"]:
        raise AddTaskError("bad-cmd", f"{task.cmd!r} must be 1 to {LIMITS['cmd_max_bytes']} characters")
    for what in ("requires", "provides"):
        names = getattr(task, what)
        if any(not name for name in names):
            raise AddTaskError("bad-label", "empty parameter name")
        if len(",".join(names).encode()) > LIMITS["names_max_bytes"]:
            raise AddTaskError("too-long", what)
    for what in ("params", "extra"):
        value = getattr(task, what)
        if value is not None and not isinstance(value, dict):
            raise AddTaskError("bad-json", f"{what} must be a JSON object")


def check_result(check: Check) -> Check:
    """The server's checks of what ``params_check`` returned
    (``validate_check`` in ``host/src/runtime/plugin.rs``)."""
    if not isinstance(check, Check):
        raise Refused(f"params_check must return a Check, not {type(check).__name__}")
    if check.job_timeout is not None and check.job_timeout < 1:
        raise Refused("job-timeout must be at least 1 second")
    for lock in check.job_locks:
        lock = lock.strip()
        if not lock or "," in lock or len(lock.encode()) > LIMITS["lock_max_bytes"]:
            raise Refused(f"lock {lock!r} must be 1 to {LIMITS['lock_max_bytes']} bytes without commas")
    for tag in check.job_tags:
        key, eq, _ = tag.partition("=")
        if not eq or not key.strip() or "," in tag or len(tag.encode()) > LIMITS["tag_max_bytes"]:
            raise Refused(
                f"tag {tag!r} must be key=value, without commas, at most {LIMITS['tag_max_bytes']} bytes"
            )
    if len(",".join(lock.strip() for lock in check.job_locks).encode()) > LIMITS["locks_max_bytes"]:
        raise Refused(f"job-locks joined by commas exceed {LIMITS['locks_max_bytes']} bytes")
    if len(",".join(check.job_tags).encode()) > LIMITS["tags_max_bytes"]:
        raise Refused(f"job-tags joined by commas exceed {LIMITS['tags_max_bytes']} bytes")
    return check


# ---- typed job_extra: a dataclass becomes a JSON Schema -----------------------

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _schema_of_type(hint: Any) -> dict:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if origin is typing.Union and type(None) in args:
        rest = [arg for arg in args if arg is not type(None)]
        return _schema_of_type(rest[0]) if len(rest) == 1 else {}
    if origin is list or hint is list:
        return {"type": "array", "items": _schema_of_type(args[0])} if args else {"type": "array"}
    if origin is dict or hint is dict:
        return {"type": "object"}
    if dataclasses.is_dataclass(hint):
        return schema_of(hint)
    return {}


def schema_of(cls: type) -> dict:
    """The JSON Schema of a dataclass: fields without a default are required,
    ``Optional[...]`` and defaulted ones are not; ``field(metadata={...})``
    adds keywords such as ``description`` or ``minimum``."""
    hints = typing.get_type_hints(cls)
    properties, required = {}, []
    for f in dataclasses.fields(cls):
        prop = _schema_of_type(hints[f.name])
        prop.update(f.metadata)
        properties[f.name] = prop
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        optional = typing.get_origin(hints[f.name]) is typing.Union and type(None) in typing.get_args(hints[f.name])
        if no_default and not optional:
            required.append(f.name)
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "("):
        schema["description"] = cls.__doc__.strip()
    return schema


def _typed(cls: Optional[type], extra: dict) -> Any:
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in extra.items() if key in names})


# ---- the plugin -----------------------------------------------------------------


class Plugin:
    """A job type. Set ``job_type`` and write ``workflow``; the rest is optional.

    A fresh sandbox runs every call, so a plugin keeps no state between calls.
    """

    #: The name users pass to create_job: 1 to 64 of ``A-Z a-z 0-9 _ -``.
    job_type: str = ""
    version: str = "0.0.0"
    description: str = ""
    #: A dataclass: its JSON Schema is declared (the server enforces it before
    #: ``params_check``) and ``job.typed`` is an instance of it.
    job_extra: Optional[type] = None
    #: Or the JSON Schema itself, as a dict.
    job_extra_schema: Optional[dict] = None

    def params_check(self, job: Job) -> Check:
        """Refuse bad input (raise) before the job exists; choose timeout,
        locks and tags. The default accepts everything."""
        return Check()

    def workflow(self, job: Job, dag: Dag) -> None:
        raise NotImplementedError("a plugin must describe its DAG in workflow()")

    def job_notifier(self, event: JobEvent) -> None:
        """Told when the job starts, finishes or fails; cannot change it."""

    @classmethod
    def extra_schema(cls) -> Optional[dict]:
        if cls.job_extra is not None:
            return schema_of(cls.job_extra)
        return cls.job_extra_schema

    @classmethod
    def job(cls, extra: dict, namespace: str = "", name: str = "", operator: str = "") -> Job:
        """A ``Job`` as this plugin receives it (``typed`` filled in)."""
        return Job(extra=extra, namespace=namespace, name=name, operator=operator,
                   typed=_typed(cls.job_extra, extra))


def _message(err: BaseException) -> str:
    """Every exception becomes a readable message, never an empty one."""
    text = str(err)
    return text if text else type(err).__name__


def log(level: str, message: str) -> None:
    """A line in the server's log (``trace``, ``debug``, ``info``, ``warn``,
    ``error``), tagged with the plugin and job. Natively it is printed."""
    if _host is None:
        print(f"[{level}] {message}")
        return
    _host.log(getattr(_host.LogLevel, level.upper()), message)


def export(plugin_cls: type) -> type:
    """The ``WitWorld`` class componentize-py needs, routing the WIT exports to
    ``plugin_cls``. Natively it is returned too, and never called."""
    plugin = plugin_cls()

    def job_from_wire(wire) -> Job:
        try:
            extra = json.loads(wire.job_extra)
        except ValueError:
            extra = {}
        return plugin_cls.job(extra if isinstance(extra, dict) else {}, wire.namespace, wire.name, wire.operator)

    class WitWorld:
        def metadata(self):
            schema = plugin_cls.extra_schema()
            return _types.Metadata(
                job_type=plugin_cls.job_type,
                version=plugin_cls.version,
                description=plugin_cls.description,
                job_extra_schema=None if schema is None else json.dumps(schema),
            )

        def params_check(self, job):
            try:
                check = plugin.params_check(job_from_wire(job))
                if not isinstance(check, Check):
                    raise Refused(f"params_check must return a Check, not {type(check).__name__}")
            except Exception as err:  # noqa: BLE001 - every error becomes the refusal's message
                raise _Err(_message(err)) from None
            return _types.CheckResult(
                job_timeout=check.job_timeout, job_locks=list(check.job_locks), job_tags=list(check.job_tags)
            )

        def workflow(self, job):
            try:
                plugin.workflow(job_from_wire(job), Dag(add_to_server=_add_to_server))
            except Exception as err:  # noqa: BLE001
                raise _Err(_message(err)) from None

        def job_notifier(self, event):
            def parse(text):
                try:
                    return json.loads(text) if text is not None else None
                except ValueError:
                    return None

            extra = parse(event.job_extra)
            try:
                plugin.job_notifier(JobEvent(
                    job_id=event.job_id, job_status=event.job_status, job_type=event.job_type,
                    job_name=event.job_name, job_namespace=event.job_namespace, job_reqid=event.job_reqid,
                    job_client=event.job_client, job_tags=event.job_tags, ret_stat=event.ret_stat,
                    ret_data=parse(event.ret_data), job_cost=event.job_cost,
                    job_extra=extra if isinstance(extra, dict) else {}, job_timeout=event.job_timeout,
                    job_lock=event.job_lock, exe_id=event.exe_id, operator=event.operator,
                    is_valid=event.is_valid, c_time=event.c_time, s_time=event.s_time, e_time=event.e_time,
                ))
            except Exception as err:  # noqa: BLE001 - a notifier cannot change the job
                log("warn", f"job_notifier raised: {_message(err)}")

    # For `xingqiao plugin build`, which declares in the component whether
    # job_notifier is implemented (the server skips calls that do nothing).
    WitWorld.plugin_class = plugin_cls
    return WitWorld


def implements_notifier(plugin_cls: type) -> bool:
    """Whether the plugin overrides ``job_notifier``."""
    return plugin_cls.job_notifier is not Plugin.job_notifier


def _add_to_server(task: Task) -> None:
    options = _host.TaskOptions(
        dependencies=list(task.dependencies),
        requires=list(task.requires),
        provides=list(task.provides),
        params=None if task.params is None else json.dumps(task.params),
        extra=None if task.extra is None else json.dumps(task.extra),
        retry_max=task.retry_max,
        timeout_secs=task.timeout_secs,
        is_save=task.is_save,
    )
    try:
        _host.add_task(task.label, task.cmd, options)
    except _Err as err:
        refusal = err.value
        case = type(refusal).__name__.removeprefix("AddTaskError_")  # e.g. DuplicateLabel
        kind = re.sub(r"(?<!^)(?=[A-Z])", "-", case).lower()
        raise AddTaskError(kind, str(getattr(refusal, "value", refusal))) from None
