"""The learned router: predicts each model's answer quality for a prompt.

Train with ``tiergate router train``; the gateway's ``learned`` strategy
loads the file with :meth:`LearnedRouter.load` and calls
:meth:`LearnedRouter.predict` / :meth:`LearnedRouter.choose`.
"""

from tiergate.learned.artifact import FORMAT_VERSION, RouterFormatError
from tiergate.learned.router import LearnedRouter, NoCandidateError

__all__ = ["FORMAT_VERSION", "LearnedRouter", "NoCandidateError", "RouterFormatError"]
