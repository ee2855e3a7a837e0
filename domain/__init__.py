"""The pure domain: the event catalogue, aggregates and their rules. No I/O here."""
