"""The candidate factory: hyperparameters in, trained, pruned and quantized int8 model out.

Only this package (and the reference check) imports TensorFlow; it does so lazily, inside the
child process that trains a candidate, so importing `optimizer.factory` stays cheap.
"""
