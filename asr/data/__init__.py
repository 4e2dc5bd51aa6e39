"""Data: audio I/O, manifests, features, the feature store (write and read), tar shards (write,
stream, batch), checks, datasets and batches, augmentation.
"""
