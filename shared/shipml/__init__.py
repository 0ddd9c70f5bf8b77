"""shipml: a teaching kit for deploying scikit-learn models.

Importing the package is cheap on purpose: nothing heavy (scikit-learn, pandas, onnxruntime) is
imported here, so the edge runtime can use `shipml.schema` and `shipml.bundle` on a device that has
only numpy and onnxruntime.
"""

__version__ = "0.1.0"
