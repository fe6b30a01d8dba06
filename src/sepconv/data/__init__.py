"""Datasets: discovery of evaluation triplets (first frame, true middle frame, last frame)."""
