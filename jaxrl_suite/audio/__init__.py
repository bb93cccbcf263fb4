"""FLAM data and loss core (issue 26, arXiv 2505.05335): seeded synthetic sound events, a mixer with
own-loudness frame labels, template captions, a JAX log-mel front end, the FLAM losses and the
evaluation metrics (`metrics`: frame AUROC, PSDS1/PSDS2, F1, ECE, spurious false positives, R@k); `systems` (G, S0, S1, FLAM, FLAM without L_CLIP as configs) and `train` (init, Adam, a jitted
train step, seeds as a vmap over the init key, frame scores and their metrics)."""
