"""Handwritten digits: the embedded 8x8 set and MNIST's IDX files, judged by digit properties."""
