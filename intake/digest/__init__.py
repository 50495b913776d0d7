"""The daily digest to the office, and the list of digests made."""
