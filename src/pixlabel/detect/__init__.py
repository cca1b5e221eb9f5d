"""Boxes and masks from a few boxed images: scenes, torchvision detectors, teacher–student, mAP."""
