"""Raw mails and materials on disk."""
