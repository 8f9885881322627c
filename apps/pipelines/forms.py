"""Forms of the pipeline pages: running a pipeline, steering an execution, editing a pipeline document."""

from __future__ import annotations

import copy
import json
import re

import yaml
from django import forms
from django.conf import settings

from apps.pipelines.definition import parameter_options, parse_document, validate_pipeline
from apps.pipelines.models import Application
from apps.pipelines.problems import InvalidDocument, Problem
from apps.pipelines.secrets.services import unknown_secret_problems
from apps.pipelines.stages.manual_judgment import CONTINUE, STOP

FORMATS = (("yaml", "YAML"), ("json", "JSON"))
PARAMETER_POINTER = re.compile(r"^/parameters/(?P<name>.+)$")
LINE_IN_MESSAGE = re.compile(r"\bline (?P<line>\d+)\b")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


class RunPipelineForm(forms.Form):
    """The parameters of a pipeline's ``parameterConfig``: a select for a parameter with options, text otherwise.

    Defaults are prefilled and required parameters are marked. The values are
    checked again by ``do_start_execution``; its problems (at
    ``/parameters/<name>``) are shown at their field with :meth:`add_problems`.
    """

    prefix = "parameter"

    def __init__(self, *args, parameter_config=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.parameter_names: dict[str, str] = {}
        for index, parameter in enumerate(parameter_config if isinstance(parameter_config, list) else []):
            if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str) or not parameter["name"]:
                continue
            if parameter["name"] in self.parameter_names.values():
                continue
            field_name = f"p{index}"
            self.parameter_names[field_name] = parameter["name"]
            self.fields[field_name] = self._field(parameter)

    @staticmethod
    def _field(parameter: dict) -> forms.Field:
        required = parameter.get("required") is True
        default = parameter.get("default")
        initial = "" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
        label = parameter.get("label") or parameter["name"]
        help_text = parameter.get("description") or ""
        options = parameter_options(parameter)
        if options:
            choices = [(value, value) for value in options]
            if not required:
                choices.insert(0, ("", "(none)"))
            return forms.ChoiceField(
                choices=choices, required=required, initial=initial, label=label, help_text=help_text
            )
        return forms.CharField(required=required, initial=initial, label=label, help_text=help_text, strip=False)

    def parameters(self) -> dict[str, str]:
        """The values entered, by parameter name (call after ``is_valid``)."""
        return {name: self.cleaned_data.get(field, "") for field, name in self.parameter_names.items()}

    def add_problems(self, problems: list[Problem]) -> None:
        """Show the service's problems at their parameter's field, the others above the form."""
        fields_by_name = {name: field for field, name in self.parameter_names.items()}
        for problem in problems:
            match = PARAMETER_POINTER.match(problem.pointer)
            field = fields_by_name.get(_unescape(match["name"])) if match else None
            self.add_error(field, problem.message if field else str(problem))


class EvaluateForm(forms.Form):
    """An expression to try against an execution, optionally as one of its stages sees it."""

    expression = forms.CharField(strip=False, widget=forms.Textarea(attrs={"rows": 2}), label="Expression")
    stage = forms.ChoiceField(required=False, label="As stage")

    def __init__(self, *args, stages=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stage"].choices = [("", "— the execution —")] + [
            (str(stage.id), f"{stage.name} ({stage.ref_id})") for stage in stages
        ]

    def clean_expression(self) -> str:
        from django.conf import settings

        value = self.cleaned_data["expression"]
        if len(value) > settings.EXPRESSION_MAX_LENGTH:
            raise forms.ValidationError(f"At most {settings.EXPRESSION_MAX_LENGTH:,} characters.")
        return value


class CancelForm(forms.Form):
    """Why an execution is canceled (optional)."""

    reason = forms.CharField(required=False, max_length=1000, label="Reason")


class JudgmentForm(forms.Form):
    """A manual judgment: continue or stop, the chosen input (one of ``judgmentInputs``) and a comment."""

    decision = forms.ChoiceField(choices=((CONTINUE, "Continue"), (STOP, "Stop")))
    judgment_input = forms.ChoiceField(required=False, label="Input", choices=())
    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, options: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["judgment_input"].choices = [("", "(none)"), *((value, value) for value in options or [])]


class RestoreForm(forms.Form):
    """Which revision to save again as the newest one."""

    revision = forms.IntegerField(min_value=1, max_value=2_147_483_647)


class DiffForm(forms.Form):
    """The two revisions to compare."""

    base = forms.IntegerField(min_value=1, max_value=2_147_483_647, label="From")
    other = forms.IntegerField(min_value=1, max_value=2_147_483_647, label="To")


def dump_document(document: dict, fmt: str) -> str:
    """A pipeline document as text in ``fmt`` (yaml or json), keys in the document's order."""
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)


