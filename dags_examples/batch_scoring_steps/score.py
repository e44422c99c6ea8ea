"""Entry script of the batch-scoring example: the Azure ML ``ParallelRunStep`` contract, unchanged.

``init()`` runs once per worker process (load the model); ``run(mini_batch)`` gets a list of file paths and returns
one result per file: the file's name, its row count and its mean score.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os

from azureml_user.parallel_run import EntryScript

MODEL: dict[str, float] = {}


def init() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    args, _ = parser.parse_known_args()
    path = args.model if os.path.isfile(args.model) else os.path.join(args.model, "model.json")
    with open(path) as fh:
        MODEL.update(json.load(fh))
    EntryScript().logger.info("model loaded: %s", sorted(MODEL))


def score(row: dict[str, str]) -> float:
    z = MODEL["bias"] + sum(MODEL[k] * float(v) for k, v in row.items() if k in MODEL)
    return 1 / (1 + math.exp(-z))


def run(mini_batch: list[str]) -> list[str]:
    results = []
    for path in mini_batch:
        with open(path, newline="") as fh:
            scores = [score(row) for row in csv.DictReader(fh)]
        mean = sum(scores) / len(scores) if scores else 0.0
        results.append(f"{os.path.basename(path)},{len(scores)},{mean:.6f}")
    return results
