"""Window scores (higher = more anomalous): `section`, `knn`, `twfr`, and their fusion."""
