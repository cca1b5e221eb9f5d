"""Synthetic labeled images from a class-conditional GAN (``pixlabel generate``).

``run.generate`` orchestrates; ``data`` reads labeled images, ``gan`` is the network and its resumable
training (``diffaugment`` augments what its discriminator sees), ``quality`` the FID / fidelity / diversity /
CAS metrics, ``report`` the HTML page.
"""
