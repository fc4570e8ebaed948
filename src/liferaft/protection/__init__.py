"""Protection: protected servers and volumes, groups, policies, checkpoints and their manifests."""
