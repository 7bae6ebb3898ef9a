"""Figures (matplotlib, headless): shared colours and 2-D plots, images, marginals, report plots."""
