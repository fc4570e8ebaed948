"""Recovery: rebuild protected groups at the recovery site from their checkpoints' manifests."""
