"""The generative families (``base.GenerativeModel`` and one module per family)."""

from __future__ import annotations


def family_class(config) -> type | None:
    """The ``GenerativeModel`` subclass a model config's ``_target_`` names, or ``None`` when it names
    none (instantiating the config then says what is wrong). Imports the family's module."""
    from hydra.utils import get_class

    from gentwin.models.base import GenerativeModel

    target = (config or {}).get("_target_")
    try:
        cls = get_class(target) if isinstance(target, str) else None
    except Exception:  # hydra raises ImportError, ValueError or its own for a bad path
        return None
    return cls if isinstance(cls, type) and issubclass(cls, GenerativeModel) else None


def batches_per_step(config) -> int:
    """Training batches one step of the model ``config`` names takes (its family's ``batches_per_step``)."""
    cls = family_class(config)
    return 1 if cls is None else cls.batches_per_step(config)
