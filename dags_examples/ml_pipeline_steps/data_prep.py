"""Step 1: clean the raw iris table, scale the features, split train/test.

Runs unchanged inside the pipeline or alone:
    python data_prep.py --raw iris.csv --prepped /tmp/prepped
"""

import argparse
import os

import pandas as pd

from airflow_mlpipe import Run

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

parser = argparse.ArgumentParser()
parser.add_argument("--raw", required=True, help="a csv file or a folder of csv files")
parser.add_argument("--prepped", required=True, help="folder to write train.csv and test.csv to")
parser.add_argument("--test-fraction", type=float, default=0.2)
args = parser.parse_args()

run = Run.get_context()
files = (
    [args.raw]
    if os.path.isfile(args.raw)
    else sorted(os.path.join(args.raw, f) for f in os.listdir(args.raw) if f.endswith(".csv"))
)
frame = pd.concat([pd.read_csv(f) for f in files], ignore_index=True).dropna()
means, stds = frame[FEATURES].mean(), frame[FEATURES].std()
frame[FEATURES] = (frame[FEATURES] - means) / stds

test = frame.sample(frac=args.test_fraction, random_state=0)
train = frame.drop(test.index)
os.makedirs(args.prepped, exist_ok=True)
train.to_csv(os.path.join(args.prepped, "train.csv"), index=False)
test.to_csv(os.path.join(args.prepped, "test.csv"), index=False)

run.log("rows_raw", len(frame))
run.log("rows_train", len(train))
run.log("rows_test", len(test))
run.log_table("feature_scaling", {"feature": FEATURES, "mean": means.round(4).tolist(), "std": stds.round(4).tolist()})
print(f"prepared {len(train)} training and {len(test)} test rows")
