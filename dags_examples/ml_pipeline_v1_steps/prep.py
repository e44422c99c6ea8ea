"""Step 2: clean the raw table (read as a v1 input dataset) and split it into train and test sets."""

import argparse
import os

from azureml.core import Run

parser = argparse.ArgumentParser()
parser.add_argument("--prepped", required=True)
parser.add_argument("--every", type=int, default=4, help="every n-th row goes to the test set")
args = parser.parse_args()

run = Run.get_context()
frame = run.input_datasets["raw_data"].to_pandas_dataframe().dropna().reset_index(drop=True)
is_test = frame.index % args.every == 0
os.makedirs(args.prepped, exist_ok=True)
for name, rows in (("train", frame[~is_test]), ("test", frame[is_test])):
    rows.to_csv(os.path.join(args.prepped, f"{name}.csv"), index=False)
    run.log(f"rows_{name}", len(rows))
run.parent.log("rows_total", len(frame))
