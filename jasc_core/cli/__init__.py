"""The ``jasc`` command line. Plugins add command groups through the ``jasc_register_commands`` hook.

User errors (``JascError``) are printed on stderr as one short message and exit with code 2; no traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from rich.table import Table

from jasc_core.cli.devices import finetune_devices_command
from jasc_core.cli.postprocess import postprocess_app
from jasc_core.cli.predict import export_command, predict_command
from jasc_core.cli.runs import interrupted_exit, run_state_note, runs_command
from jasc_core.cli.sweeps import sweep_command, tune_command
from jasc_core.console import output_console
from jasc_core.errors import ConfigError, JascError, RunError, os_error_message

console = output_console()
err_console = output_console(stderr=True, highlight=False)

app = typer.Typer(
    name="jasc",
    help="Joint acoustic scene classification and sound event detection by multitask learning.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a recipe field: PATH=VALUE (YAML scalar or flow mapping); repeatable."),
]
RecipeArg = Annotated[Path, typer.Argument(help="Recipe YAML file.", show_default=False)]
PANEL_RECIPES = "Recipes and runs"
PANEL_PLUGINS = "Plugins"


def _version(value: bool) -> None:
    if value:
        from jasc_core import __version__

        console.print(f"jasc {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Joint acoustic scene classification and sound event detection by multitask learning."""


# -- plugins -------------------------------------------------------------------------------------------------------


@app.command("list-plugins", rich_help_panel=PANEL_PLUGINS)
def list_plugins(
    kind: Annotated[str | None, typer.Option("--kind", "-k", help="Only this kind (features, encoder, ...).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List installed components with the plugin and distribution each came from, and plugins that failed."""
    from jasc_core.contract.registry import get_registry

    registry = get_registry()
    rows = [info.as_dict() for info in registry.components(kind)]
    problems = [vars(p).copy() for p in registry.plugins.values() if p.status != "ok"]
    if as_json:
        typer.echo(json.dumps({"components": rows, "plugins": [vars(p) for p in registry.plugins.values()]}, indent=2))
        return
    table = Table(title="jasc components", title_justify="left")
    for column in ("kind", "name", "plugin", "distribution", "description", "status"):
        table.add_column(column, overflow="fold")
    for row in rows:
        dist = f"{row['distribution']} {row['version']}".strip()
        table.add_row(row["kind"], row["name"], row["plugin"], dist, row["description"], row["status"])
    console.print(table)
    for plugin in problems:
        err_console.print(f"plugin '{plugin['name']}' ({plugin['module']}): {plugin['status']}: {plugin['error']}",
                          markup=False, soft_wrap=True)


@app.command("show", rich_help_panel=PANEL_PLUGINS)
def show(
    kind: Annotated[str, typer.Argument(help="Component kind: features, encoder, head, weighting, schedule, ...")],
    name: Annotated[str, typer.Argument(help="Registered component name.")],
) -> None:
    """Show a component's documentation and its config fields (type, default, help)."""
    from jasc_core.contract.registry import get_registry

    info = get_registry().info(kind, name)
    console.print(f"[bold]{kind} '{name}'[/bold]  from plugin '{info.plugin.name}' "
                  f"({info.plugin.distribution} {info.plugin.version})".rstrip())
    doc = (info.cls.__doc__ or "").strip()
    if doc:
        console.print(doc, markup=False)
    table = Table(title="config fields", title_justify="left")
    for column in ("field", "type", "default", "help"):
        table.add_column(column, overflow="fold")
    for field, row in config_fields(info.cls.Config).items():
        table.add_row(field, row["type"], row["default"], row["help"])
    console.print(table)


def config_fields(model: type[BaseModel]) -> dict[str, dict[str, str]]:
    """Field name -> type, default and help text (with its constraints as ``≥ 0``), for listings."""
    rows = {}
    for field_name, field in model.model_fields.items():
        if field.default is not PydanticUndefined:
            default = repr(field.default)
        elif field.default_factory is not None:
            default = repr(field.default_factory())
        else:
            default = "(required)"
        constraints = constraint_text(field.metadata)
        help_text = " ".join(part for part in (field.description or "", f"[{constraints}]" if constraints else "") if part)
        rows[field_name] = {"type": _type_name(field.annotation), "default": default, "help": help_text}
    return rows


#: How annotated_types' constraint objects read in a listing, by class name -> (attribute, text before the value).
_CONSTRAINTS = {"Gt": ("gt", "> "), "Ge": ("ge", "≥ "), "Lt": ("lt", "< "), "Le": ("le", "≤ "),
                "MultipleOf": ("multiple_of", "multiple of "), "MinLen": ("min_length", "length ≥ "),
                "MaxLen": ("max_length", "length ≤ ")}


def constraint_text(metadata: list[object]) -> str:
    """Pydantic field constraints for people: ``[Ge(ge=0), Lt(lt=1)]`` -> ``≥ 0, < 1``; unknown ones as they print."""
    parts = []
    for item in metadata:
        known = _CONSTRAINTS.get(type(item).__name__)
        if known is not None and hasattr(item, known[0]):
            parts.append(known[1] + _number(getattr(item, known[0])))
        elif str(item):
            parts.append(str(item))
    return ", ".join(parts)


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _type_name(annotation: object) -> str:
    """A field's type as a user reads it: ``int > 0 | None``, ``list[int > 0]``, ``'slaney' | 'htk'``."""
    import types
    import typing

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return "None"
    if origin is typing.Annotated:
        constraints = constraint_text(list(args[1:]))
        return f"{_type_name(args[0])} {constraints}".rstrip()
    if origin is typing.Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in args)
    if origin is not None and args:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_type_name(arg) for arg in args)}]"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


