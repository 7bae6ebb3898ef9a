"""Leaves for a leaf-processing machine's digital twin: geometry (outline, veins, holes), half-leaf
images, post-processing back to geometry, eight key properties. Conventions: docs/leaves.md.
"""
