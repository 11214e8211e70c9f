"""edge-asd training: ST-gram + MobileFaceNet with ArcFace, DCASE evaluation, ONNX export.

PyTorch lives here and only here; the runtime (`edge_asd/`) never imports this package.
"""
