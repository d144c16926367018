"""`capgap plan`: items x seeds needed to detect a gain, from a pilot in a real store or stated assumptions."""

from importlib.resources import files
from pathlib import Path

import pytest

from capgap.analysis import power
from capgap.analysis.plan import DEFAULT_SEED_SD, default_pilot, parse_detect
from capgap.cli import main
from capgap.errors import CapgapError
from capgap.store import Store
from tests.analysis.sim import write_study

QUICKSTART = str(Path(str(files("capgap") / "recipes" / "quickstart.yaml")))  # 2 teachers, 3 seeds, 200 items
TEACHERS = {"reference": {"params": None}, "gemma3-270m": {"params": 2.7e8}, "self": {"params": 1.35e8}}


@pytest.mark.parametrize("text,share", [("3pp", 0.03), ("3 pp", 0.03), ("3", 0.03), ("3%", 0.03), ("0.03", 0.03),
                                        ("12.5pp", 0.125), ("0.5pp", 0.005)])
def test_detect_accepts_points_and_shares(text, share):
    assert parse_detect(text) == pytest.approx(share)


@pytest.mark.parametrize("text", ["abc", "0", "100pp", "-3", "3 points", ""])
def test_a_bad_detect_is_one_clear_error(text):
    with pytest.raises(CapgapError, match="--detect must be"):
        parse_detect(text)


def _table(out: str) -> dict[int, str]:
    rows = {}
    for line in out.splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2 and parts[0].isdigit() and len(parts[0]) == 1:
            rows[int(parts[0])] = parts[1]
    return rows


def test_without_a_pilot_the_plan_says_so_and_uses_stated_assumptions(tmp_path, capsys):
    assert main(["plan", QUICKSTART, "--detect", "5pp", "--store", str(tmp_path / "none.sqlite")]) == 0
    out = capsys.readouterr().out
    assert "no pilot data" in out and "ASSUMED" in out and "σ_seed = 2 pp" in out
    assert "Holm's α/m = 0.05/2" in out
    rows = _table(out)
    assert sorted(rows) == list(range(1, 9))
    assumed = default_pilot("x").components
    one = power.items_needed(0.05, assumed, 1, 0.05 / 2, cells=2)
    assert rows[1].startswith(f"{one:,}") and "speaks for that training run only" in rows[1]
    # the seed variance pooled over the config's two teachers, as the verdict's test pools it
    assert power.items_needed(0.05, assumed, 3, 0.05 / 2, cells=2) is None  # sigma_seed 2 pp over 3 seeds
    assert rows[3].startswith("not reachable") and "<- config: 3 seed(s)" in rows[3]
    eight = power.items_needed(0.05, assumed, 8, 0.05 / 2, cells=2)
    assert rows[8].startswith(f"{eight:,}") and eight < power.items_needed(0.05, assumed, 8, 0.05 / 2, cells=1)
    assert "The config's design (3 seed(s), 200 test items) detects gains ≥" in out
    assert not (tmp_path / "none.sqlite").exists()  # planning never creates a store


def test_a_pilot_study_gives_pooled_components_and_more_seeds_need_fewer_items(tmp_path, capsys):
    store_path = tmp_path / "store.sqlite"
    with Store(store_path) as store:
        write_study(store, "quickstart", students={"smollm2-135m-instruct": {"pre": 0.3, "params": 1.35e8}},
                    teachers=TEACHERS, gains={("smollm2-135m-instruct", t, "own-correct"): 0.02 for t in TEACHERS},
                    seeds=3, n_items=400, seed_sd=0.01)
    assert main(["plan", QUICKSTART, "--detect", "0.06", "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert "pilot: study 'quickstart'" in out and "3 finished cell(s)" in out
    assert "pooled over 3 cell(s) with several seeds" in out and "ASSUMED" not in out
    rows = _table(out)
    items = {k: int(rows[k].split()[0].replace(",", "")) for k in (3, 5, 8) if rows[k][0].isdigit()}
    assert items[3] > items[5] > items[8] > 0
    assert "The config's design (3 seed(s), 200 test items)" in out  # the config's test split, not the pilot's


def test_an_ambiguous_detect_value_is_refused():
    from capgap.analysis.plan import parse_detect
    from capgap.errors import CapgapError

    assert parse_detect("3pp") == parse_detect("3") == parse_detect("0.03") == pytest.approx(0.03)
    assert parse_detect("0.5pp") == pytest.approx(0.005)
    with pytest.raises(CapgapError, match="ambiguous: write 0.5pp for 0.5 points or 50pp"):
        parse_detect("0.5")


def test_a_pilot_with_one_seed_assumes_the_seed_variance_and_says_so(tmp_path, capsys):
    store_path = tmp_path / "store.sqlite"
    with Store(store_path) as store:
        write_study(store, "other", students={"s": {"pre": 0.3, "params": 1e8}}, teachers=TEACHERS,
                    gains={("s", "self", "own-correct"): 0.0}, n_items=200)
    assert main(["plan", QUICKSTART, "--detect", "4", "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert "pilot: study 'other'" in out  # the config's study is absent: every study in the store is the pilot
    assert f"σ_seed ASSUMED {100 * DEFAULT_SEED_SD:.0f} pp" in out
    assert "The config's design (3 seed(s), 200 test items)" in out  # the config's own size, not the pilot's


def test_plan_errors_are_one_line(tmp_path, capsys):
    assert main(["plan", QUICKSTART, "--detect", "lots"]) == 2
    expected = "capgap: error: --detect must be a gain such as 3pp, 3 or 0.03, got 'lots'"
    assert capsys.readouterr().err.strip() == expected
    with Store(tmp_path / "s.sqlite") as store:
        write_study(store, "a", students={"s": {"pre": 0.3, "params": 1e8}}, teachers=TEACHERS,
                    gains={("s", "self", "x"): 0.0}, n_items=50)
    assert main(["plan", QUICKSTART, "--detect", "3pp", "--store", str(tmp_path / "s.sqlite"), "--study", "b"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("capgap: error: study 'b' is not in") and err.endswith("studies there: a")
    assert main(["plan", str(tmp_path / "missing.yaml"), "--detect", "3pp"]) == 2
    assert capsys.readouterr().err.startswith("capgap: error: config file")


def test_items_needed_finds_a_design_even_where_power_sinks_again_with_more_items():
    # With few seeds the degrees of freedom fall towards k - 1 as items grow, so power can peak and sink:
    # the search must not judge by power at its largest n alone.
    from capgap.analysis import power, seedaware

    c = power.Components(item=0.05, seed=0.02 ** 2, residual=0.05)
    alpha = seedaware.holm_alpha(7)
    assert power.power(0.08, c, power.MAX_ITEMS, 4, alpha) < 0.8
    n = power.items_needed(0.08, c, 4, alpha)
    assert n is not None and power.power(0.08, c, n, 4, alpha) >= 0.8 > power.power(0.08, c, n - 1, 4, alpha)
