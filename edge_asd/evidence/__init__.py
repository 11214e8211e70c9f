"""Event evidence: each event's audio clips and picture, kept in one folder per event."""
