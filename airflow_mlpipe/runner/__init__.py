"""The step runner: ``python -m airflow_mlpipe.runner --spec PATH`` executes one step run anywhere (a local
subprocess, a container, a pod), talking to the world only through datastores. No Airflow import."""
