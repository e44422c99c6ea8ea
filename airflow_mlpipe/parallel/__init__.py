"""Batch scoring (Azure ML's ``ParallelRunStep``): an entry script applied to a dataset cut into mini-batches.

``config`` holds ``ParallelRunConfig``; ``planning`` cuts a pinned input into mini-batches; ``driver`` is the
script the step runner starts for one mini-batch (``init()`` once per worker process, ``run(mini_batch)``);
``gather`` joins the mini-batches' results into the step's output. The Airflow face is
``operators.parallel_run``.
"""
