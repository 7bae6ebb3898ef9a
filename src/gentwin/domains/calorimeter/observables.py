"""CaloChallenge's high-level observables of voxelised showers, vectorised over showers.

As ``code/HighLevelFeatures.py`` of github.com/CaloChallenge/homepage defines them: the total deposited
energy, the energy of each layer, and for each layer binned in alpha the energy-weighted centre in eta
and in phi, ``sum(eta E) / (sum(E) + 1e-16)``, and its width, ``sqrt(max(sum(eta^2 E) / (sum(E) + 1e-16)
- centre^2, 0))``. Added, as the field's papers show them (CaloDiffusion, CaloDREAM): the ratio of the
deposited to the incident energy and the fraction of voxels above ``threshold`` in each layer. One
matrix product per layer and observable, no loop over showers: 100,000 showers of 368 voxels take
about a second on one core.
"""

from __future__ import annotations

import numpy as np

from gentwin.domains.calorimeter.layout import Layout
from gentwin.metrics.classifier import classifier_test
from gentwin.metrics.moments import Properties

EPS = 1e-16  # CaloChallenge's: an empty layer has centre and width 0


def observables(x: np.ndarray, layout: Layout, incident: np.ndarray | None = None,
                threshold: float = 0.0) -> dict[str, np.ndarray]:
    """The high-level observables of showers ``x`` ``(N, n_voxels)`` (any shape of that many values).

    Returns:
        name -> ``(N,)`` float64: ``energy_total``, ``energy_ratio`` (with ``incident``, ``(N,)`` or
        ``(N, 1)``), per layer ``energy_layer_<id>`` and ``nonzero_<id>``, and per layer binned in alpha
        ``centre_eta_<id>``, ``centre_phi_<id>``, ``width_eta_<id>``, ``width_phi_<id>`` (in the units of
        ``r_edges``, mm in CaloChallenge).
    """
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    layout.check_width(x.shape[1])
    out = {"energy_total": x.sum(1)}
    if incident is not None:
        out["energy_ratio"] = out["energy_total"] / np.asarray(incident, np.float64).reshape(len(x))
    per_layer: dict[str, np.ndarray] = {}
    for layer, cols in zip(layout.layers, layout.slices(), strict=True):
        e = x[:, cols]
        total = e.sum(1)
        out[f"energy_layer_{layer.id}"] = total
        per_layer[f"nonzero_{layer.id}"] = (e > threshold).mean(1)
        if layer.n_alpha > 1:
            for axis, pos in zip(("eta", "phi"), layer.eta_phi(), strict=True):
                centre = (e @ pos) / (total + EPS)
                second = (e @ pos**2) / (total + EPS)
                per_layer[f"centre_{axis}_{layer.id}"] = centre
                per_layer[f"width_{axis}_{layer.id}"] = np.sqrt(np.clip(second - centre**2, 0, None))
    kinds = ("centre_eta", "centre_phi", "width_eta", "width_phi", "nonzero")
    out.update({k: per_layer[k] for kind in kinds for k in per_layer if k.rsplit("_", 1)[0] == kind})
    return out


def kind_of(name: str) -> str:
    """``energy_layer_12`` -> ``energy_layer``; ``energy_total`` -> ``energy_total``."""
    head, _, tail = name.rpartition("_")
    return head if tail.isdigit() else name


def voxel_classifier(real: Properties, fake: Properties, cond: Properties | None = None, seed: int = 0
                     ) -> dict[str, float]:
    """Metric entry: the classifier test on the voxels (CaloChallenge's "low-level" AUC), ``{"auc", "jsd"}``.

    Reads the per-sample array ``voxels`` (``(N, n_voxels)``) of the datamodule's properties: the same
    input as ``evaluate``'s ``classifier/raw_auc`` (the classifier standardizes each voxel).
    """
    return classifier_test(real["voxels"], fake["voxels"], seed=seed)


voxel_classifier.per_sample_arrays = True


def incident_energy(c: np.ndarray | None) -> np.ndarray | None:
    """The incident energy among the conditions: their only column (no ratio with none or several)."""
    if c is None:
        return None
    c = np.asarray(c).reshape(len(c), -1)
    return c[:, 0] if c.shape[1] == 1 else None


def shower_properties(x: np.ndarray, c: np.ndarray | None, layout: Layout, threshold: float = 0.0) -> dict:
    """A datamodule's key properties: the :func:`observables` and the ``voxels`` ``(N, n_voxels)``
    (a per-sample array, for :func:`voxel_classifier`)."""
    out = observables(x, layout, incident_energy(c), threshold)
    out["voxels"] = np.asarray(x, np.float64).reshape(len(x), -1)
    return out
