"""Trust: a failed run deletes nothing it did not make, a checkpoint runs no code, paths stay in
outputs/, every run checkpoints, a resumed run ends bit-identical to an uninterrupted one, and bad
input gets one line."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY, Forked, cli, run_dirs

FAST = [*TINY, "dataset.n=400"]


def one_error_line(out: subprocess.CompletedProcess) -> str:
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-3000:]
    return lines[0]


# -- 1. a failed run removes only what it created ---------------------------------------------------
def test_a_failing_run_in_a_folder_that_holds_files_refuses_and_deletes_nothing(tmp_path):
    (tmp_path / "thesis.tex").write_text("years of work")
    (tmp_path / "data").mkdir()
    for folder in (".", str(tmp_path)):
        out = cli("run", *FAST, f"hydra.run.dir={folder}", "dataset=tpc", "dataset.path=typo.dat", cwd=tmp_path)
        assert out.returncode == 2
        assert "exists and is not empty" in one_error_line(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "thesis.tex"]
    assert (tmp_path / "thesis.tex").read_text() == "years of work"


def test_a_failing_run_removes_its_own_folder_and_keeps_an_empty_one_it_was_given(tmp_path):
    out = cli("run", *FAST, "dataset=tpc", "dataset.path=typo.dat", cwd=tmp_path)
    assert out.returncode == 3 and "typo.dat: no such digits file" in one_error_line(out)
    assert list(tmp_path.iterdir()) == []  # its run folder and the date folders it made are gone
    given = tmp_path / "given"
    given.mkdir()
    out = cli("run", *FAST, f"hydra.run.dir={given}", "dataset=tpc", "dataset.path=typo.dat", cwd=tmp_path)
    assert out.returncode == 3
    assert given.is_dir() and list(given.iterdir()) == []


# -- 2, 3. no code from files -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished tiny run folder (copied by the tests that alter it)."""
    root = tmp_path_factory.mktemp("trained")
    out = cli("run", *FAST, "trainer.max_epochs=2", cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = run_dirs(root / "outputs")
    return run


class _Touch:
    """A pickle that creates a file when unpickled without weights_only."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@pytest.mark.parametrize("where", ["model", "generator"])
def test_a_checkpoint_naming_a_foreign_target_is_refused_by_sample_and_export(tmp_path, trained, where):
    marker = tmp_path / "written_by_the_checkpoint.txt"
    ckpt = torch.load(trained / "checkpoints/best.ckpt", weights_only=True)
    node = ckpt["gentwin"]["model"] if where == "model" else ckpt["gentwin"]["model"]["generator"]
    node.update({"_target_": "numpy.savetxt", "fname": str(marker), "X": [1.0]})
    node.pop("_partial_", None)
    evil = tmp_path / "evil.ckpt"
    torch.save(ckpt, evil)
    assert torch.load(evil, weights_only=True)  # a weights-only file: the target is the danger
    for args in (("sample", str(evil), "n=5", f"out={tmp_path / 's.npz'}"), ("export-model", str(evil))):
        out = cli(*args, cwd=tmp_path)
        assert out.returncode == 2, out.stderr[-2000:]
        assert "refused" in one_error_line(out) and "numpy.savetxt" in out.stderr
    assert not marker.exists() and not (tmp_path / "s.npz").exists()


def test_targets_of_checkpoints_are_those_of_the_package_configs():
    from gentwin.errors import CheckpointError
    from gentwin.training.checkpoint import allowed_targets, check_targets

    allowed = allowed_targets()
    assert {"gentwin.models.gan.GAN", "gentwin.domains.tpc.nets.TPCCritic",
            "gentwin.domains.tpc.datamodule.TPCDataModule"} <= allowed
    assert not any(t.startswith(("torch.", "lightning.", "numpy.", "os.", "builtins.")) for t in allowed)
    check_targets({"_target_": "gentwin.models.gan.GAN", "loss": {"_target_": "gentwin.losses.adversarial.BCE"}},
                  "x.ckpt", "model")
    # A resumed run's config: every _target_, and the classes of Hydra's logging configs (dictConfig calls them).
    from gentwin.training.checkpoint import config_targets, named_targets

    assert {"torch.optim.Adam", "lightning.Trainer", "gentwin.training.run_folder.ValidateFirst"} <= config_targets()
    assert list(named_targets({"model": {"class": "a", "p": [{"_target_": "b"}]}, "hydra": {"job_logging": {
        "handlers": {"h": {"class": "c", "()": "d"}}}, "callbacks": {"class": "e"}}})) == [
        ("model.p[0]._target_", "b"), ("hydra.job_logging.handlers.h.class", "c"),
        ("hydra.job_logging.handlers.h.()", "d")]
    for bad in ({"_target_": "os.system", "_args_": ["echo"]}, {"a": [{"_target_": "builtins.eval"}]},
                {"_target_": "gentwin.domains.leaves.io.to_geojson"}):
        with pytest.raises(CheckpointError, match="x.ckpt: refused"):
            check_targets(bad, "x.ckpt", "dataset")


def test_resume_loads_no_pickle_and_deletes_no_file_named_by_the_checkpoint(tmp_path, trained):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    marker, bait = tmp_path / "code_ran", tmp_path / "bait.ckpt"
    torch.save({"state_dict": _Touch(marker)}, bait)
    last = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    for state in last["callbacks"].values():
        if "best_model_path" in state:
            state.update(best_model_path=str(bait), kth_best_model_path=str(bait), last_model_path=str(bait),
                         best_k_models={str(bait): torch.tensor(-1e9)}, dirpath=str(run / "checkpoints"))
    torch.save(last, run / "checkpoints/last.ckpt")
    out = cli("run", f"resume={run}", "trainer.max_epochs=3", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert not marker.exists() and bait.exists()
    assert json.loads((run / "metrics.json").read_text())["best_checkpoint"] == str(run / "checkpoints/best.ckpt")

    torch.save(_Touch(marker), run / "checkpoints/last.ckpt")  # last.ckpt itself a code-running pickle
    out = cli("run", f"resume={run}", "trainer.max_epochs=4", cwd=tmp_path)
    assert out.returncode == 2 and "cannot resume" in one_error_line(out)
    assert not marker.exists()


@pytest.mark.parametrize("added, refused", [
    # Hydra instantiates its callbacks before any check of the run: the file must not reach them.
    (["+hydra.callbacks.p._target_=numpy.savetxt", "+hydra.callbacks.p.fname={marker}", "+hydra.callbacks.p.X=[1]"],
     "'+hydra.callbacks.p._target_=numpy.savetxt' sets Hydra's own config"),
    (["+hydra.job_logging.handlers.h.class=logging.FileHandler", "+hydra.job_logging.handlers.h.filename={marker}"],
     "sets Hydra's own config"),
    (["+model@hydra.callbacks.m=nice"], "sets Hydra's own config"),
    # A node the model builds recursively, as it is built with the model.
    (["+model.p._target_=numpy.savetxt", "+model.p.fname={marker}", "+model.p.X=[1]"],
     "its overrides set model.p._target_='numpy.savetxt', which is not a class or function"),
])
def test_a_resume_builds_nothing_its_folders_overrides_add(tmp_path, trained, added, refused):
    import shutil

    run, marker = tmp_path / "run", tmp_path / "written_by_the_folder.txt"
    shutil.copytree(trained, run)
    overrides = run / ".hydra/overrides.yaml"
    overrides.write_text(overrides.read_text() + "".join(f"- {a.format(marker=marker)!r}\n" for a in added))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    out = cli("run", f"resume={run}", "trainer.max_epochs=3", cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-3000:]
    line = one_error_line(out)
    assert f"cannot resume {run}: {overrides}: refused: " in line and refused in line
    assert not marker.exists()
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize("text, message", [
    ("{seed: 1}", "not a list of override strings"),
    ("- [1, 2]\n", "not a list of override strings"),
    ("- seed=1\n- 'seed='\n- ']]'\n", "']]' is not an override"),
    ("- seed=1,2\n", "'seed=1,2' is a sweep"),
    ("- [unclosed\n", "not a YAML list of overrides"),
])
def test_a_resume_reads_overrides_yaml_strictly(tmp_path, trained, text, message):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / ".hydra/overrides.yaml").write_text(text)
    out = cli("run", f"resume={run}", cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-3000:]
    assert message in one_error_line(out)


@pytest.mark.parametrize("command", ["sample", "export-model", "evaluate"])
def test_a_checkpoint_config_resolves_without_making_folders(tmp_path, trained, command):
    made = tmp_path / "made" / "by" / "the checkpoint"
    ckpt = torch.load(trained / "checkpoints/best.ckpt", weights_only=True)
    ckpt["gentwin"]["model"]["generator"]["db"] = f"${{gentwin_sqlite:{made}/x.db}}"
    ckpt["gentwin"]["dataset"]["db"] = f"${{gentwin_sqlite:{made}/y.db}}"
    evil = tmp_path / "run" / "checkpoints" / "evil.ckpt"
    evil.parent.mkdir(parents=True)
    torch.save(ckpt, evil)
    out = cli(command, str(evil), *(["n=5", f"out={tmp_path / 's.npz'}"] if command == "sample" else []), cwd=tmp_path)
    assert out.returncode != 0
    assert not (tmp_path / "made").exists()


# -- 4. folder names from values --------------------------------------------------------------------
def test_names_and_sweep_values_with_path_separators_stay_inside_outputs(tmp_path):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    out = cli("run", *FAST, "name=../../../escaped", cwd=work)
    assert out.returncode == 0, out.stderr[-3000:]
    out = cli("run", "-m", *FAST, "name=../../x", "seed=1,2", cwd=work)
    assert out.returncode == 0, out.stderr[-3000:]
    made = [p for p in tmp_path.rglob("*") if p.is_dir() and "outputs" not in p.parts]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in made) == ["a", "a/b"]  # nothing climbed out
    single = run_dirs(work / "outputs")
    jobs = run_dirs(work / "outputs" / "multirun")
    assert len(single) == 3 and len(jobs) == 2  # the run and the two jobs, each in a folder of its own
    assert all((j / "metrics.json").exists() for j in jobs) and "..%2F..%2Fx" in jobs[0].name


def test_safe_name_keeps_one_readable_path_component():
    from gentwin.training.resolvers import safe_name

    assert safe_name("wgan_gp_tpc") == "wgan_gp_tpc"
    assert safe_name("dataset.path=../d/a.dat,seed=1") == "dataset.path=..%2Fd%2Fa.dat,seed=1"
    assert safe_name("..") == "%2E%2E" and safe_name(".") == "%2E" and safe_name("") == "_"
    long = safe_name("x" * 500)
    assert len(long) <= 200 and long != safe_name("x" * 499)


# -- 5. short runs ----------------------------------------------------------------------------------
def test_a_run_shorter_than_the_validation_interval_validates_and_checkpoints(tmp_path):
    out = cli("run", *FAST, "trainer.max_epochs=2", "trainer.check_val_every_n_epoch=5", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "outputs")
    last = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    assert last["epoch"] == 1 and last["global_step"] == 2 * (300 // (16 * 5))
    assert (run / "checkpoints/best.ckpt").exists()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0}).Reload()
    assert "val/multivariate/energy" in acc.Tags()["scalars"]
    out = cli("sample", str(run / "checkpoints/best.ckpt"), "n=5", "out=s.npz", cwd=tmp_path)
    assert out.returncode == 0, out.stderr


# -- 6. resume is exact ----------------------------------------------------------------------------
RESUME = [*TINY, "dataset.n=1200", "trainer.max_epochs=9", "trainer.check_val_every_n_epoch=3", "model.ema=0.9"]


def _state(run: Path) -> dict:
    return torch.load(run / "checkpoints/last.ckpt", weights_only=True)["state_dict"]


def test_a_run_killed_at_a_random_step_and_resumed_ends_bit_identical(tmp_path):
    whole, part = tmp_path / "whole", tmp_path / "part"
    out = cli("run", *RESUME, f"hydra.run.dir={whole}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rng = random.Random()
    for _ in range(5):  # a kill that came too late (the run had finished) is tried again
        proc = Forked("run", *RESUME, f"hydra.run.dir={part}", cwd=tmp_path)  # a real process, SIGKILLed
        while not (part / "checkpoints/last.ckpt").exists() and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        if proc.wait() == -signal.SIGKILL and not (part / "metrics.json").exists():
            break
        import shutil

        shutil.rmtree(part)
    else:
        pytest.fail("the run always finished before the kill")
    killed_at = torch.load(part / "checkpoints/last.ckpt", weights_only=True)["global_step"]
    overrides = (part / ".hydra/overrides.yaml").read_text()
    bad = cli("run", f"resume={part}", "model.latent_dim=0", cwd=tmp_path)  # a failed resume changes nothing
    assert bad.returncode == 2 and (part / ".hydra/overrides.yaml").read_text() == overrides

    out = cli("run", f"resume={part}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    a, b = _state(whole), _state(part)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f"differ (killed at step {killed_at})"
    ma = json.loads((whole / "metrics.json").read_text())["metrics"]
    mb = json.loads((part / "metrics.json").read_text())["metrics"]
    assert mb["steps"] == ma["steps"] and mb["epochs"] == ma["epochs"]
    assert mb["multivariate/energy"] == ma["multivariate/energy"]
    saved_wall = torch.load(part / "checkpoints/last.ckpt", weights_only=True)["callbacks"]["RunClock"]["wall_time_s"]
    assert mb["wall_time_s"] == pytest.approx(saved_wall, rel=0.05)  # both parts' time

    before = (part / "metrics.json").read_bytes()
    again = cli("run", f"resume={part}", cwd=tmp_path)  # a finished run: nothing to do, nothing rewritten
    assert again.returncode == 0 and "had already finished" in again.stdout
    assert (part / "metrics.json").read_bytes() == before


def test_a_resume_refuses_changes_of_what_the_checkpoint_restores_and_records_what_it_takes(tmp_path, trained):
    import shutil

    import yaml

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    record = run / ".hydra/overrides.yaml"
    before = record.read_bytes()
    lr = yaml.safe_load((run / ".hydra/config.yaml").read_text())["optimizer"]["lr"]
    for change, key in ((["optimizer.lr=1e6"], f"optimizer.lr, which the checkpoint restores (the run has "
                                               f"optimizer.lr={lr})"),
                        (["model.latent_dim=64"], "model.latent_dim,"),  # another shape: a traceback before
                        (["seed=2"], "seed,"), (["dataset.n=500"], "dataset.n,"), (["model=vae"], "model."),
                        (["+trainer.gradient_clip_val=1"], "trainer.gradient_clip_val, which the checkpoint")):
        out = cli("run", f"resume={run}", "trainer.max_epochs=3", *change, cwd=tmp_path)
        assert out.returncode == 2, out.stderr[-3000:]
        assert f"cannot resume {run}: {change[0]} would change {key}" in one_error_line(out)
        assert record.read_bytes() == before
    # What extends the run is taken and recorded as given; Hydra's own settings are not recorded (as Hydra does).
    out = cli("run", f"resume={run}", "trainer.max_epochs=3", "threads=1", f"optimizer.lr={lr}",
              "hydra.job.chdir=false", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    old = yaml.safe_load(before)
    kept = [o for o in old if o.split("=")[0] not in ("trainer.max_epochs", "threads", "optimizer.lr")]
    assert yaml.safe_load(record.read_text()) == [*kept, "trainer.max_epochs=3", "threads=1", f"optimizer.lr={lr}"]
    assert json.loads((run / "metrics.json").read_text())["metrics"]["epochs"] == 3


# -- 7. one line for bad input --------------------------------------------------------------------
@pytest.fixture
def bad_files(tmp_path) -> Path:
    (tmp_path / "binary.dat").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "empty.dat").write_bytes(b"")
    (tmp_path / "negative.dat").write_text("params: 0 0 40 30 23 0.5\n 30 40 -3.2\n" * 300)
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "broken.yaml").write_text("latent_dim: [1,\nema: : x\n")
    return tmp_path


@pytest.mark.parametrize("args, code, message", [
    (["trainer.check_val_every_n_epoch=0"], 2, "trainer.check_val_every_n_epoch=0: must be an integer >= 1"),
    (["optimizer.betas=[2,0.9]"], 2, "optimizer.betas=[2, 0.9]: must be a list of two numbers in [0, 1)"),
    (["model.ema=1.5"], 2, "model.ema=1.5: must be a number in (0, 1)"),
    (["trainer.precision=16-mixed"], 2, "trainer.precision=16-mixed: must be 32-true, 64-true, bf16-mixed"),
    (["trainer.max_epoch=3"], 2, "trainer.max_epoch is not a key of the config; did you mean trainer.max_epochs"),
    (["dataset=tpc", "dataset.n=null"], 2, "dataset.path is not set"),
    (["dataset=arrays"], 2, "dataset.path is not set: give the file"),  # raised inside Hydra's instantiate
    (["dataset=tpc", "dataset.path=binary.dat"], 3, "binary.dat: not a text file (byte 0x80 at offset 128"),
    (["dataset=tpc", "dataset.path=empty.dat"], 3, "empty.dat: empty digits file"),
    (["dataset=tpc", "dataset.path=negative.dat"], 3, "negative.dat:2: negative amplitude -3.2"),
    (["--config-dir", "conf", "model=broken"], 2, "broken.yaml:2:"),
])
def test_bad_input_gets_one_line_and_leaves_no_folder(bad_files, args, code, message):
    out = cli("run", *args, "threads=1", cwd=bad_files)
    assert out.returncode == code, out.stderr[-3000:]
    assert message in one_error_line(out)
    assert not (bad_files / "outputs").exists()


def test_a_binary_conditions_file_is_named():
    from gentwin.domains.digits.reader import DIGITS_FILE as path  # gzip: binary
    from gentwin.errors import ConditionsError
    from gentwin.training.sampling import read_csv
    with pytest.raises(ConditionsError, match=r"digits_8x8.csv.gz: not a text file \(byte 0x8b at offset 1 "):
        read_csv(path)


def test_a_conditions_csv_is_read_as_a_data_csv_is(tmp_path):
    from gentwin.errors import ConditionsError
    from gentwin.training.sampling import read_csv

    (tmp_path / "c.csv").write_text("# conditions\nenergy,angle\n1,2\n\n# more\n3,4")
    assert {k: v.tolist() for k, v in read_csv(tmp_path / "c.csv").items()} == {"energy": [1, 3], "angle": [2, 4]}
    for content, message in ((b"a,b\n1,2\n\n3,x\n", r"bad.csv:4: column 'b': 'x' is not a number$"),
                             (b"\0" * (1 << 20), r"bad.csv: not a text file \(a NUL byte at offset 0;"),
                             (b"a" * (1 << 20), r"bad.csv: no header line within the first 64 KiB$")):
        (tmp_path / "bad.csv").write_bytes(content)
        with pytest.raises(ConditionsError, match=message) as error:
            read_csv(tmp_path / "bad.csv")
        assert len(str(error.value)) < len(str(tmp_path)) + 120


def test_a_divergence_before_any_checkpoint_cites_none(tmp_path):
    out = cli("run", *FAST, "model=vae", "optimizer=sgd", "optimizer.lr=1e30", cwd=tmp_path)
    assert out.returncode == 4, out.stderr[-3000:]
    line = one_error_line(out)
    assert "no checkpoint had been written yet" in line and "last.ckpt" not in line


def test_ctrl_c_ends_with_one_line_saying_where_the_checkpoints_are(tmp_path):
    proc = Forked("run", *FAST, "trainer.max_epochs=100000", "hydra.run.dir=r", cwd=tmp_path)
    while not (tmp_path / "r/checkpoints/last.ckpt").exists():
        assert proc.poll() is None, proc.stderr[-3000:]
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    assert proc.wait() == 130
    line = one_error_line(subprocess.CompletedProcess([], 130, "", proc.stderr))
    assert "interrupted" in line and f"run resume={tmp_path / 'r'}" in line
