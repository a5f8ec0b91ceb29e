"""`hoist`: the command line of the embedded default and the project's tools."""

from __future__ import annotations

import asyncio
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from control_plane.documents import Declarations

app = typer.Typer(
    name="hoist",
    help="Serve LLMs and LoRA adapters behind one OpenAI-compatible gateway.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def crds(
    out: Annotated[Path, typer.Option(help="Folder to write the CRD manifests into.")] = Path(
        "k8s/crds"
    ),
    reference: Annotated[Path, typer.Option(help="Where to write the field reference.")] = Path(
        "docs/api.md"
    ),
    check: Annotated[
        bool, typer.Option(help="Exit 1 if the files differ from the types instead of writing.")
    ] = False,
) -> None:
    """Render the CustomResourceDefinitions (and docs/api.md) from the resource types."""
    from control_plane.api.crd import render_crds
    from control_plane.api.reference import render_reference

    stale: list[str] = []
    out.mkdir(parents=True, exist_ok=True)
    outputs = {out / name: text for name, text in render_crds().items()}
    outputs[reference] = render_reference()
    for path, text in outputs.items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(str(path))
        if not check:
            path.write_text(text)
    if check and stale:
        typer.echo(f"out of date: {', '.join(stale)}; run `make crds`", err=True)
        raise typer.Exit(1)


FileOption = Annotated[
    list[Path],
    typer.Option(
        "--file", "-f", help="A YAML file or a folder of them (repeatable).", show_default=False
    ),
]


def _load(files: list[Path]) -> Declarations:
    from pydantic import ValidationError

    from control_plane.documents import (
        DocumentsError,
        check_tenant_keys,
        load_paths,
        resolve_relative_sources,
    )
    from control_plane.local.settings import SupervisorSettings

    try:
        found = load_paths(files)
        check_tenant_keys(found, SupervisorSettings().gateway_tenant_keys_file)
    except DocumentsError as exc:
        for problem in exc.problems:
            typer.secho(f"error: {problem}", fg=typer.colors.RED, err=True)
        typer.echo("Nothing was started.", err=True)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        for error in exc.errors():
            name = "_".join(str(p) for p in error["loc"])
            where = name if name.isupper() else f"HOIST_{name.upper()}"
            typer.secho(f"error: {where}: {error['msg']}", fg=typer.colors.RED, err=True)
        typer.echo("Nothing was started.", err=True)
        raise typer.Exit(2) from None
    resolve_relative_sources(found)
    for skipped in found.skipped:
        typer.echo(f"note: {skipped}: not a Hoist resource, not used here", err=True)
    return found


@app.command()
def validate(files: FileOption) -> None:
    """Check the declarations as `hoist up` would, and start nothing."""
    found = _load(files)
    typer.echo(
        f"ok: {len(found.models)} models, {len(found.adapters)} adapters, "
        f"{len(found.tenants)} tenants"
    )


@app.command()
def up(
    files: FileOption,
    gateway_port: Annotated[
        int | None, typer.Option(help="Gateway port [env HOIST_GATEWAY_PORT; 8080].")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Gateway address [env HOIST_HOST; 127.0.0.1].")
    ] = None,
) -> None:
    """Serve the declared models on this machine: engines, sidecars, gateway."""
    from control_plane.local.settings import SupervisorSettings
    from control_plane.local.supervisor import Supervisor

    found = _load(files)
    settings = SupervisorSettings()
    if gateway_port is not None:
        settings.gateway_port = gateway_port
    if host is not None:
        settings.host = host
    supervisor = Supervisor(found, settings, store_dir=settings.store_dir_for(files))
    raise typer.Exit(asyncio.run(supervisor.run()))


class StatusOutput(StrEnum):
    TABLE = "table"
    WIDE = "wide"
    JSON = "json"


@app.command()
def status(
    output: Annotated[
        StatusOutput,
        typer.Option(
            "--output",
            "-o",
            help="table (fits a terminal; never cut off a terminal), wide (adds processes "
            "and URLs), or json (the raw state, for scripts).",
        ),
    ] = StatusOutput.TABLE,
    as_json: Annotated[bool, typer.Option("--json", help="Same as `--output json`.")] = False,
) -> None:
    """Show models, replicas and adapters of the running `hoist up`."""
    from control_plane.local.settings import SupervisorSettings
    from control_plane.local.status_view import fetch_state, render_state, status_console

    settings = SupervisorSettings()
    try:
        state = fetch_state(settings.run_file)
    except LookupError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    if as_json or output is StatusOutput.JSON:
        typer.echo(state.model_dump_json(by_alias=True, exclude_none=True, indent=2))
    else:
        render_state(state, status_console(), wide=output is StatusOutput.WIDE)


@app.command()
def reset(
    files: Annotated[
        list[Path] | None,
        typer.Option(
            "--file", "-f", help="The declarations whose store to forget (as given to `up`)."
        ),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Forget the stores of every declaration.")
    ] = False,
) -> None:
    """Forget the adapters added through the gateway (the store of `hoist up -f PATH`)."""
    import shutil

    from control_plane.local.preflight import read_run_file
    from control_plane.local.settings import SupervisorSettings

    settings = SupervisorSettings()
    if not files and not every:
        typer.secho("error: name the declarations (-f PATH) or --all", fg="red", err=True)
        raise typer.Exit(2)
    running = read_run_file(settings.run_file)
    if running is not None:
        typer.secho(
            f"error: a `hoist up` is running (pid {running['pid']}): stop it first, or "
            "remove an adapter while it runs with `DELETE /v1/adapters/NAME`",
            fg="red",
            err=True,
        )
        raise typer.Exit(1)
    target = settings.store_dir if every else settings.store_dir_for(files or [])
    names = sorted(p.stem for p in target.rglob("*.yaml")) if target.is_dir() else []
    shutil.rmtree(target, ignore_errors=True)
    listed = f": {', '.join(names)}" if names else ""
    typer.echo(f"forgot {len(names)} stored adapter(s){listed} ({target})")


_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@app.command(context_settings=_PASSTHROUGH, add_help_option=False)
def sim(ctx: typer.Context) -> None:
    """Run simulated vLLM engines (all arguments go to the simulator; try `hoist sim --help`)."""
    argv = [sys.executable, "-m", "data_plane.inference.simulator", *ctx.args]
    os.execv(sys.executable, argv)  # noqa: S606 - become the simulator, keep the PID


def main() -> None:
    app()


if __name__ == "__main__":
    main()
