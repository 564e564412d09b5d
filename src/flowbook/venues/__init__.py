"""Venue adapters: per-exchange parser, per-symbol sequencer, (later) async transport."""
