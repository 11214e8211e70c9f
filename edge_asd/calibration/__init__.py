"""Calibration: a machine's detector, threshold and detectability from its own normal sound.

- `inputs`: the normal recordings (files checked one by one, clips joined per recording);
- `record`: normal sound captured live (`--record`);
- `collect`: every window streamed through the engine and kept as features; synthetic
  faults made from a few windows (edge_asd.faults) and run through the engine too;
- `honest`: leave-out folds, so no window (or fault made from it) is scored by a scorer
  fitted on it;
- `select`: every candidate scorer judged by how well it separates synthetic faults from
  normal windows; the detector chosen (and grown into a fusion) by that judgement;
- `threshold`, `false_alarms`: the threshold for a false-alarm rate or a quantile;
- `detectability`: per fault kind, the smallest level that raises an event; gain changes;
- `build`: all of the above, from collected data to a `Calibration`;
- `schema`, `file`: `calibration.yaml` (format 2) plus its `.npz`, bound to the model;
- `report`: the printed summary and the PNG.
"""
