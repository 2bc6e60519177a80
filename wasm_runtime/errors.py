"""Errors a user can act on. The CLI prints their message and exits non-zero instead of a traceback."""


class PackageError(Exception):
    """The model cannot be packaged as given (malformed file, unsupported op, unfixed symbolic dim...)."""


class BundleError(Exception):
    """A bundle on disk is missing, corrupt or of an unknown format."""


class VerifyError(Exception):
    """`--verify` cannot be carried out as asked (onnxruntime rejects the model or the inputs, an unusable
    --inputs file): the bundle is neither confirmed nor refuted."""
