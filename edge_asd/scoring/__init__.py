"""Window scores (higher = more anomalous): features, the registered scorer kinds (`knn`,
`section`, `twfr`), the calibrated detector that standardises and combines them, and
offline scoring of a recording as the daemon scores it live."""
