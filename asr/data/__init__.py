"""Data: audio I/O, manifests, features, the feature store (write and read), checks, datasets and
batches, augmentation.
"""
