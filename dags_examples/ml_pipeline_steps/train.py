"""Step 2: train a softmax-regression model on the prepared data."""

import argparse
import os

import numpy as np
import pandas as pd
from model import FEATURES, accuracy, one_hot, predict_proba, save

from airflow_mlpipe import Run

parser = argparse.ArgumentParser()
parser.add_argument("--training-data", required=True)
parser.add_argument("--model", required=True, help="folder to write model.json to")
parser.add_argument("--learning-rate", type=float, default=0.1)
parser.add_argument("--epochs", type=int, default=200)
args = parser.parse_args()

run = Run.get_context()
train = pd.read_csv(os.path.join(args.training_data, "train.csv"))
classes = sorted(train["species"].unique().tolist())
x, y = train[FEATURES].to_numpy(), one_hot(train["species"], classes)
weights, bias = np.zeros((x.shape[1], len(classes))), np.zeros(len(classes))

for epoch in range(args.epochs):
    proba = predict_proba(weights, bias, x)
    loss = float(-(y * np.log(proba + 1e-12)).sum(axis=1).mean())
    gradient = (proba - y) / len(x)
    weights -= args.learning_rate * x.T @ gradient
    bias -= args.learning_rate * gradient.sum(axis=0)
    if epoch % 50 == 0 or epoch == args.epochs - 1:
        run.log("loss", round(loss, 5))
        run.log_row("training_curve", epoch=epoch, loss=round(loss, 5))

model = {"classes": classes, "weights": weights.tolist(), "bias": bias.tolist(), "learning_rate": args.learning_rate}
train_accuracy = accuracy(model, train)
run.log("learning_rate", args.learning_rate)
run.log("train_accuracy", train_accuracy)
os.makedirs(args.model, exist_ok=True)
save(model, os.path.join(args.model, "model.json"))
os.makedirs("outputs", exist_ok=True)
with open("outputs/training_summary.txt", "w") as fh:
    fh.write(f"learning_rate={args.learning_rate} epochs={args.epochs} train_accuracy={train_accuracy:.3f}\n")
print(f"trained: train accuracy {train_accuracy:.3f}")
