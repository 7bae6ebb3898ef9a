"""Toy 2-D distributions (U shape, Gaussians, moons, circles, ring, mixtures) for the model studies."""
