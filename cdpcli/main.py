"""``cdp``: applications, pipelines and executions from the command line, through the platform's REST API.

Like Spinnaker's ``spin``: every command acts as the person (or service
account) whose token it sends, so the platform decides and audits exactly as
for the web pages. Output is JSON unless ``--output table``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cdpcli import client as http
from cdpcli.client import Client, CliError, Settings

DESCRIPTION = "Applications, pipelines and executions of the platform, through its REST API, as your token's user."
COMPLETE = {"SUCCEEDED", "FAILED_CONTINUE", "TERMINAL", "CANCELED", "STOPPED", "SKIPPED"}
# The columns ``--output table`` shows for each kind of list.
COLUMNS = {
    "application": ("name", "owner", "permissions"),
    "pipeline": ("id", "application", "name", "updatedAt", "updatedBy"),
    "execution": ("id", "application", "name", "status", "startTime", "endTime"),
    "stage": ("refId", "name", "type", "status"),
}
EPILOG = """exit codes: 0 done; 1 refused (the problems are printed, one "pointer: message" a line); 2 wrong
command line or config; 3 not found (or not yours to read); 4 no token or a token refused; 5 the platform
is unreachable or failed; 6 execute --wait: the execution ended other than SUCCEEDED, or the wait timed out.

The platform and the token: --url/--token, else CDP_URL/CDP_TOKEN, else the config file (--config, else
CDP_CONFIG, else ~/.config/cdp/config), an INI file with a section per --profile (default "default"):
    [default]
    url = https://cd.example.com
    token = cdp_..."""


# --- Output -------------------------------------------------------------------------------------


def cell(value) -> str:
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return "" if value is None else str(value)


def table(rows: list[dict], columns: tuple[str, ...]) -> str:
    cells = [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(line[i]) for line in cells]) for i, column in enumerate(columns)]
    lines = ["  ".join(column.upper().ljust(widths[i]) for i, column in enumerate(columns))]
    lines += ["  ".join(value.ljust(widths[i]) for i, value in enumerate(line)) for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def show(args, data, kind: str) -> None:
    """Print an answer: JSON as the API gave it, or a table of its rows (one object: its fields, then stages)."""
    if args.output == "json" or data is None:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return
    if isinstance(data, list):
        print(table(data, COLUMNS[kind]))
        return
    scalars = [{"field": key, "value": value} for key, value in data.items() if not isinstance(value, dict | list)
               or key == "permissions"]
    print(table(scalars, ("field", "value")))
    if isinstance(data.get("stages"), list):
        print()
        print(table(data["stages"], COLUMNS["stage"]))


# --- Reading input ----------------------------------------------------------------------------------


def read_document(path: str) -> tuple[bytes, str]:
    """A pipeline file (``-`` for standard input) and its media type: YAML by its name, else JSON if it parses."""
    raw = sys.stdin.buffer.read() if path == "-" else _read(Path(path))
    if path.endswith((".yml", ".yaml")):
        return raw, "application/yaml"
    try:
        json.loads(raw)
    except ValueError:
        return raw, "application/yaml"
    return raw, "application/json"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}", http.USAGE) from None


def parameters(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--param {pair!r}: write KEY=VALUE", http.USAGE)
        values[key] = value
    return values


def find_pipeline(api: Client, args) -> dict:
    """The pipeline named by an id, or by --application and --name."""
    if args.id:
        return api.get(f"pipelines/{args.id}/")
    if not (args.application and args.name):
        raise CliError("name the pipeline by its id, or by --application and --name", http.USAGE)
    found = api.get("pipelines/", application=args.application, name=args.name).get("results", [])
    if not found:
        raise CliError(f"no pipeline {args.name!r} in application {args.application!r}", http.NOT_FOUND)
    return found[0]


# --- Commands ---------------------------------------------------------------------------------------


def application_list(api: Client, args):
    return api.all_pages("applications/", name__icontains=args.name_contains), "application"


def application_get(api: Client, args):
    return api.get(f"applications/{args.name}/"), "application"


def pipeline_list(api: Client, args):
    return api.all_pages("pipelines/", application=args.application), "pipeline"


def pipeline_get(api: Client, args):
    return find_pipeline(api, args), "pipeline"


def pipeline_save(api: Client, args):
    """Create the pipeline, or (its application already has one of that name) save a new revision of it."""
    raw, media_type = read_document(args.file)
    try:
        return api.post("pipelines/", raw, content_type=media_type), "pipeline"
    except CliError as error:
        if "PUT to it" not in str(error):  # the API's answer when the name is taken
            raise
    application, name = identity(raw, media_type)
    existing = api.get("pipelines/", application=application, name=name)["results"][0]
    return api.request("PUT", f"pipelines/{existing['id']}/", body=raw, content_type=media_type), "pipeline"


def identity(raw: bytes, media_type: str) -> tuple[str, str]:
    """The document's application and name (a YAML file is read with PyYAML, when it is installed)."""
    if media_type == "application/json":
        document = json.loads(raw)
    else:
        try:
            import yaml
        except ImportError:
            raise CliError("updating a pipeline from a YAML file needs PyYAML (pip install pyyaml); "
                           "or save it as JSON", http.USAGE) from None
        document = yaml.safe_load(raw)
    return str(document["application"]), str(document["name"])


