"""``pixlabel review``: a small FastAPI app where people fix the doubtful labels of a workspace.

>>> from pixlabel.review import create_app  # create_app(store, ReviewSettings(...)) -> FastAPI
"""

from pixlabel.review.app import ReviewSettings, create_app

__all__ = ["ReviewSettings", "create_app"]
