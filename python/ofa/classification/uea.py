"""Read UEA / sktime `.ts` classification files, written from scratch (no sktime).

    # comments
    @problemName JapaneseVowels
    @timeStamps false
    @dimensions 12
    @equalLength false
    @classLabel true 1 2 3 4 5 6 7 8 9
    @data
    1.86,1.89,...:-0.20,-0.19,...: ... :1        one case per line: dimensions split by ':', values by ',',
                                                 the class label last

`read_ts` returns the values as float32 (cases, dims, max_len), each case's length, its class as an index
into the classes @classLabel declares (in that order), and the problem name. Unequal lengths (JapaneseVowels:
7 to 29 steps) are kept as they are: a case fills its first `length` steps and the rest are 0, so nothing
is lost or invented by reading. What a model does with them is its own choice: `resample` (linear
interpolation of each case onto a common number of steps) and `pad` (the last value repeated) turn a set
into fixed-length windows; ofa.training.classifier chooses between them on a validation split of the
train file (README, "Classification").

Everything a user can get wrong is an OfaError naming the file and the line: no @classLabel line (or
`@classLabel false`), a label not declared there, a case with another number of dimensions, a value that
is not a finite number, dimensions of one case with different lengths, an empty file or one without cases.
Not supported, and refused in one line: timestamped files (`@timeStamps true`) and missing values (`?`).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ..errors import OfaError


@dataclass
class UEAData:
    values: np.ndarray    # float32 (cases, dims, max_len); steps at and after a case's length are 0
    lengths: np.ndarray   # int64 (cases,)
    labels: np.ndarray    # int64 (cases,): index into `classes`
    classes: list         # class names, in @classLabel's order
    name: str             # @problemName, else the file name without _TRAIN / _TEST.ts
    path: str

    @property
    def cases(self) -> int:
        return self.values.shape[0]

    @property
    def dims(self) -> int:
        return self.values.shape[1]

    @property
    def max_len(self) -> int:
        return self.values.shape[2]

    def subset(self, index) -> "UEAData":
        index = np.asarray(index)
        return UEAData(self.values[index], self.lengths[index], self.labels[index], self.classes, self.name, self.path)


def _flag(value: str, where: str) -> bool:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise OfaError(f"{where}: expected true or false, got {value!r}")


def _count(value: str, where: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n <= 0:
        raise OfaError(f"{where}: expected a positive whole number, got {value!r}")
    return n


def _numbers(text: str, where: str) -> list:
    out = []
    for item in text.split(","):
        item = item.strip()
        if item == "?":
            raise OfaError(f"{where}: missing value '?': missing values are not supported (fill them first)")
        try:
            value = float(item)
        except ValueError:
            raise OfaError(f"{where}: non-numeric value {item[:40]!r}") from None
        if not math.isfinite(value):
            raise OfaError(f"{where}: non-finite value {item!r}")
        out.append(value)
    return out


def read_ts(path: str) -> UEAData:
    """Read a `.ts` classification file (see the module docstring)."""
    if not os.path.isfile(path):
        raise OfaError(f"data file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise OfaError(f"{path}: not a readable text file ({exc})") from None
    header: dict = {}           # tag -> (value, line number)
    data_line = None
    cases, lengths, labels = [], [], []
    first_dims = None           # (dims, line) of the first case
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}, line {number}"
        if data_line is None:
            if not line.startswith("@"):
                raise OfaError(f"{where}: expected a header line starting with '@' (or @data) before the cases")
            spelt, _, value = line[1:].partition(" ")
            tag, value = spelt.lower(), value.strip()
            if tag == "data":
                data_line = number
                classes = _classes(path, header, number)
                index = {name: i for i, name in enumerate(classes)}
                dims_declared = _count(*_at(path, header, "dimensions")) if "dimensions" in header else None
                fixed = _count(*_at(path, header, "serieslength")) if "serieslength" in header and \
                    "equallength" in header and _flag(*_at(path, header, "equallength")) else None
                if "timestamps" in header and _flag(*_at(path, header, "timestamps")):
                    raise OfaError(f"{path}, line {header['timestamps'][1]}: timestamped .ts files "
                                   f"(@timeStamps true) are not supported")
            else:
                header[tag] = (value, number, spelt)
            continue
        parts = line.split(":")
        label, parts = parts[-1].strip(), parts[:-1]
        if not parts:
            raise OfaError(f"{where}: a case needs at least one dimension before its class label")
        if first_dims is None:
            first_dims = (len(parts), number)
            if dims_declared is not None and len(parts) != dims_declared:
                raise OfaError(f"{where}: the case has {len(parts)} dimensions, @dimensions (line "
                               f"{header['dimensions'][1]}) declares {dims_declared}")
        elif len(parts) != first_dims[0]:
            raise OfaError(f"{where}: ragged dimensions: the case has {len(parts)} dimensions, the first case "
                           f"(line {first_dims[1]}) has {first_dims[0]}")
        series = [_numbers(text, f"{where}, dimension {d + 1}") for d, text in enumerate(parts)]
        length = len(series[0])
        if any(len(s) != length for s in series):
            raise OfaError(f"{where}: the dimensions of one case have different lengths "
                           f"({', '.join(str(len(s)) for s in series)})")
        if fixed is not None and length != fixed:
            raise OfaError(f"{where}: the case has {length} steps, @seriesLength (line "
                           f"{header['serieslength'][1]}) declares {fixed}")
        if label not in index:
            raise OfaError(f"{where}: class label {label!r} is not declared in @classLabel (line "
                           f"{header['classlabel'][1]}: {' '.join(classes)})")
        cases.append(series)
        lengths.append(length)
        labels.append(index[label])
    if data_line is None:
        if not any(line.strip() and not line.strip().startswith("#") for line in lines):
            raise OfaError(f"{path}: empty file (no header, no cases" + (", only comments)" if lines else ")"))
        raise OfaError(f"{path}: no @data line: not a .ts file")
    if not cases:
        raise OfaError(f"{path}: no cases after @data (line {data_line})")
    values = np.zeros((len(cases), first_dims[0], max(lengths)), dtype=np.float32)
    for i, series in enumerate(cases):
        values[i, :, :lengths[i]] = series
    name = header["problemname"][0] if header.get("problemname", ("",))[0] else \
        os.path.basename(path).rsplit(".", 1)[0].removesuffix("_TRAIN").removesuffix("_TEST")
    return UEAData(values, np.asarray(lengths, dtype=np.int64), np.asarray(labels, dtype=np.int64),
                   classes, name, path)


def _at(path: str, header: dict, tag: str) -> tuple[str, str]:
    value, number, spelt = header[tag]
    return value, f"{path}, line {number}: @{spelt}"


def _classes(path: str, header: dict, data_line: int) -> list:
    if "classlabel" not in header:
        raise OfaError(f"{path}: no @classLabel line before @data (line {data_line}): a classification file "
                       f"declares its classes, e.g. '@classLabel true A B C'")
    value, number, _ = header["classlabel"]
    flag, _, names = value.partition(" ")
    if not _flag(flag, f"{path}, line {number}: @classLabel"):
        raise OfaError(f"{path}, line {number}: @classLabel false: the file has no class labels to train or score on")
    classes = names.split()
    if not classes:
        raise OfaError(f"{path}, line {number}: @classLabel true names no classes")
    if len(set(classes)) != len(classes):
        raise OfaError(f"{path}, line {number}: @classLabel names a class twice")
    return classes


def channel_stats(data: UEAData) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std over every case's own steps, float32 (a constant dimension gets std 1)."""
    valid = np.arange(data.max_len)[None, :] < data.lengths[:, None]             # (cases, max_len)
    x = data.values.transpose(1, 0, 2)[:, valid].astype(np.float64)             # (dims, steps)
    std = x.std(axis=1)
    return x.mean(axis=1).astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)


