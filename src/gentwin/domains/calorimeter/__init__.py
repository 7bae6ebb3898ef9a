"""Calorimeter showers judged by the field's high-level observables (CaloChallenge's binning XML)."""
