"""Trust: calibration, accept thresholds, label-noise checks and next-to-label suggestions.

Array-in, array-out (cleanlab's style); nothing here reads files. Import from the submodules:

* :mod:`pixlabel.trust.calibrate` — ``TemperatureScaler``, ``ConfidenceCalibrator``,
  ``expected_calibration_error``, ``reliability_table``
* :mod:`pixlabel.trust.threshold` — ``choose_threshold``, ``precision_coverage_curve``
* :mod:`pixlabel.trust.noise` — ``flag_label_issues`` (cleanlab)
* :mod:`pixlabel.trust.suggest` — ``suggest``, ``typiclust``, ``uncertainty_diversity``, ``random_baseline``

Submodules are not imported here so that ``import pixlabel.trust.threshold`` does not pay for cleanlab.
"""
