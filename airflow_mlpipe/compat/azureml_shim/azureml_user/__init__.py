"""SDK v1's ``azureml_user`` package, as a ``ParallelRunStep`` entry script imports it."""
