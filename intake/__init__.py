"""The work that touches the world, one subpackage per stage: fetch, store, record, process,
pictures, outbox, digest, staff, ops; db and models beneath them, cli and web in front, and
app.py, the composition root, wiring them (README "Layout")."""
