"""gentwin: deep generative surrogates for simulators and digital twins."""

__version__ = "0.1.0"
