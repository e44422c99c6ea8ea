"""Small, deterministic sample data for the example DAGs (no download: generated from a fixed seed)."""

from __future__ import annotations

import random

_SPECIES = {
    # species: (mean sepal length, sepal width, petal length, petal width), shared spread
    "setosa": (5.0, 3.4, 1.5, 0.2),
    "versicolor": (5.9, 2.8, 4.3, 1.3),
    "virginica": (6.6, 3.0, 5.6, 2.0),
}


def iris_rows(per_species: int = 50, seed: int = 7) -> list[tuple[float, float, float, float, str]]:
    rng = random.Random(seed)
    rows = []
    for species, means in _SPECIES.items():
        for _ in range(per_species):
            values = [round(max(0.1, rng.gauss(m, 0.25 if i < 2 else 0.2)), 1) for i, m in enumerate(means)]
            rows.append((values[0], values[1], values[2], values[3], species))
    return rows


def iris_csv(per_species: int = 50, seed: int = 7) -> str:
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    lines += [",".join(str(v) for v in row) for row in iris_rows(per_species, seed)]
    return "\n".join(lines) + "\n"