class PipelineEditorForm(forms.Form):
    """The pipeline document as text, JSON or YAML; :meth:`check` parses and validates it.

    Each problem found is kept in ``problems`` as ``(pointer, message, line)``,
    the line being where the pointer leads in the text when it can be found.
    """

    text = forms.CharField(strip=False, widget=forms.Textarea(attrs={"rows": 32, "spellcheck": "false"}))
    format = forms.ChoiceField(choices=FORMATS, initial="yaml")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.problems: list[tuple[str, str, int | None]] = []
        self.document: dict | None = None

    def check(self, extra=None) -> bool:
        """Parse and validate the text; ``extra(document)`` may add problems. True when there are none."""
        if not self.is_valid():
            return False
        text = self.cleaned_data["text"]
        try:
            document = parse_document(text)
        except InvalidDocument as error:
            self.problems = [(p.pointer, p.message, _line_in_message(p.message)) for p in error.problems]
            return False
        problems = validate_pipeline(document) + unknown_secret_problems(document) + (extra(document) if extra else [])
        lines = _pointer_lines(text)
        self.problems = [(p.pointer, p.message, lines(p.pointer)) for p in problems]
        self.document = document
        return not problems

    def converted(self, fmt: str) -> str | None:
        """The text rewritten in ``fmt``, or None when it does not parse (its problems are then kept)."""
        if not self.is_valid():
            return None
        try:
            document = parse_document(self.cleaned_data["text"])
        except InvalidDocument as error:
            self.problems = [(p.pointer, p.message, _line_in_message(p.message)) for p in error.problems]
            return None
        return dump_document(document, fmt)


def parsed_or_problems(text: str) -> tuple[dict | None, list[tuple[str, str, int | None]]]:
    """The document ``text`` holds, or the reasons it does not parse as ``(pointer, message, line)``."""
    try:
        return parse_document(text), []
    except InvalidDocument as error:
        return None, [(p.pointer, p.message, _line_in_message(p.message)) for p in error.problems]


def _line_in_message(message: str) -> int | None:
    match = LINE_IN_MESSAGE.search(message)
    return int(match["line"]) if match else None


def _pointer_lines(text: str):
    """A function from a JSON pointer to the 1-based line where it (or its nearest existing parent) starts."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)  # JSON is read as YAML too: both give node positions
    except yaml.YAMLError:
        root = None

    def line(pointer: str) -> int | None:
        node = root
        if node is None:
            return None
        for token in [_unescape(part) for part in pointer.split("/")[1:]]:
            child = _child(node, token)
            if child is None:
                break
            node = child
        return node.start_mark.line + 1

    return line


def _child(node, token: str):
    """The node under ``node`` that a pointer token names: a mapping key's value or a sequence item."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == token:
                return value if isinstance(value, yaml.CollectionNode) else key
        return None
    if isinstance(node, yaml.SequenceNode) and token.isdigit() and int(token) < len(node.value):
        return node.value[int(token)]
    return None


class NewApplicationForm(forms.ModelForm):
    """A new application: the model's own validators and uniqueness decide what a name may be."""

    class Meta:
        model = Application
        fields = ["name", "owner", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


NEW_PIPELINE_SOURCES = (("blank", "Blank"), ("copy", "Copy of another pipeline"), ("import", "Import a file"))


def blank_document(application: str, name: str) -> dict:
    """A new pipeline with nothing in it yet, in Spinnaker's shape."""
    return {"application": application, "name": name, "keepWaitingPipelines": False, "limitConcurrent": True,
            "parameterConfig": [], "triggers": [], "notifications": [], "stages": []}


class NewPipelineForm(forms.Form):
    """A new pipeline in an application: blank, a copy of a pipeline the user may read, or a Spinnaker file.

    :meth:`document` builds the document to save; its application is always
    the one the form is for, and its name the one entered (or, for an import
    left unnamed, the file's).
    """

    name = forms.CharField(max_length=200, required=False, help_text="Empty for an import: the file's name.")
    source = forms.ChoiceField(choices=NEW_PIPELINE_SOURCES, initial="blank", widget=forms.RadioSelect)
    copy_of = forms.ModelChoiceField(queryset=None, required=False, label="Pipeline to copy")
    file = forms.FileField(required=False, label="Spinnaker pipeline (JSON or YAML)")

    def __init__(self, *args, application: Application, copyable, **kwargs):
        super().__init__(*args, **kwargs)
        self.application = application
        self.fields["copy_of"].queryset = copyable
        self.fields["copy_of"].label_from_instance = lambda pipeline: f"{pipeline.application.name} / {pipeline.name}"

    def clean(self) -> dict:
        data = super().clean()
        source = data.get("source")
        if source == "copy" and not data.get("copy_of"):
            self.add_error("copy_of", "Choose the pipeline to copy.")
        if source == "import" and not data.get("file"):
            self.add_error("file", "Choose the file to import.")
        if source != "import" and not (data.get("name") or "").strip():
            self.add_error("name", "This field is required.")
        upload = data.get("file")
        if source == "import" and upload and upload.size > settings.PIPELINE_DOCUMENT_MAX_BYTES:
            self.add_error("file", f"is larger than {settings.PIPELINE_DOCUMENT_MAX_BYTES} bytes")
        return data

    def document(self) -> dict:
        """The document to save (call after ``is_valid``); a file that does not parse raises InvalidDocument."""
        data, application = self.cleaned_data, self.application.name
        name = (data.get("name") or "").strip()
        if data["source"] == "copy":
            document = copy.deepcopy(data["copy_of"].definition)
            document.pop("id", None)  # a copy is a new pipeline
        elif data["source"] == "import":
            document = parse_document(data["file"].read())
            name = name or document.get("name")
        else:
            document = blank_document(application, name)
        return {**document, "application": application, "name": name}
