"""Trust, files: a killed save loses no checkpoint and leaves no temporary file behind, and no command
replaces a file it was not asked to (each refusal exits 2 with the user's files byte-identical)."""

from __future__ import annotations

import errno
import io
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch

from conftest import TINY, Forked, cli

FAST = [*TINY, "dataset.n=400"]


def one_error_line(out) -> str:
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-3000:]
    return lines[0]


def temporary_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


# -- a killed save ----------------------------------------------------------------------------------
def test_a_save_killed_with_the_temporary_folder_on_another_filesystem_keeps_last_ckpt(tmp_path, monkeypatch):
    from gentwin.training.checkpoint import read_checkpoint

    run = tmp_path / "run"
    out = cli("run", *FAST, f"hydra.run.dir={run}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    last = run / "checkpoints" / "last.ckpt"
    before = last.read_bytes()

    # $TMPDIR on another filesystem: a rename between two folders fails as across devices (shutil.move
    # then copies), and the process is SIGKILLed in the middle of writing last.ckpt's bytes, wherever
    # they go: the copy onto last.ckpt, or a temporary file beside it.
    def across_devices(real):
        def rename(src, dst, *args, **kwargs):
            if Path(src).absolute().parent != Path(dst).absolute().parent:
                raise OSError(errno.EXDEV, "Invalid cross-device link", str(src))
            return real(src, dst, *args, **kwargs)
        return rename

    def killed_halfway(data: bytes, f) -> None:
        f.write(data[: len(data) // 3])
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    copyfile, save = shutil.copyfile, torch.save

    def copy_killed(src, dst, *args, **kwargs):
        if Path(dst).name != "last.ckpt":
            return copyfile(src, dst, *args, **kwargs)
        with open(src, "rb") as s, open(dst, "wb") as d:
            killed_halfway(s.read(), d)

    def save_killed(obj, f, *args, **kwargs):
        if isinstance(f, io.BytesIO) or "last.ckpt" not in str(getattr(f, "name", f)):
            return save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        save(obj, buffer)
        killed_halfway(buffer.getvalue(), f)

    monkeypatch.setattr(os, "rename", across_devices(os.rename))
    monkeypatch.setattr(os, "replace", across_devices(os.replace))
    monkeypatch.setattr(shutil, "copyfile", copy_killed)
    monkeypatch.setattr(torch, "save", save_killed)
    proc = Forked("run", f"resume={run}", "trainer.max_epochs=2", cwd=tmp_path)  # inherits the patches
    assert proc.wait() == -signal.SIGKILL, proc.stderr[-3000:]
    monkeypatch.undo()

    assert last.read_bytes() == before  # the old checkpoint, whole
    assert read_checkpoint(last)["global_step"] > 0
    assert read_checkpoint(run / "checkpoints" / "best.ckpt")

    out = cli("run", f"resume={run}", "trainer.max_epochs=2", cwd=tmp_path)  # the next start cleans up
    assert out.returncode == 0, out.stderr[-3000:]
    assert temporary_files(run) == []
    assert read_checkpoint(last)["global_step"] > torch.load(io.BytesIO(before), weights_only=True)["global_step"]


def test_writes_go_through_a_temporary_file_beside_the_target(tmp_path):
    from gentwin.atomic import remove_stale, replacing, temp_for, write_text

    target = tmp_path / "metrics.json"
    write_text(target, "old")
    with pytest.raises(ZeroDivisionError), replacing(target) as f:
        f.write(b"half")
        assert temp_for(target).parent == tmp_path and temp_for(target).exists()
        raise ZeroDivisionError
    assert target.read_text() == "old" and temporary_files(tmp_path) == []
    with pytest.raises(FileExistsError):
        write_text(target, "new", new=True)
    assert target.read_text() == "old" and temporary_files(tmp_path) == []

    pid = os.fork()  # a process killed in the middle of a write leaves its temporary file ...
    if pid == 0:
        with replacing(target) as f:
            f.write(b"half")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)
    left = tmp_path / f".metrics.json.tmp-{pid}"
    assert left.read_bytes() == b"half" and target.read_text() == "old"
    mine = tmp_path / "notes.tmp-1"  # ... which alone is removed: not a user's file of a similar name
    mine.write_text("keep")
    assert remove_stale(tmp_path) == [left]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "notes.tmp-1"]


# -- nothing overwritten ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished tiny run folder (read only)."""
    root = tmp_path_factory.mktemp("trained")
    out = cli("run", *FAST, "trainer.max_epochs=2", "hydra.run.dir=run", cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    return root / "run"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_checkpoint_of_another_run_opens_no_folder_that_holds_files(tmp_path, trained):
    mine = tmp_path / "mine"
    (mine / "checkpoints").mkdir(parents=True)
    (mine / "metrics.json").write_text('{"my": "results"}')
    (mine / "samples.npz").write_bytes(b"my samples")
    (mine / "checkpoints" / "last.ckpt").write_bytes(b"my checkpoint")
    before = snapshot(mine)
    out = cli("run", *FAST, "trainer.max_epochs=3", f"ckpt_path={trained / 'checkpoints/last.ckpt'}",
              "hydra.run.dir=.", cwd=mine)
    assert out.returncode == 2, out.stderr[-3000:]
    assert f"run folder {mine} exists and is not empty" in one_error_line(out)
    assert snapshot(mine) == before and sorted(p.name for p in mine.iterdir()) == ["checkpoints", "metrics.json",
                                                                                    "samples.npz"]


def test_two_runs_given_one_folder_at_the_same_moment_one_refuses(tmp_path, monkeypatch):
    from gentwin.training import run_folder as config

    check = config._check_folder

    def check_then_the_other_run_takes_it(path, what, resume):
        check(path, what, resume)  # both runs found the folder empty; the other one claims it first
        (path / ".hydra").mkdir(parents=True)
        (path / ".hydra" / "config.yaml").write_text("the other run's")

    monkeypatch.setattr(config, "_check_folder", check_then_the_other_run_takes_it)
    out = cli("run", *FAST, "hydra.run.dir=r", cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-3000:]
    assert f"run folder {tmp_path / 'r'} was taken by another run" in one_error_line(out)
    assert snapshot(tmp_path / "r") == {".hydra/config.yaml": b"the other run's"}


@pytest.mark.parametrize("override", ["logger.name=../../x", "logger.version=../v", "+logger.sub_dir=../s"])
def test_tensorboard_folders_stay_inside_the_run_folder(tmp_path, override):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    out = cli("run", *FAST, override, cwd=work)
    assert out.returncode == 2, out.stderr[-3000:]
    key, value = override.lstrip("+").split("=")
    assert f"invalid value {key}={value}: must be a folder name inside the run folder" in one_error_line(out)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["a", "a/b"]


def test_evaluate_replaces_no_file_of_an_existing_folder(tmp_path, trained):
    (tmp_path / "models").mkdir()
    shutil.copy(trained / "checkpoints" / "best.ckpt", tmp_path / "models" / "m.ckpt")
    (tmp_path / "evaluation").mkdir()  # the user's, where a checkpoint outside a run folder is evaluated into
    (tmp_path / "evaluation" / "evaluation.json").write_text('{"my": "evaluation"}')
    (tmp_path / "evaluation" / "marginals.png").write_bytes(b"my figure")
    before = snapshot(tmp_path)
    out = cli("evaluate", "models/m.ckpt", cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-3000:]
    line = one_error_line(out)
    assert f"{tmp_path / 'evaluation'} exists and holds files" in line and "give out=<a new or empty folder>" in line
    assert snapshot(tmp_path) == before
    out = cli("evaluate", "models/m.ckpt", "out=new", cwd=tmp_path)  # as the line says
    assert out.returncode == 0, out.stderr[-3000:]
    assert {"evaluation.json", "marginals.png"} <= {p.name for p in (tmp_path / "new").iterdir()}
    assert temporary_files(tmp_path) == []


def test_export_replaces_neither_its_checkpoint_nor_a_file_without_force(tmp_path, trained):
    ckpt, mine = tmp_path / "m.ckpt", tmp_path / "mine.pt"
    shutil.copy(trained / "checkpoints" / "best.ckpt", ckpt)
    mine.write_bytes(b"my file")
    before = snapshot(tmp_path)
    for args, message in [(["--out", "m.ckpt"], "--out m.ckpt is the checkpoint being exported"),
                          (["--out", "./m.ckpt", "--force"], "--out m.ckpt is the checkpoint being exported"),
                          (["--out", "mine.pt"], "mine.pt exists: give another --out, or --force to replace it")]:
        out = cli("export-model", "m.ckpt", "--format", "torchscript", *args, cwd=tmp_path)
        assert out.returncode == 2, out.stderr[-3000:]
        assert message in one_error_line(out)
        assert snapshot(tmp_path) == before
    out = cli("export-model", "m.ckpt", "--format", "torchscript", "--out", "mine.pt", "--force", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert torch.jit.load(str(mine)) is not None and (tmp_path / "mine.pt.json").is_file()
    assert ckpt.read_bytes() == before["m.ckpt"] and temporary_files(tmp_path) == []
