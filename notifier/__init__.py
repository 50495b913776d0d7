"""What is said to people: replies and digests rendered from templates, MIME, SMTP."""
