"""``DatastoreHook``: the Airflow face of a datastore connection (conn_type ``mlpipe_datastore``).

The operators and sensors reach their datastores through it: the connection in the environment
(``AIRFLOW_CONN_<NAME>``) or Airflow's lookup (secrets backends, metadata DB), the embedded local default when
``mlpipe_default`` is absent, kept for a bounded time (``storage.resolve``) so rotated credentials are picked up,
and its credentials masked in task logs.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from airflow_mlpipe.core.secrets import mask_in_task_log
from airflow_mlpipe.provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_mlpipe.storage.config import CONN_TYPE, DEFAULT_DATASTORE, config_from_fields
from airflow_mlpipe.storage.datastore import Datastore


class DatastoreHook(BaseHook):
    """Opens the datastore (an fsspec filesystem plus root) that an ``mlpipe_datastore`` connection defines.

    :param datastore_conn_id: the connection id, which is also the datastore's name.
    """

    conn_name_attr = "datastore_conn_id"
    default_conn_name = DEFAULT_DATASTORE
    conn_type = CONN_TYPE
    hook_name = "ML pipeline datastore"

    def __init__(self, datastore_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.datastore_conn_id = datastore_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return UI_FIELD_BEHAVIOUR

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Widgets for UIs that still build forms from wtforms (Airflow 3 reads provider_info's conn-fields)."""
        try:
            from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
            from wtforms import PasswordField, StringField
        except ImportError:
            return {}
        widgets: dict[str, Any] = {}
        for key, spec in CONN_FIELDS.items():
            if spec["schema"].get("format") == "password":
                widgets[key] = PasswordField(spec["label"], widget=BS3PasswordFieldWidget())
            else:
                widgets[key] = StringField(spec["label"], widget=BS3TextFieldWidget())
        return widgets

    @cached_property
    def datastore(self) -> Datastore:
        from airflow_mlpipe.storage.resolve import resolve_datastore

        store = resolve_datastore(self.datastore_conn_id)
        mask_in_task_log(store.config.secret_values)
        return store

    def _datastore(self, name: str) -> Datastore:
        conn = self.get_connection(self.datastore_conn_id)
        extra = dict(conn.extra_dejson)
        if conn.description and not extra.get("description"):
            extra["description"] = conn.description
        config = config_from_fields(
            name, conn_type=conn.conn_type, login=conn.login, password=conn.password, host=conn.host, extra=extra
        )
        return Datastore.from_config(config)

    @classmethod
    def get_datastore(cls, name: str | None = None) -> Datastore:
        """The datastore ``name`` (default: the default datastore), resolved now."""
        return cls(name or DEFAULT_DATASTORE).datastore

    def get_conn(self) -> Datastore:
        return self.datastore

    def get_fs(self) -> Any:
        """The datastore's fsspec filesystem."""
        return self.datastore.fs

    def test_connection(self) -> tuple[bool, str]:
        """List the datastore's root: the UI's Test button. Airflow tests a copy of the connection under a random
        id; the plugin hands on the id the user tested (see plugins/connection_form.py) so messages name it."""
        from airflow_mlpipe.plugins.connection_form import TESTED_CONNECTION_ID

        tested = TESTED_CONNECTION_ID.get()
        name = tested or "at the connection's URL"
        try:
            store = self._datastore(name)
            where = store.url
            store = self._datastore(tested or where)
            store.check_access()
        except Exception as exc:
            from airflow_mlpipe.core.secrets import scrub_text

            return False, scrub_text(str(exc))
        label = f"{tested!r} ({where})" if tested else f"at {where}"
        return True, f"The datastore {label} is reachable: its root can be listed"
