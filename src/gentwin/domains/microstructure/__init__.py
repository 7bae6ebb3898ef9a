"""Grain microstructures: Voronoi micrographs and their grain statistics."""
