"""Data preparation: corpora to manifests."""