def pipeline_delete(api: Client, args):
    pipeline = find_pipeline(api, args)
    api.request("DELETE", f"pipelines/{pipeline['id']}/")
    return {"deleted": pipeline["id"]}, "pipeline"


def pipeline_validate(api: Client, args):
    raw, media_type = read_document(args.file)
    answer = api.post("pipelines/validate/", raw, content_type=media_type)
    if not answer.get("valid"):
        problems = "\n".join(f"{item.get('pointer') or '/'}: {item.get('message')}" for item in answer["errors"])
        raise CliError(problems or "the document is not valid", http.REFUSED, problems=bool(problems))
    return answer, "pipeline"


def pipeline_execute(api: Client, args):
    body = {"application": args.application, "pipeline": args.pipeline, "parameters": parameters(args.param)}
    execution = api.post("executions/", body)
    if not args.wait:
        return execution, "execution"
    deadline = time.monotonic() + args.timeout
    while execution["status"] not in COMPLETE:
        if time.monotonic() > deadline:
            show(args, execution, "execution")
            raise CliError(f"execution {execution['id']} still {execution['status']} after {args.timeout:g} s",
                           http.NOT_SUCCEEDED)
        time.sleep(args.poll)
        execution = api.get(f"executions/{execution['id']}/")
    if execution["status"] != "SUCCEEDED":
        show(args, execution, "execution")
        raise CliError(f"execution {execution['id']} ended {execution['status']}", http.NOT_SUCCEEDED)
    return execution, "execution"


def pipeline_eval(api: Client, args):
    """An expression evaluated against one of the pipeline's executions, as its stages see it."""
    body = {"expression": args.expression, **({"stageId": args.stage} if args.stage else {})}
    return api.post(f"executions/{args.execution}/evaluate/", body), "execution"


def execution_list(api: Client, args):
    query = {"application": args.application, "pipeline": args.pipeline, "status": args.status}
    page = api.get("executions/", **query, page_size=args.limit)
    return page.get("results", []), "execution"


def execution_get(api: Client, args):
    return api.get(f"executions/{args.id}/"), "execution"


def execution_steer(action: str):
    def steer(api: Client, args):
        body: dict = {}
        if action in ("restart", "judge"):
            body["stage"] = args.stage
        if action == "cancel":
            body["reason"] = args.reason
        if action == "judge":
            body.update(decision=args.decision, input=args.input, comment=args.comment)
        return api.post(f"executions/{args.id}/{action}/", body), "execution"

    return steer


# --- The command line -------------------------------------------------------------------------------


def add_pipeline_ref(parser) -> None:
    parser.add_argument("id", nargs="?", help="The pipeline's id (or name it with --application and --name).")
    parser.add_argument("--application", help="The pipeline's application.")
    parser.add_argument("--name", help="The pipeline's name.")


def application_commands(commands) -> None:
    group = commands.add_parser("application", help="Applications.", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="The applications you may read.")
    listing.add_argument("--name-contains", help="Only those whose name contains this.")
    listing.set_defaults(run=application_list)
    get = actions.add_parser("get", help="One application, with what you may do in it.")
    get.add_argument("name")
    get.set_defaults(run=application_get)


