"""Deployment: ONNX export (:mod:`.onnx_export`, docs/deployment.md)."""