def relabel(data: UEAData, classes: list) -> np.ndarray:
    """`data`'s labels as indices into `classes` (a model's), matched by name; a case of a class the model
    does not know is refused."""
    index = {name: i for i, name in enumerate(classes)}
    used = sorted({data.classes[k] for k in np.unique(data.labels)}, key=data.classes.index)
    unknown = [c for c in used if c not in index]
    if unknown:
        raise OfaError(f"{data.path}: class {unknown[0]!r} is not one of the {len(classes)} classes the model was "
                       f"trained on ({' '.join(classes)})")
    return np.asarray([index[data.classes[k]] for k in data.labels], dtype=np.int64)


def resample(values: np.ndarray, lengths: np.ndarray, length: int) -> np.ndarray:
    """Each case's first lengths[i] steps linearly interpolated onto `length` evenly spaced steps (first and
    last step kept): float32 (cases, dims, length)."""
    out = np.empty((values.shape[0], values.shape[1], length), dtype=np.float32)
    grid = np.linspace(0.0, 1.0, length)
    for i, n in enumerate(lengths):
        source = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
        for d in range(values.shape[1]):
            out[i, d] = np.interp(grid, source, values[i, d, :n])
    return out


def pad(values: np.ndarray, lengths: np.ndarray, length: int) -> np.ndarray:
    """Each case's first steps, then its last value repeated, to `length` steps; a longer case keeps its
    first `length` steps (float32 (cases, dims, length))."""
    out = np.empty((values.shape[0], values.shape[1], length), dtype=np.float32)
    for i, n in enumerate(lengths):
        n = min(int(n), length)
        out[i, :, :n] = values[i, :, :n]
        out[i, :, n:] = values[i, :, n - 1:n]
    return out


LENGTHS = ("resample", "pad")  # how a case becomes a fixed window: resample / pad above


def windows(data: UEAData, channels: int, seq_len: int, lengths: str) -> np.ndarray:
    """Every case of `data` as the (C, seq_len) window a classifier reads, float32 (cases, C, seq_len): the one
    rule for PyTorch (ofa.training.classifier) and the engine (ofa.runtime.classifying) alike."""
    if data.dims != channels:
        raise OfaError(f"{data.path}: cases have {data.dims} dimensions, the classifier was trained on {channels}")
    if lengths not in LENGTHS:
        raise OfaError(f"lengths must be one of {LENGTHS}, got {lengths!r}")
    unify = resample if lengths == "resample" else pad
    return unify(data.values, data.lengths, seq_len)
