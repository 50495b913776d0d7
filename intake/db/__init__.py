"""The database: engines, sessions and schema migrations, and claims that lapse."""
