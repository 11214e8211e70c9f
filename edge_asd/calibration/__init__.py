"""Calibration: a machine's threshold (and memory bank) from its own normal sound.

- `false_alarms`: expected false alarms a day of a k-of-n decider, and the inverse;
- `threshold`: the gamma fit, the empirical quantile and the choice between them;
- `honest`: leave-out scores, so a memory bank (or mixture) never scores its own members;
- `scorers`: each asked scorer (section, knn, twfr) fitted on the normal recordings;
- `build`: the scorers, their fusion when several are asked, the threshold: a Calibration;
- `inputs`: the normal recordings (files checked one by one, clips joined per recording);
- `file`: `calibration.yaml` plus its `.npz`, bound to the model's sha256;
- `report`: the PNG of the scores, the fitted distribution and the threshold (for a
  fusion, each scorer's normal-score spread beside the fused one).
"""
