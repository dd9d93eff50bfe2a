"""The ve.ai custom-domain edge function (Lambda@Edge) and its packaging.

`handler` is the code that runs at the edge; `build` writes the deployment zip.
The zip holds `handler.py` at its root, so `handler.py` must never import from this package.
"""
