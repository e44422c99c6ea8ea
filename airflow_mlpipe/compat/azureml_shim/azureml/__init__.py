"""airflow-mlpipe's stand-in for the Azure ML SDK v1 (``azureml.core``) in step scripts.

Only on a step's ``PYTHONPATH`` when no real SDK is installed; other ``azureml.*`` packages that are installed
(``azureml.dataprep``, say) stay importable.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
