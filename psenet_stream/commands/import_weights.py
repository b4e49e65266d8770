from __future__ import annotations

import click


@click.command("import-weights")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Where to write the psenet-stream weight file.")
@click.option("-y", "--overwrite", "--force", "overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def import_weights(checkpoint: str, output: str, overwrite: bool) -> None:
    """Convert an official PSENet (VinAI) Lightning checkpoint, e.g. sice.pth or afifi.pth.

    Lightning is not needed; the file is read with torch's weights-only loader.
    """
    from pathlib import Path

    from psenet_stream.errors import OutputError
    from psenet_stream.weights_io import import_official

    if Path(output).exists() and not overwrite:
        raise OutputError(f"{output} already exists", "pass --overwrite to replace it, or choose another -o")
    meta = import_official(checkpoint, output)
    click.echo(f"wrote {output} (from {meta['imported_from']}, epoch {meta['epoch']}, step {meta['global_step']})")
