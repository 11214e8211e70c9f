"""Event evidence: each event's audio, picture and payload on disk, within bounds.

layout (where files lie: the contract the page reads), store (writing and its failures),
retention (the index and its bounds), render (the PNG), listing (recent events for the
page). Import the module you need: this package imports nothing, so that config
validation can read the layout cheaply.
"""
