"""MoneyTracker: a small accounts-and-transactions API on SQLite (the collection's reference app)."""
