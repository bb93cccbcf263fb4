"""Where XLA:CPU needs another formulation than the plain jnp one, in one place: each module
computes the same values as the plain code (up to float summation order) and says why it exists.

masked_map     fn only on the masked rows of a batch (auto-resets, PPO's truncation bootstrap)
serial_linalg  QR / SVD / eigvalsh that never run batched on CPU (batched LAPACK deadlocks there)
shuffle        minibatch permutations by sorting one packed uint32 key (a fast sort path)
dense_product  a Dense product whose weight gradient uses a faster CPU layout
"""