# -- recipes -------------------------------------------------------------------------------------------------------


@app.command("validate", rich_help_panel=PANEL_RECIPES)
def validate(
    recipe: RecipeArg,
    set_: SetOption = None,
    print_: Annotated[bool, typer.Option("--print", help="Print the resolved recipe (every default filled in) as YAML, as a run writes it.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print the resolved recipe as JSON.")] = False,
) -> None:
    """Check a recipe against what is installed, build its model and run it once on silence (no data read)."""
    from jasc_core.model.dry_run import dry_run
    from jasc_core.recipes.model import BaseRecipeError, dump_yaml, load_recipe, resolved_dict

    if print_ and json_:
        raise ConfigError("--print and --json: choose one")
    try:
        loaded = load_recipe(recipe, set_ or [])
    except BaseRecipeError as exc:
        if print_ or json_:  # a base has no resolved form: the defaults of the blocks it lacks are unknown
            raise
        console.print(f"[green]ok[/green] {_escape(exc.summary)}", highlight=False, soft_wrap=True)
        return
    checked = dry_run(loaded)
    if print_ or json_:  # only the recipe on stdout, so it can be piped or saved
        typer.echo(json.dumps(resolved_dict(loaded), indent=2) if json_ else dump_yaml(loaded), nl=json_)
        return
    heads = ", ".join(f"{task}={block.name}" for task, block in loaded.model.heads if block is not None)
    console.print(f"[green]ok[/green] {recipe}: data={loaded.data.name} features={loaded.features.name} "
                  f"encoder={loaded.model.encoder.name} heads: {heads} weighting={loaded.weighting.name} "
                  f"schedule={loaded.schedule.name}", markup=True, highlight=False)
    console.print(checked.summary(), markup=False, highlight=False)


@app.command("schema", rich_help_panel=PANEL_RECIPES)
def schema() -> None:
    """Print the JSON Schema of recipes for the installed components (point your editor's YAML support at it)."""
    from jasc_core.recipes.model import recipe_schema

    typer.echo(json.dumps(recipe_schema(), indent=2))


@app.command("run", rich_help_panel=PANEL_RECIPES)
def run(
    recipe: Annotated[Path | None, typer.Argument(help="Recipe YAML file.", show_default=False)] = None,
    set_: SetOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder to create (default: from the recipe's output block).")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue the interrupted run in this folder.")] = None,
    require_real: Annotated[bool, typer.Option("--require-real", help="Fail instead of training on a synthetic stand-in when the recipe's real data is missing (data.require_real).")] = False,
    nproc: Annotated[int | None, typer.Option("--nproc", help="Train with N processes on this machine (torchrun, DDP; one per GPU); batch sizes are per process. See docs/distributed.md.")] = None,
) -> None:
    """Train and evaluate a recipe; everything lands in one run folder."""
    from jasc_core.recipes.model import load_recipe
    from jasc_core.runs.folder import open_run
    from jasc_core.training import run_recipe
    from jasc_core.training.launch import launch_run
    from jasc_core.training.resume import refuse_live_run
    from jasc_core.training.runtime import is_main_process

    if resume is None and recipe is None:
        raise RunError("give a RECIPE to run, or --resume RUN_DIR")
    if resume is not None:
        folder = open_run(resume)  # "not a jasc run folder" before anything reads its recipe.yaml
        if nproc is not None:
            refuse_live_run(folder, folder.read_meta())  # before torchrun starts workers for it
    if nproc is not None:  # torchrun runs this command again in each process, without --nproc; rank 0 prints
        launch_run(nproc, recipe, set_ or [], out, resume, require_real)
        return
    # Resuming reads the run's own resolved recipe unless one is given (the engine checks it did not change).
    recipe_path = recipe if recipe is not None else resume / "recipe.yaml"
    sets = list(set_ or [])
    if require_real:
        sets.append("data.require_real=true")
    loaded = None
    if recipe is not None or sets:  # else the run's own recipe (or the one stored in its checkpoint, if edited)
        try:
            loaded = load_recipe(recipe_path, sets)
        except ConfigError as exc:
            if require_real and "data.require_real: extra field" in str(exc):
                raise ConfigError(f"--require-real: the recipe's data is not a real dataset that could be missing "
                                  f"({recipe_path})") from None
            raise
    try:
        run_dir = run_recipe(loaded, recipe_path=recipe_path, out_dir=out, resume=resume)
    except KeyboardInterrupt as exc:  # Ctrl-C or another stopping signal: the run folder says interrupted
        raise interrupted_exit(exc) from None
    if is_main_process():  # a torchrun worker of rank > 0 prints nothing
        console.print(f"run folder: {run_dir}", markup=False)


@app.command("evaluate", rich_help_panel=PANEL_RECIPES)
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `jasc run`.")],
    split: Annotated[str, typer.Option("--split", help="Split to evaluate.")] = "eval",
    model: Annotated[str, typer.Option("--model", help="Model to evaluate: student, or an extra model a schedule kept (teacher).")] = "student",
) -> None:
    """Evaluate a run's best checkpoint on a split: metrics, tables, TSV predictions and plots."""
    from jasc_core.evaluation import evaluate_run

    note = run_state_note(run_dir)
    if note:
        err_console.print(note, markup=False, soft_wrap=True)
    evaluate_run(run_dir, split=split, model=model)


