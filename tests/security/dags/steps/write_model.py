import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--out")
parser.add_argument("--by")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "weights.txt"), "w") as fh:
    fh.write(f"weights by {args.by}\n")
