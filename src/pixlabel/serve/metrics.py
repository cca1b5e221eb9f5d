"""Prometheus metrics of one server (own registry, so several apps in one process never collide).

Names: ``pixlabel_requests_total{endpoint,status}``, ``pixlabel_request_latency_seconds{endpoint}``
(histogram), ``pixlabel_batch_size`` (histogram of images per model call), ``pixlabel_predictions_total
{label}``, ``pixlabel_prediction_confidence`` (histogram; ``_sum / _count`` is the mean) and
``pixlabel_confidence_mean`` (mean top-1 confidence of the last 1,000 predictions: the drift signal — it
falls when inputs move away from the training data), ``pixlabel_upload_errors_total{reason}``.
"""

from __future__ import annotations

import threading
from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONF_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
WINDOW = 1000


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("pixlabel_requests", "HTTP requests by endpoint and status code",
                                ["endpoint", "status"], registry=r)
        self.latency = Histogram("pixlabel_request_latency_seconds", "request latency", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("pixlabel_batch_size", "images per model call", buckets=BATCH_BUCKETS,
                                    registry=r)
        self.predictions = Counter("pixlabel_predictions", "predicted images by top-1 class", ["label"],
                                   registry=r)
        self.confidence = Histogram("pixlabel_prediction_confidence", "top-1 confidence of each prediction",
                                    buckets=CONF_BUCKETS, registry=r)
        self.confidence_mean = Gauge("pixlabel_confidence_mean",
                                     f"mean top-1 confidence of the last {WINDOW} predictions", registry=r)
        self.upload_errors = Counter("pixlabel_upload_errors", "rejected uploads by reason", ["reason"],
                                     registry=r)
        self._recent: deque[float] = deque(maxlen=WINDOW)
        self._lock = threading.Lock()

    def observe_prediction(self, label: str, confidence: float) -> None:
        self.predictions.labels(label=label).inc()
        self.confidence.observe(confidence)
        with self._lock:
            self._recent.append(confidence)
            self.confidence_mean.set(sum(self._recent) / len(self._recent))

    def render(self) -> bytes:
        return generate_latest(self.registry)
