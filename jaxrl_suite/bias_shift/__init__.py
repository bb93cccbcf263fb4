"""Bias shift in unconditional generation (arXiv 2506.09106): data with measurable attributes,
oracle measurements, attribute classifiers and the shift P_gen - P_train with bootstrap CIs,
W1/KS/MMD^2 quality distances (`distances`) and the shift's sensitivity to the classifier's
threshold or calibration against a KDE of the density there (`sensitivity`)."""
