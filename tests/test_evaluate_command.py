"""`evaluate` and its metrics: known answers, floors, bad input, a checkpoint with its timing."""

from __future__ import annotations

import json
import re

import h5py
import numpy as np
import pytest

from conftest import cli
from gentwin.commands.evaluate import main
from gentwin.metrics.challenge import separation_power

pytestmark = pytest.mark.usefixtures("onnx_registry_once")  # conftest: built once


def test_separation_power_known_answers():
    rng = np.random.default_rng(0)
    a = rng.normal(size=5000)
    assert separation_power(a, a) == 0.0
    assert separation_power(a, a + 100) == pytest.approx(1.0, abs=1e-3)  # disjoint but for the shared edge bin
    two = np.repeat([0.0, 1.0], 50)  # bins [0, 0.5), [0.5, 1]: h1 = (1/2, 1/2), h2 = (1, 0)
    assert separation_power(two, np.zeros(10), bins=2) == pytest.approx(0.5 * (0.25 / 1.5 + 0.25 / 0.5))


def write(path, n, seed, shift=0.0):
    """Conditional showers of 4 features, mean 10, std about 1; ``shift`` moves feature 0 by that share."""
    rng = np.random.default_rng(seed)
    energy = rng.uniform(1, 100, (n, 1))
    x = rng.normal(10, 1, (n, 4)) * (1 + 0.002 * energy)
    x[:, 0] *= 1 + shift
    with h5py.File(path, "w") as f:
        f["incident_energies"], f["showers"] = energy, x
    return path


def test_a_domain_entry_gives_its_own_floor():
    from gentwin.training.judging import domain_rows, table

    value = {"chi2": 5.0, "sparsity/w1": 2.0, "sparsity/w1_floor": 0.5, "sparsity/mean_fake": 3.0}
    rows = domain_rows(value, {})
    assert rows == {"domain/chi2": {"value": 5.0, "floor": None},
                    "domain/sparsity/w1": {"value": 2.0, "floor": 0.5},
                    "domain/sparsity/mean_fake": {"value": 3.0, "floor": None}}
    assert domain_rows({"a": 1.0}, {"a": 0.9}) == {"domain/a": {"value": 1.0, "floor": 0.9}}
    many = {f"f/x{i}": {"value": 1.0, "floor": 1.0} for i in range(40)} | rows
    text = table({"scorecard": many})
    assert "domain/sparsity/w1 " in text and "domain/sparsity/mean_fake" not in text  # rows with a floor shown


def test_same_distribution_stays_at_its_floor_and_a_shift_of_5_percent_does_not(tmp_path, capsys):
    ref, same, shifted = (write(tmp_path / f"{k}.h5", 2400, s, d) for k, s, d in
                          (("ref", 0, 0.0), ("same", 1, 0.0), ("shifted", 2, 0.05)))
    keys = ["x=showers", "c=incident_energies", "threads=1"]
    assert main([str(ref), str(same), *keys, f"out={tmp_path / 'same'}"]) == 0
    table = capsys.readouterr().out
    assert "separation/mean" in table and "classifier/raw_auc" in table and "JetNet recommends" in table
    card = json.loads((tmp_path / "same" / "evaluation.json").read_text())["scorecard"]
    assert (tmp_path / "same" / "marginals.png").stat().st_size > 0
    for name in ("separation/mean", "w1/mean", "separation/showers[0]", "w1/showers[0]"):
        assert card[name]["value"] < 2.5 * card[name]["floor"], name
    assert abs(card["classifier/raw_auc"]["value"] - 0.5) < 0.06
    assert abs(card["classifier/raw_auc"]["floor"] - 0.5) < 0.06
    assert any(k.startswith("by_incident_energies/") for k in card)

    assert main([str(ref), str(shifted), *keys, f"out={tmp_path / 'shifted'}"]) == 0
    card = json.loads((tmp_path / "shifted" / "evaluation.json").read_text())["scorecard"]
    assert card["separation/showers[0]"]["value"] > 2 * card["separation/showers[0]"]["floor"]
    assert card["w1/showers[0]"]["value"] > 8 * card["w1/showers[0]"]["floor"]
    assert card["classifier/raw_auc"]["value"] > card["classifier/raw_auc"]["floor"] + 0.08
    assert card["separation/showers[1]"]["value"] < 2.5 * card["separation/showers[1]"]["floor"]  # unshifted



