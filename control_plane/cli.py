"""`hoist`: the command line of the embedded default and the project's tools."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

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
    check: Annotated[
        bool, typer.Option(help="Exit 1 if the files differ from the types instead of writing.")
    ] = False,
) -> None:
    """Render the CustomResourceDefinitions from the resource types."""
    from control_plane.api.crd import render_crds

    stale: list[str] = []
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_crds().items():
        path = out / name
        if path.exists() and path.read_text() == text:
            continue
        stale.append(str(path))
        if not check:
            path.write_text(text)
    if check and stale:
        typer.echo(f"out of date: {', '.join(stale)}; run `make crds`", err=True)
        raise typer.Exit(1)


_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@app.command(context_settings=_PASSTHROUGH, add_help_option=False)
def sim(ctx: typer.Context) -> None:
    """Run simulated vLLM engines (all arguments go to the simulator; try `hoist sim --help`)."""
    argv = [sys.executable, "-m", "data_plane.inference.simulator", *ctx.args]
    os.execv(sys.executable, argv)  # noqa: S606 - become the simulator, keep the PID


def main() -> None:
    app()
