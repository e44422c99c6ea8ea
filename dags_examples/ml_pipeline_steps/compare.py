"""Step 3: evaluate the new model on the test set and keep it as the best model when it is at least as good as
the one registered before."""

import argparse
import json
import os
import shutil

import pandas as pd
from model import accuracy, load

from airflow_mlpipe import Dataset, Run

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--test-data", required=True)
parser.add_argument("--best-model", required=True)
args = parser.parse_args()

run = Run.get_context()
model = load(os.path.join(args.model, "model.json"))
test = pd.read_csv(os.path.join(args.test_data, "test.csv"))
new_accuracy = accuracy(model, test)

previous = None
try:
    registered = Dataset.get_by_name("iris_model")
    with registered.mount() as folder, open(os.path.join(folder, "report.json")) as fh:
        previous = json.load(fh)["test_accuracy"]
except LookupError:
    pass  # no model registered yet

better = previous is None or new_accuracy >= previous
chosen = model if better else None
os.makedirs(args.best_model, exist_ok=True)
if better:
    shutil.copyfile(os.path.join(args.model, "model.json"), os.path.join(args.best_model, "model.json"))
    report = {"test_accuracy": new_accuracy, "previous_best": previous}
else:
    with registered.mount() as folder:
        shutil.copytree(folder, args.best_model, dirs_exist_ok=True)
    report = {"test_accuracy": previous, "rejected_candidate": new_accuracy}
with open(os.path.join(args.best_model, "report.json"), "w") as fh:
    json.dump(report, fh)

run.log("test_accuracy", new_accuracy)
run.log("previous_best_accuracy", previous if previous is not None else -1.0)
run.log("new_model_is_best", better)
print(f"test accuracy {new_accuracy:.3f} (previous best {previous}); kept {'new' if better else 'previous'} model")
