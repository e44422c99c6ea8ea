"""The "ML pipelines" pages in the Airflow UI: step runs, metrics charts, datasets and lineage, comparisons.

``urls`` builds the pages' addresses (no web framework import: the extra links use it on workers), ``metrics``
turns a record's metrics into charts and tables, ``views`` reads what a page shows from the default datastore
(one page of a listing at a time, never every record), ``lineage`` keeps the readers of each dataset version,
and ``app`` is the FastAPI app the plugin mounts on Airflow's API server, behind Airflow's own login.
"""
