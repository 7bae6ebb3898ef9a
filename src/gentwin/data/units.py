"""Units of a dataset's arrays and columns (``dataset.units``), checked against one vocabulary.

Units are labels: gentwin converts nothing, it carries them into figures, tables, ``sample``'s files
and the export's sidecar so that a caller knows what a number means. A misspelt unit (``Mev``) is
refused rather than carried, since a label nobody can read is worse than none.
"""

from __future__ import annotations

from gentwin.errors import ConfigError

#: The known unit strings: Geant4's energy, length, time and angle units, counts, and "" (dimensionless).
KNOWN = (
    "", "1", "eV", "keV", "MeV", "GeV", "TeV", "PeV", "MeV/c", "GeV/c", "TeV/c",
    "nm", "um", "mm", "cm", "m", "km", "ps", "ns", "us", "ms", "s",
    "rad", "mrad", "deg", "ADC", "counts", "photons", "T", "K", "kg", "g", "V", "kV", "A", "Hz",
)


def check_units(units, names: list[str] | None = None) -> dict[str, str]:
    """``dataset.units`` as a plain dict ``{name: unit}``, every unit one of ``KNOWN``.

    Args:
        units: mapping of array or column names to unit strings (``None``: none given).
        names: the names the dataset reads; a unit for any other name is refused (``None``: not checked).

    Raises:
        ConfigError: an unknown unit string, or a unit for a name the dataset does not read.
    """
    out = {str(k): "" if v is None else str(v) for k, v in dict(units or {}).items()}
    for name, unit in out.items():
        if unit not in KNOWN:
            raise ConfigError(f"dataset.units.{name}={unit!r} is not a known unit; known: "
                              f"{', '.join(u for u in KNOWN if u)} (or '' for none)")
    if names is not None:
        extra = sorted(set(out) - set(names))
        if extra:
            raise ConfigError(f"dataset.units names {extra}, which the dataset does not read; it reads {names}")
    return out


def label(name: str, units: dict[str, str]) -> str:
    """``name [unit]`` for a figure axis or a table header; ``name`` when it has no unit."""
    unit = units.get(name) or units.get(name.split("[")[0])
    return f"{name} [{unit}]" if unit else name
