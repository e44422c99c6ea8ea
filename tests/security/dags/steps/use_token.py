import argparse
import hashlib
import os

parser = argparse.ArgumentParser()
parser.add_argument("--out")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
seen = {name: hashlib.sha256(os.environ[name].encode()).hexdigest() for name in ("HF_TOKEN", "DB_URL", "MODE")}
with open(os.path.join(args.out, "seen.txt"), "w") as fh:
    fh.write("".join(f"{name} {digest}\n" for name, digest in sorted(seen.items())))
print("token seen:", os.environ["HF_TOKEN"], "url:", os.environ["DB_URL"])
