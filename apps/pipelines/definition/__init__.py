"""Loading and validating pipeline documents in Spinnaker's pipeline JSON format.

Validation only reads the document: a pipeline exported from Spinnaker loads
unchanged, and keys this platform does not know (``id``, ``index``,
``updateTs``, ``appConfig``, ``expectedArtifacts``, ...) are kept as they are.
Every problem is reported at once, each located by an RFC 6901 JSON pointer.

The package: ``parsing`` (JSON or YAML text to a dict), ``validation`` (the whole document), with
``stage_checks`` (each stage, and cycles between them), ``parameters`` (``parameterConfig`` and an
execution's parameters), ``checks`` (what they share) and ``revisions`` (diffs and a saved pipeline's
identity). Callers import only from here.
"""

from apps.pipelines.definition.checks import unstorable_text
from apps.pipelines.definition.parameters import parameter_options, resolve_parameters
from apps.pipelines.definition.parsing import MAX_VALUES, parse_document
from apps.pipelines.definition.revisions import identity_problems, unified_diff
from apps.pipelines.definition.stage_checks import (
    MAX_REF_ID_LENGTH,
    MAX_STAGE_NAME_LENGTH,
    STAGE_FLAGS,
    stages_problems,
)
from apps.pipelines.definition.validation import (
    MAX_PIPELINE_NAME_LENGTH,
    PIPELINE_FLAGS,
    check_pipeline,
    validate_pipeline,
)

__all__ = [
    "MAX_PIPELINE_NAME_LENGTH",
    "MAX_REF_ID_LENGTH",
    "MAX_STAGE_NAME_LENGTH",
    "MAX_VALUES",
    "PIPELINE_FLAGS",
    "STAGE_FLAGS",
    "check_pipeline",
    "identity_problems",
    "parameter_options",
    "parse_document",
    "resolve_parameters",
    "stages_problems",
    "unified_diff",
    "unstorable_text",
    "validate_pipeline",
]
