"""The config folder and what it says about itself: the groups and their options, each file's
description (``run --help``), and the specialisations that adapt a model to a dataset."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

#: The package's config folder (``GENTWIN_CONFIGS`` points elsewhere).
CONFIGS = Path(os.environ.get("GENTWIN_CONFIGS", Path(__file__).resolve().parents[3] / "configs"))


def _flat(node: dict, prefix: str = "") -> list[tuple[str, object]]:
    """``(dotted key, value)`` of a config's leaves; a node with a ``_target_`` is one leaf, its class."""
    out = []
    for k, v in node.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and "_target_" not in v:
            out += _flat(v, key + ".")
        elif k != "defaults":
            out.append((key, v))
    return out


def _shown(value) -> str:
    return str(value["_target_"]).rsplit(".", 1)[-1] if isinstance(value, dict) else str(value)


def _own_file(path: Path, group: str) -> list[tuple[str, object]]:
    """What config file ``path`` of ``group`` sets outside its own group (``@package _global_`` files);
    a specialisation's included files (``defaults: [tpc_wgan_gp]``) first."""
    if not path.is_file() or not path.read_text().startswith("# @package _global_"):
        return []
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    included = [d for d in node.get("defaults", []) if isinstance(d, str) and d != "_self_"]
    items = [kv for d in included if group == "specialise" for kv in _own_file(path.with_name(f"{d}.yaml"), group)]
    return items + [(k, v) for k, v in _flat(node) if group == "specialise" or k.split(".")[0] != group]


def _includes(path: Path) -> list[str]:
    """The specialisation files ``path`` includes, as ``tpc_wgan_gp.yaml`` (none: ``[]``)."""
    node = OmegaConf.load(path) if path.is_file() else {}
    return [f"{d}.yaml" for d in node.get("defaults", []) if isinstance(d, str) and d != "_self_"]


def specialisations(choices: dict, cfg: DictConfig | None = None, root: Path | None = None) -> list[str]:
    """The lines a run prints at its start: what adapts its model to its dataset, and where it is set.

    That is configs/specialise/<dataset>_<model>.yaml (when it exists, with the files it includes)
    and whatever the model's own config sets outside ``model`` (the DCGAN's data transform). Given
    the composed ``cfg``, a key the experiment or command line changed afterwards shows its value in
    use and the file's one.
    """
    root = CONFIGS if root is None else root
    sources = [(root / "model" / f"{choices.get('model')}.yaml", "model"),
               (root / "specialise" / f"{choices.get('specialise')}.yaml", "specialise")]
    lines = []
    for path, group in sources:
        items = []
        for key, value in _own_file(path, group):
            text = f"{key}={_shown(value)}"
            if cfg is not None:
                used = OmegaConf.select(cfg, f"{key}._target_" if isinstance(value, dict) else key)
                used = OmegaConf.to_container(used) if isinstance(used, DictConfig | ListConfig) else used
                used = _shown({"_target_": used} if isinstance(value, dict) else used)
                if used != _shown(value):
                    text = f"{key}={used} (overridden; the file's {_shown(value)})"
            items.append(text)
        if items:
            where = path.relative_to(root.parent) if root.parent in path.parents else path
            via = f", which includes {', '.join(_includes(path))}" if group == "specialise" and _includes(path) else ""
            lines.append(f"specialised for {choices.get('dataset')}: {', '.join(items)} ({where}{via})")
    return lines