def test_the_classifier_tests_print_their_progress_when_they_take_long(tmp_path, capsys, monkeypatch):
    from gentwin import progress

    ref, gen = write(tmp_path / "ref.h5", 200, 0), write(tmp_path / "gen.h5", 200, 1, 0.5)
    keys = ["x=showers", "c=incident_energies", "threads=1"]
    assert main([str(ref), str(gen), *keys, f"out={tmp_path / 'quick'}"]) == 0
    assert not re.search(r"^classifier ", capsys.readouterr().out, re.M)  # seconds of work: no progress lines
    monkeypatch.setattr(progress, "AFTER", 0.0)  # as if each classifier test took longer than AFTER
    assert main([str(ref), str(gen), *keys, f"out={tmp_path / 'long'}"]) == 0
    lines = re.findall(r"^classifier .*$", capsys.readouterr().out, re.M)
    assert re.fullmatch(r"classifier +\d+%  epoch \d+/50  val loss \S+  \d+s, ETA \d+s", lines[0]), lines
    assert sum(line.endswith(", done") for line in lines) == 2, lines  # the raw values' test and its floor

def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    ref = write(tmp_path / "ref.h5", 100, 0)
    np.savez(tmp_path / "gen.npz", showers=np.ones((100, 3)))
    out = tmp_path / "out"
    cases = [([str(ref), str(ref), "x=shower", f"out={out}"], 3, r"no dataset 'shower' \(dataset.x\); the file has: "
              r"incident_energies, showers"),
             ([str(ref), str(tmp_path / "gen.npz"), "x=showers", f"out={out}"], 3, r"samples of shape \(3,\), the "
              r"reference .* has \(4,\)"),
             ([str(ref), str(ref), "x=showers", "colour=red"], 2, r"unknown argument 'colour'"),
             ([str(tmp_path / "gen.npz")], 2, r"not a gentwin checkpoint")]
    for argv, code, message in cases:
        assert main(argv) == code
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        assert re.search(message, err[0]), err[0]
    assert not out.exists()


def test_a_csv_with_blank_and_comment_lines_and_an_rntuple_are_read_row_for_row(tmp_path, capsys):
    import uproot

    rng = np.random.default_rng(0)
    ref, gen = rng.normal(size=(40, 2)), rng.normal(size=(40, 2))
    lines = [f"{a},{b}" for a, b in ref]
    (tmp_path / "ref.csv").write_text("# reference\na,b\n" + "\n\n# a gap\n".join(lines))  # no final newline
    with uproot.recreate(tmp_path / "gen.root") as f:
        f["events"] = {"a": gen[:, 0], "b": gen[:, 1]}  # an RNTuple
    assert main([str(tmp_path / "ref.csv"), str(tmp_path / "gen.root"), "x=[a,b]", f"out={tmp_path / 'e'}"]) == 0
    result = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    assert result["n_reference"] == 40 and result["n_generated"] == 40
    capsys.readouterr()
    (tmp_path / "bad.csv").write_text("a,b\n" + "\n".join(lines[:30]) + "\n1,x\n")
    assert main([str(tmp_path / "bad.csv"), str(tmp_path / "gen.root"), "x=[a,b]", f"out={tmp_path / 'f'}"]) == 3
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {tmp_path / 'bad.csv'}:32: column 'b': 'x' is "
                                                            f"not a number"]
    assert not (tmp_path / "f").exists()


