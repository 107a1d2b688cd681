"""Reads a safetensors file written by `tessera export` with only the standard library and numpy,
and checks it against what tessera computed (ExportTest.cpp writes the reference JSON): the same
tensors, bit for bit, and the same logits for a batch from an MLP forward pass done in numpy.

usage: read_safetensors.py MODEL.safetensors REFERENCE.json; prints OK or exits non-zero."""
import json
import struct
import sys

import numpy as np

DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
          "I8": "i1", "U8": "u1", "BOOL": "?"}


def read_safetensors(path):
    """The tensors (name -> numpy array) and the __metadata__ of a safetensors file, per spec."""
    with open(path, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<Q", raw[:8])
    assert (8 + length) % 8 == 0, "the data must start 8-byte aligned"
    header = json.loads(raw[8:8 + length].decode("utf-8"))
    data = raw[8 + length:]
    metadata = header.pop("__metadata__", {})
    tensors, covered = {}, 0
    for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"]):
        begin, end = entry["data_offsets"]
        assert begin == covered, f"{name}: data not contiguous"
        covered = end
        array = np.frombuffer(data[begin:end], dtype=np.dtype(DTYPES[entry["dtype"]]))
        tensors[name] = array.reshape(entry["shape"])
    assert covered == len(data), "trailing bytes after the last tensor"
    return tensors, metadata


def mlp_logits(tensors, config, x):
    """The forward pass of tessera's mlp: flatten, then linear layers with the activation between."""
    assert config["arch"] == "mlp" and config["activation"] == "relu", config
    x = x.reshape(x.shape[0], -1).astype(np.float32)
    stages = len(config["hidden"]) + 1
    for i in range(stages):
        w, b = tensors[f"stage{i}.linear.weight"], tensors[f"stage{i}.linear.bias"]
        x = x @ w.T + b
        if i + 1 < stages:
            x = np.maximum(x, 0)
    return x


def main(model_path, reference_path):
    tensors, metadata = read_safetensors(model_path)
    with open(reference_path) as f:
        reference = json.load(f)
    config = json.loads(metadata["model"])
    assert config == reference["config"], (config, reference["config"])
    assert sorted(tensors) == sorted(reference["tensors"]), (sorted(tensors), sorted(reference["tensors"]))
    for name, values in reference["tensors"].items():
        expected = np.array(values, dtype=tensors[name].dtype).reshape(tensors[name].shape)
        assert np.array_equal(tensors[name], expected), f"{name} differs"
    x = np.array(reference["input"], dtype=np.float32).reshape(reference["input_shape"])
    logits = mlp_logits(tensors, config, x)
    expected = np.array(reference["logits"], dtype=np.float32).reshape(logits.shape)
    difference = float(np.abs(logits - expected).max())
    assert np.allclose(logits, expected, rtol=1e-5, atol=1e-5), f"logits differ by {difference}"
    print(f"OK {len(tensors)} tensors, logits {list(logits.shape)} within {difference:.2e}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