def pipeline_commands(commands) -> None:
    group = commands.add_parser("pipeline", help="Pipelines.", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="The pipelines you may read.")
    listing.add_argument("--application", help="Only this application's.")
    listing.set_defaults(run=pipeline_list)
    for name, run, text in (("get", pipeline_get, "One pipeline with its document."),
                            ("delete", pipeline_delete, "Delete a pipeline (needs write).")):
        command = actions.add_parser(name, help=text)
        add_pipeline_ref(command)
        command.set_defaults(run=run)
    for name, run, text in (("save", pipeline_save, "Create or update a pipeline from a JSON or YAML file (- for "
                                                    "standard input); needs write."),
                            ("validate", pipeline_validate, "Check a pipeline file without saving it; exit 1 with "
                                                            "its problems if it has any.")):
        command = actions.add_parser(name, help=text)
        command.add_argument("file")
        command.set_defaults(run=run)
    execute = actions.add_parser("execute", help="Start a pipeline (needs execute).")
    execute.add_argument("application")
    execute.add_argument("pipeline", help="The pipeline's name or id.")
    execute.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="A parameter; repeat.")
    execute.add_argument("--wait", action="store_true", help="Wait for the end; exit 6 unless it SUCCEEDED.")
    execute.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS", help="With --wait (600).")
    execute.add_argument("--poll", type=float, default=2.0, metavar="SECONDS", help="With --wait: how often (2).")
    execute.set_defaults(run=pipeline_execute)
    evaluate = actions.add_parser("eval", help="Evaluate an expression against an execution (needs execute); "
                                               "exit 1 with the problem if it fails.")
    evaluate.add_argument("execution", help="The execution's id.")
    evaluate.add_argument("expression", help="Text with ${...}, e.g. '${trigger.user}'.")
    evaluate.add_argument("--stage", help="Evaluate as this stage would: its id (`id` in the execution JSON).")
    evaluate.set_defaults(run=pipeline_eval)


def execution_commands(commands) -> None:
    group = commands.add_parser("execution", help="Executions.", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="Executions you may read, newest first.")
    listing.add_argument("--application")
    listing.add_argument("--pipeline", help="The pipeline's id.")
    listing.add_argument("--status", action="append", help="Only these statuses; repeat.")
    listing.add_argument("--limit", type=int, default=20, help="How many (20).")
    listing.set_defaults(run=execution_list)
    get = actions.add_parser("get", help="An execution in Spinnaker's format.")
    get.add_argument("id")
    get.set_defaults(run=execution_get)
    for name, text in (("cancel", "Cancel a running execution."), ("pause", "Pause a running execution."),
                       ("resume", "Resume a paused execution."),
                       ("restart", "Run a finished stage and what follows again."),
                       ("judge", "Continue or stop at a manual judgment.")):
        command = actions.add_parser(name, help=text + " Needs execute.")
        command.add_argument("id", help="The execution's id.")
        if name in ("restart", "judge"):
            command.add_argument("stage", help="The stage's refId.")
        if name == "cancel":
            command.add_argument("--reason", default="")
        if name == "judge":
            command.add_argument("--decision", choices=("continue", "stop"), required=True)
            command.add_argument("--input", help="One of the stage's judgment inputs.")
            command.add_argument("--comment", help="Kept with the stage.")
        command.set_defaults(run=execution_steer(name))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="cdp", description=DESCRIPTION, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    root.add_argument("--url", help="The platform, e.g. https://cd.example.com (or CDP_URL).")
    root.add_argument("--token", help="An API token (or CDP_TOKEN); prefer the environment or the config file.")
    root.add_argument("--config", help="The config file (or CDP_CONFIG; default ~/.config/cdp/config).")
    root.add_argument("--profile", default="default", help="The config file's section (default).")
    root.add_argument("--output", "-o", choices=("json", "table"), default="json", help="json (default) or table.")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    application_commands(commands)
    pipeline_commands(commands)
    execution_commands(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        api = Client(Settings.resolve(args.url, args.token, args.config, args.profile))
        data, kind = args.run(api, args)
        show(args, data, kind)
    except CliError as error:
        print(str(error) if error.problems else f"cdp: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        return 130
    return http.OK
