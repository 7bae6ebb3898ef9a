"""MPD TPC pad responses: an 8 (pad) x 16 (time bucket) image per track segment and pad row, with
the segment's features as conditions.

Reference: A. Maevskiy, F. Ratnikov, A. Zinchenko, V. Riabov, "Simulating the Time Projection Chamber
responses at the MPD detector using Generative Adversarial Networks", Eur. Phys. J. C 81, 599 (2021)
(the baseline; its public code is TPC-FastSim); docs/references.md.
"""
