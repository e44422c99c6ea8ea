"""Run a provider operator (``KubernetesPodOperator``, ``DockerOperator``) from inside another operator's task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context


def execute_delegated(operator: BaseOperator, context: Context) -> Any:
    """``operator.execute(context)`` for an operator built by ``build_pod_operator``/``build_docker_operator``
    inside another operator's ``execute``.

    Airflow wraps every ``execute`` in a guard that logs "cannot be called outside of the Task Runner" when one
    operator's ``execute`` runs inside another's (it is meant for users who call operators by mistake); a step
    operator delegating to the provider's operator on purpose calls the unwrapped method instead.

    In deferrable mode the pod operator raises ``TaskDeferred`` with ``method_name="trigger_reentry"``: the
    calling operator must then define ``trigger_reentry(self, context, event)`` and forward it to a pod
    operator built the same way (``pod_operator.trigger_reentry(context, event)``).
    """
    execute = type(operator).execute
    unguarded = getattr(execute, "__wrapped__", execute)
    return unguarded(operator, context)
