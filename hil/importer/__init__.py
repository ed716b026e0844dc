"""Model import: a .tflite file (or its bytes) to the bench's own `hil.graph.Graph`."""

from hil.importer.tflite_reader import load_tflite, load_tflite_bytes

__all__ = ["load_tflite", "load_tflite_bytes"]
