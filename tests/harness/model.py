"""Model fixtures (filled in by the training work): `exported_model`, `trained_model`."""
