"""tbx-doctor sub-commands: one module each, exposing a typer-annotated `command`."""
