"""Cross-cutting pieces: settings, database, errors, migrations."""
