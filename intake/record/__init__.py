"""Recording what was seen: mails (one dedupe rule), retries and quarantine, cases and their events."""
