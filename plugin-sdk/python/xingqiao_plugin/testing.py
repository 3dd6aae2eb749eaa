"""Run a plugin natively in unit tests, as the server would call it, with the
server's checks (``LIMITS``) applied to what it returns::

    from xingqiao_plugin import testing
    tasks = testing.run_workflow(Hello, {"str_info": "hi"})
    assert tasks[2].is_save
"""

from __future__ import annotations

from . import Check, Dag, Plugin, Refused, Task, check_result, schema_of  # noqa: F401


def params_check(plugin_cls: type, extra: dict) -> Check:
    """``params_check`` with the server's checks of its result."""
    plugin = plugin_cls()
    return check_result(plugin.params_check(plugin_cls.job(extra)))


def run_workflow(plugin_cls: type, extra: dict) -> list[Task]:
    """``params_check`` then ``workflow``, as create_job does; the tasks added.
    Raises what the server would refuse: a bad check result, a refused task,
    an empty DAG."""
    params_check(plugin_cls, extra)
    dag = Dag()
    plugin_cls().workflow(plugin_cls.job(extra), dag)
    if not dag.tasks:
        raise Refused("workflow() added no task")
    return dag.tasks
