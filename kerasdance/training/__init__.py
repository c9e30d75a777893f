"""Custom training loop, self-training and hard-example mining."""