@app.command("profile", rich_help_panel=PANEL_RECIPES)
def profile(
    recipe: RecipeArg,
    set_: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    budget: Annotated[str | None, typer.Option("--budget", help="Check a challenge budget (dcase-t1, dcase-t4); "
                                               "exit 1 when over.")] = None,
    seconds: Annotated[float | None, typer.Option("--seconds", help="Clip length to profile (default: the "
                                                  "dataset's clip, else 10 s; a budget's own clip).")] = None,
) -> None:
    """Parameters, memory and MACs (two conventions) per component and in total, per clip and per second."""
    from jasc_core.model.complexity import profile_command

    raise typer.Exit(profile_command(recipe, set_ or [], as_json, budget, seconds))


app.command("sweep", rich_help_panel=PANEL_RECIPES)(sweep_command)
app.command("tune", rich_help_panel=PANEL_RECIPES)(tune_command)
app.command("predict", rich_help_panel=PANEL_RECIPES)(predict_command)
app.command("export", rich_help_panel=PANEL_RECIPES)(export_command)
app.add_typer(postprocess_app, name="postprocess", rich_help_panel=PANEL_RECIPES)
app.command("runs", rich_help_panel=PANEL_RECIPES)(runs_command)
app.command("finetune-devices", rich_help_panel=PANEL_RECIPES)(finetune_devices_command)


# -- entry point ---------------------------------------------------------------------------------------------------

_commands_registered = False


def build_app(argv: list[str] | None = None) -> typer.Typer:
    """The root app with every plugin's commands added (once), for the command line ``argv``.

    A core command (``jasc predict``, ``jasc run``, ...) is run without loading the plugins' commands: loading them
    imports every plugin, and with them torch, which ``jasc predict --onnx`` must not need.
    """
    global _commands_registered
    command = next((arg for arg in argv or [] if not arg.startswith("-")), None)
    if command in {info.name for info in app.registered_commands}:
        return app
    if not _commands_registered:
        from jasc_core.contract.registry import get_registry

        get_registry().register_commands(app)
        _commands_registered = True
    return app


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI, turning user errors into one line on stderr and exit code 2.

    A reader that stops early (``jasc data info X | head -2``) closes the pipe; that is not an error, so the rest of
    the output is dropped and the exit code is 0, with no traceback.
    """
    try:
        build_app(sys.argv[1:] if argv is None else argv)(args=argv, prog_name="jasc", standalone_mode=True)
    except JascError as exc:
        report_error(exc)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        _discard_stdout()
        sys.exit(0)
    except OSError as exc:  # a folder that cannot be written, a full disk: the path and the reason, no traceback
        report_error(RunError(os_error_message(exc)))
        sys.exit(2)
    except SystemExit as exc:
        # Typer's (vendored) click turns a broken pipe (EPIPE) into exit code 1 after wrapping the streams in its
        # PacifyFlushWrapper; the wrapper is how that case is told apart from other exits with code 1.
        if exc.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
            _discard_stdout()
            sys.exit(0)
        raise


def _discard_stdout() -> None:
    # The Python docs' recipe (signal module, "Note on SIGPIPE"): point stdout at devnull so that the interpreter's
    # final flush does not raise BrokenPipeError again at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (tests capture it)
        pass


def report_error(exc: JascError) -> None:
    err_console.print(f"[bold red]error:[/bold red] {_escape(str(exc))}", soft_wrap=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


if __name__ == "__main__":  # pragma: no cover
    main()
