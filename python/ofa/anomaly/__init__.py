"""Anomaly detection: the Numenta Anomaly Benchmark (NAB) scorer (numpy only) and a streaming detector built
on a small ofa forecaster (torch, imported when a model is trained).

See `ofa.anomaly.nab` for the scoring rules and conventions, `ofa.anomaly.detector` for the detector.
"""
from .detector import Detector, DetectorConfig, Scorer, ScorerConfig, score_series
from .nab import (
    NAB_PROFILES,
    Corpus,
    DataFile,
    Profile,
    build_corpus,
    detection_counts,
    file_scores,
    load_corpus,
    normalized_score,
    optimize_threshold,
    probation_rows,
    read_detector_results,
    scaled_sigmoid,
    score,
    sweep,
)

__all__ = [
    "Detector",
    "DetectorConfig",
    "Scorer",
    "ScorerConfig",
    "score_series",
    "NAB_PROFILES",
    "Corpus",
    "DataFile",
    "Profile",
    "build_corpus",
    "detection_counts",
    "file_scores",
    "load_corpus",
    "normalized_score",
    "optimize_threshold",
    "probation_rows",
    "read_detector_results",
    "scaled_sigmoid",
    "score",
    "sweep",
]
