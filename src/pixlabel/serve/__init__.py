"""``pixlabel serve``: a FastAPI + ONNX Runtime model server with dynamic micro-batching and Prometheus metrics.

Example::

    from pixlabel.serve import ServeConfig, create_app, open_served_model
    app = create_app(open_served_model("model.onnx"), ServeConfig(max_batch=32))
    # uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from pixlabel.serve.app import ServeConfig, create_app
from pixlabel.serve.model import open_served_model

__all__ = ["ServeConfig", "create_app", "open_served_model"]