def specialisation_help(root: Path | None = None) -> list[str]:
    """``run --help``'s lines: per specialisation, the dataset and models it applies to and what it sets."""
    root = CONFIGS if root is None else root
    datasets = sorted((p.stem for p in (root / "dataset").glob("*.yaml")), key=len, reverse=True)
    models = {p.stem for p in (root / "model").glob("*.yaml")}
    by_file: dict[Path, list[str]] = {}  # the file that sets the values -> "<dataset> + <model>" using it
    for path in sorted((root / "specialise").glob("*.yaml")):
        owner = path
        while _includes(owner) and not _flat(OmegaConf.to_container(OmegaConf.load(owner))):
            owner = owner.with_name(_includes(owner)[0])  # a file that only includes another: that one's
        dataset = next((d for d in datasets if path.stem.startswith(d + "_")), None)
        model = path.stem[len(dataset) + 1:] if dataset else None
        pair = (dataset, model) if model in models else None
        by_file.setdefault(owner, []).append(pair or f"(no <dataset>_<model> pair: specialise={path.stem})")
    lines = []
    for owner, pairs in by_file.items():
        sets = ", ".join(f"{k}={_shown(v)}" for k, v in _own_file(owner, "specialise"))
        per_dataset: dict[str, list[str]] = {}
        for pair in pairs:
            if isinstance(pair, tuple):
                per_dataset.setdefault(pair[0], []).append(pair[1])
        who = [f"{d} + {', '.join(sorted(ms))}" for d, ms in per_dataset.items()]
        lines.append(f"  {'; '.join(who + [p for p in pairs if isinstance(p, str)])}: {sets} "
                     f"(configs/specialise/{owner.name})")
    for model in sorted(models):
        sets = ", ".join(f"{k}={_shown(v)}" for k, v in _own_file(root / "model" / f"{model}.yaml", "model"))
        if sets:
            lines.append(f"  any dataset + {model}: {sets} (configs/model/{model}.yaml)")
    return lines


def config_groups(root: Path = CONFIGS) -> dict[str, list[str]]:
    """``group -> options`` from the config folder (nested groups as ``schedule/lr``)."""
    groups = {}
    for d in sorted(p for p in root.rglob("*") if p.is_dir()):
        name = str(d.relative_to(root))
        if name in ("hydra", "specialise"):  # Hydra's own node; applied by themselves (listed apart)
            continue
        options = sorted(f.stem for f in d.glob("*.yaml"))
        if options:
            groups[name] = options
    return groups


_ABBREVIATIONS = ("al.", "e.g.", "i.e.", "cf.", "eq.", "eqs.", "Fig.", "vs.", "etc.")


def first_sentence(text: str) -> str:
    """``text`` up to its first full stop that ends a sentence (one followed by a capital letter and not
    after an abbreviation such as "et al."), whole: however long, never cut inside."""
    words = text.split()
    for i, word in enumerate(words[:-1]):
        if word.endswith(".") and words[i + 1][:1].isupper() and not word.endswith(_ABBREVIATIONS):
            return " ".join(words[:i + 1])
    return " ".join(words)


def first_comment(path: Path) -> str:
    """The description of a config file: the first sentence of its leading comment, without ``#``.
    The comment may run over several lines; an indented example line (``#   run ...``) ends it."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#") or line.startswith("#   "):
            if lines:
                break
            continue
        if not line.startswith("# @package"):
            lines.append(line.lstrip("#").strip())
    # a sentence that leads into an example ("..., e.g." or "...:") ends before it
    return first_sentence(" ".join(lines)).removesuffix("e.g.").rstrip(" ,:")


def wrapped(head: str, text: str, width: int = 100) -> list[str]:
    """``head`` followed by ``text`` wrapped to ``width`` columns, continuation lines under its start:
    a long description is shown whole rather than cut."""
    import textwrap

    return textwrap.wrap(text, width, initial_indent=head, subsequent_indent=" " * len(head),
                         break_long_words=False, break_on_hyphens=False) or [head.rstrip()]


def top_level_keys(path: Path = CONFIGS / "run.yaml") -> list[tuple[str, str, str]]:
    """``(key, default, description)`` of run.yaml's own keys, from the comment above each."""
    out, comment = [], []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            comment.append(line.lstrip("#").strip())
        elif line and not line.startswith((" ", "-")) and ":" in line:
            key, value = line.split(":", 1)
            if key not in ("defaults", "ckpt_path"):
                value = value.strip().replace("${hydra:runtime.choices.model}", "<model>")
                value = value.replace("${hydra:runtime.choices.dataset}", "<dataset>")
                out.append((key, value, " ".join(comment).split(". ")[0].rstrip(".")))
            comment = []
        else:
            comment = []
    return out
