"""What staff do to cases (actions), their web desk accounts, and how staff commands speak (labels)."""
