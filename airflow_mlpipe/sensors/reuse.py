"""``ReuseSensor``: wait until a reuse key's outputs exist, deferring to the triggerer while another run computes
them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from airflow.configuration import conf
from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

from airflow_mlpipe.core.checks import check_bool, check_positive_number, check_text
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.reuse.lease import DEFAULT_CLOCK_SKEW, LeaseWatch

OnMissing = Literal["fail", "succeed", "wait"]
ON_MISSING: tuple[str, ...] = ("fail", "succeed", "wait")


class ReuseSensor(BaseSensorOperator):
    """Wait for the reuse index entry of ``key`` and return it (``ReuseEntry.to_dict()``) as the task's XCom.

    While a run holds the key's lease (it is computing the step), the sensor waits: deferred to ``ReuseTrigger``
    when deferrable, so no worker slot is held. It pokes once first, so a ready key finishes at once.

    :param key: the reuse key (templated: ``"{{ ti.xcom_pull('decide', key='reuse_key') }}"``).
    :param datastore: the datastore that keeps the index and leases (default: the default datastore).
    :param on_missing: what to do when there is no entry and no run is computing the key (never leased, or its
        holder released the lease without an entry because its step failed, or the holder died):

        - ``"fail"`` (default): fail without retries: waiting would wait for nothing;
        - ``"succeed"``: succeed with ``None`` as XCom, so downstream tasks can compute the key themselves;
        - ``"wait"``: keep waiting for a producer to start and finish, until ``timeout``.

        ``soft_fail=True`` turns the failure into a skip, as for every sensor.
    :param lease_ttl: judge a holder dead when its lease record has not changed for this long (default: the ttl
        the holder wrote).
    :param clock_skew: the margin allowed between the holder's clock and this machine's.
    :param deferrable: wait in the triggerer rather than in a worker slot (``mode`` applies then); defaults to
        Airflow's ``[operators] default_deferrable``, as Airflow's own sensors do.
    """

    template_fields: Sequence[str] = ("key",)
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        key: str,
        datastore: str | None = None,
        on_missing: OnMissing = "fail",
        lease_ttl: float | None = None,
        clock_skew: float = DEFAULT_CLOCK_SKEW,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", 10)
        super().__init__(**kwargs)
        if on_missing not in ON_MISSING:
            raise ConfigError(
                f"ReuseSensor {self.task_id!r}: on_missing {on_missing!r} is not one of {', '.join(ON_MISSING)}"
            )
        self.key = check_text(
            "ReuseSensor", "key", key, example="{{ ti.xcom_pull(task_ids='train', key='reuse_key') }}"
        )
        self.datastore = check_text("ReuseSensor", "datastore", datastore, example="mlpipe_default", optional=True)
        self.on_missing = on_missing
        self.lease_ttl = None if lease_ttl is None else check_positive_number("ReuseSensor", "lease_ttl", lease_ttl)
        self.clock_skew = check_positive_number("ReuseSensor", "clock_skew", clock_skew, allow_zero=True)
        self.deferrable = check_bool("ReuseSensor", "deferrable", deferrable)

    # -- one look -------------------------------------------------------------------------------------------
    def poke(self, context: Context) -> PokeReturnValue | bool:
        from airflow_mlpipe.reuse.decide import find_reusable
        from airflow_mlpipe.reuse.wait import look

        index, leases = self._index(), self._leases()
        state = look(self.key, index, leases, self._watch())
        self.log.info("%s", state.describe())
        if state.status == "ready":
            # as a step's hit does: the outputs must still exist and match (a stale entry is dropped)
            lookup = find_reusable(index, self.key)
            if lookup.entry is not None:
                return PokeReturnValue(is_done=True, xcom_value=lookup.entry.to_dict())
            self.log.info("reuse key %s: its entry cannot be used: %s", self.key, lookup.problem or lookup.reason)
            state = look(self.key, index, leases, self._watch())
            if state.status == "ready":
                return self._missing(f"reuse key {self.key}: its entry cannot be used ({lookup.problem})")
        if state.status == "free":
            return self._missing(state.describe())
        return False

    def _missing(self, why: str) -> PokeReturnValue | bool:
        if self.on_missing == "wait":
            return False
        if self.on_missing == "succeed":
            self.log.info("on_missing='succeed': finishing without an entry (XCom None)")
            return PokeReturnValue(is_done=True, xcom_value=None)
        raise AirflowFailException(
            f"{why}; nothing will produce it. Set on_missing='wait' to wait for a run that has not started yet, "
            "or on_missing='succeed' to go on without it"
        )

    def _watch(self) -> LeaseWatch:
        # In poke mode the same instance pokes again and again: remember what it saw to judge a holder stale.
        watch = getattr(self, "_lease_watch", None)
        if watch is None:
            watch = self._lease_watch = LeaseWatch(self.lease_ttl)
        return watch

    def _store(self) -> Any:
        from airflow_mlpipe.hooks.datastore import DatastoreHook

        return DatastoreHook.get_datastore(self.datastore)

    def _index(self) -> Any:
        from airflow_mlpipe.reuse.index import ReuseIndex

        return ReuseIndex(self._store())

    def _leases(self) -> Any:
        from airflow_mlpipe.reuse.lease import Leases

        return Leases(self._store(), clock_skew=self.clock_skew)

    # -- deferrable -----------------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        result = self.poke(context)
        if isinstance(result, PokeReturnValue) and result.is_done:
            return result.xcom_value
        from airflow_mlpipe.triggers.reuse import ReuseTrigger

        self.defer(
            trigger=ReuseTrigger(
                key=self.key,
                datastore=self.datastore,
                poll_interval=self.poke_interval,
                lease_ttl=self.lease_ttl,
                clock_skew=self.clock_skew,
                timeout=self.timeout,
                wait_for_producer=self.on_missing == "wait",
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume from ``ReuseTrigger``: only ``event`` and ``context`` are at hand (the operator is re-created)."""
        event = dict(event or {})
        status = event.get("status")
        if status == "ready":
            # look again, verifying the outputs: done, or waiting again if the entry was unusable and a run is
            # computing the key anew
            return self.execute(context)
        if status == "lease_expired":
            result = self._missing(
                f"reuse key {self.key}: no entry and no live holder ({event.get('reason', 'expired')})"
            )
        elif status == "timeout":
            raise AirflowSensorTimeout(
                f"reuse key {self.key}: still not ready after {event.get('waited')} s (timeout {self.timeout:g} s)"
            )
        else:
            raise AirflowException(f"reuse key {self.key}: waiting failed: {event.get('message') or event}")
        if isinstance(result, PokeReturnValue):
            return result.xcom_value
        return self.execute(context)  # on_missing="wait" does not get "lease_expired"; if it did, wait again
