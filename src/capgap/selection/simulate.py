"""Simulated teacher grids with known true gains, for `bench/selection.py` and the selection tests.

Items, seeds and flips follow `analysis.simulate` (the calibration bench's model): one set of test items
with baseline answers shared by every teacher (gains are paired per item), each training seed a draw
g_s = mu_t + sigma z_s, and flips given the baseline with expected post - pre g_s. A pilot of steps share
f < 1 has its own mean, m_t(f) = f mu_t + (1 - f) delta_t, where delta_t ~ N(0, tau) is drawn once per grid:
what a short fine-tune shows is the full gain shrunk toward what the teacher's data does early, which can
rank teachers differently (tau = 0: pilots rank teachers as full runs do, only weaker). Each measurement
draws fresh training runs; the test items are a prefix of the grid's items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from capgap.analysis.simulate import BASELINE, draw_items, draw_post, seed_gains


@dataclass
class SimulatedGrid:
    means: dict[str, float]  # true full-budget gain of each teacher (shares)
    sigma: float  # seed SD of the gain
    tau: float  # SD of the teachers' early-training effects delta_t
    n_items: int
    steps: int
    rng: np.random.Generator
    baseline: float = BASELINE

    def __post_init__(self) -> None:
        self.pre, self.fragility = draw_items(self.n_items, self.rng, self.baseline)
        self.delta = {t: float(self.rng.normal(0, self.tau)) for t in self.means}

    def pilot_mean(self, teacher: str, steps: int) -> float:
        f = min(1.0, steps / self.steps)
        return f * self.means[teacher] + (1 - f) * self.delta[teacher]

    def measure(self, arms: list[str], seeds: int, steps: int, items: int) -> dict[str, np.ndarray]:
        """d = post - pre (seeds, items) of fresh pilot runs of each arm on the first `items` items."""
        pre, fragility = self.pre[:items], self.fragility[:items]
        out = {}
        for arm in arms:
            gains = seed_gains(seeds, self.pilot_mean(arm, steps), self.sigma, self.rng)
            out[arm] = np.stack([draw_post(pre, fragility, g, self.rng, self.baseline) - pre for g in gains])
        return out

    @property
    def best(self) -> str:
        return max(self.means, key=self.means.get)

    def regret(self, choice: str) -> float:
        """Points of true gain lost by `choice` against the truly best teacher."""
        return 100 * (self.means[self.best] - self.means[choice])


def teacher_means(n: int, spread: float, rng: np.random.Generator, centre: float = 0.0) -> dict[str, float]:
    """n teachers' true gains, uniform over [centre - spread/2, centre + spread/2] (shares)."""
    return {f"t{i}": float(centre + spread * (u - 0.5)) for i, u in enumerate(rng.random(n))}
