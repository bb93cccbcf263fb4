"""Bias shift in unconditional generation (arXiv 2506.09106): data with measurable attributes,
oracle measurements, attribute classifiers and the shift P_gen - P_train with bootstrap CIs."""
