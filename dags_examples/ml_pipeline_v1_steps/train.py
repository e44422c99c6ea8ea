"""Step 3: a nearest-centroid classifier: one centroid per species, pulled towards the class mean by the
learning rate (a pipeline parameter)."""

import argparse
import json
import os

import pandas as pd
from azureml.core import Run

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

parser = argparse.ArgumentParser()
parser.add_argument("--train", required=True)
parser.add_argument("--model", required=True)
parser.add_argument("--learning-rate", type=float, default=1.0)
args = parser.parse_args()

run = Run.get_context()
train = pd.read_csv(os.path.join(args.train, "train.csv"))
overall = train[FEATURES].mean()
centroids = {
    species: (overall + args.learning_rate * (rows[FEATURES].mean() - overall)).round(5).tolist()
    for species, rows in train.groupby("species")
}
os.makedirs(args.model, exist_ok=True)
with open(os.path.join(args.model, "centroids.json"), "w") as fh:
    json.dump({"features": FEATURES, "centroids": centroids}, fh, indent=1)
os.makedirs("outputs", exist_ok=True)
with open("outputs/centroids.json", "w") as fh:
    json.dump(centroids, fh)
run.log("learning_rate", args.learning_rate)
run.register_model("iris_centroids", "outputs/centroids.json", tags={"learning_rate": str(args.learning_rate)})