@pytest.mark.slow
def test_a_trained_checkpoint_is_judged_on_its_held_out_data_with_timing(tmp_path, capsys):
    data = write(tmp_path / "calo.h5", 600, 0)
    r = cli("run", "dataset=arrays", f"dataset.path={data}", "dataset.x=showers", "dataset.c=incident_energies",
            "model=wgan_gp", "threads=1", "dataset.batch_size=32", "trainer.max_epochs=1", "hydra.run.dir=run",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert main([str(ckpt), "timing=true", "timing_batches=1,10", "timing_repeats=2"]) == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "run" / "evaluation" / "evaluation.json").read_text())
    card = result["scorecard"]
    # Conditional: no group floor (real and generated paired by condition); the property entry's own, two
    # halves of the real rows, is shown
    assert card["domain/prop/mean_w1"]["floor"] > 0
    assert {"separation/mean", "fpd", "kpd", "classifier/raw_auc"} <= set(card)
    assert "classifier/features_auc" not in card  # the features are the raw columns here
    assert all(np.isfinite(card[k]["value"]) and np.isfinite(card[k]["floor"]) for k in ("separation/mean", "fpd"))
    timing = result["timing"]
    assert timing["parameters"] > 0 and set(timing["torch_cpu"]) == {"1", "10"}
    assert timing["onnx_cpu"]["10"]["mean_s"] > 0 and "onnx_cpu" in printed
    r = cli("sample", str(ckpt), "timing=true", cwd=tmp_path)
    assert r.returncode == 0 and "torch_cpu" in r.stdout and "batch 10000" in r.stdout, r.stderr


def test_a_run_and_evaluate_of_its_checkpoint_agree_on_every_shared_metric(tmp_path):
    """One final evaluation: `evaluate <ckpt>` gives the very numbers of the run's metrics.json."""
    data = write(tmp_path / "calo.h5", 400, 0)
    r = cli("run", "dataset=arrays", f"dataset.path={data}", "dataset.x=showers", "dataset.c=incident_energies",
            "model=cvae", "seed=3", "threads=1", "dataset.batch_size=32", "trainer.max_epochs=2", "hydra.run.dir=run",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    ckpt = tmp_path / "run" / "checkpoints" / f"{summary['final_weights']}.ckpt"
    r = cli("evaluate", str(ckpt), "out=ev", cwd=tmp_path)  # seed and n by default: the run's
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    ran, evaluated = summary["metrics"], result["metrics"]
    assert result["seed"] == 3
    # every final metric but the measured generation rate, the final-only classifier and the likelihood included
    speeds = {f"speed/samples_per_s_batch{b}" for b in (1, 100, 10_000)}  # measured, so the run's alone
    assert speeds <= set(ran) and all(ran[k] > 0 for k in speeds)
    assert set(evaluated) == set(ran) - {"samples_per_second", "wall_time_s", "steps", "epochs",
                                         "train_steps_per_second", "best_epoch"} - speeds
    assert {"classifier/auc", "classifier/jsd", "fpd", "fpd/kpd", "prop/mean_w1", "nll", "finite_fraction"} <= set(
        evaluated)
    assert {k: evaluated[k] for k in evaluated} == {k: ran[k] for k in evaluated}  # same weights, samples, recipe
    assert 0 <= evaluated["classifier/auc"] <= 1 and evaluated["finite_fraction"] == 1.0


def test_final_only_entries_are_left_out_of_validations_but_not_of_the_monitor():
    from gentwin.errors import ConfigError
    from gentwin.training.evaluate import validation_entries

    entries = {"prop": len, "classifier": abs}
    assert validation_entries(entries, ["classifier"], "prop/mean_w1") == {"prop": len}
    assert validation_entries(entries, ["removed"], "prop/mean_w1") == entries  # ~metric.entries.removed
    with pytest.raises(ConfigError, match="metric.monitor=classifier/auc comes from entry 'classifier'"):
        validation_entries(entries, ["classifier"], "classifier/auc")
