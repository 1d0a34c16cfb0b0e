"""``explorer data``: inspect a data set, or build (and cache) its features for a model."""

from __future__ import annotations

import typer

from ._app import app
from ._output import Format, print_json, print_table

data_app = typer.Typer(
    help="Inspect data sets and build their cached features.", no_args_is_help=True
)
app.add_typer(data_app, name="data")


@data_app.command("inspect")
def data_inspect(
    dataset: str = typer.Argument(
        "synthetic", help="synthetic[:key=value,...], ravdess:DIR or cremad:DIR."
    ),
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
) -> None:
    """Clips, actors, per-class counts and skipped files of a data set."""
    from explorer.data import inspect_dataset

    info = inspect_dataset(dataset)
    if format is Format.json:
        print_json(info)
        return
    print_table(
        [(name, count) for name, count in info["class_counts"].items()],
        ["class", "clips"],
        title=f"{info['dataset']}: {info['clips']} clips, {info['actors']} actors, "
        f"{len(info['skipped'])} skipped",
        right_align=[1],
    )
    if info["skipped"]:
        print_table([(s["path"], s["reason"]) for s in info["skipped"]], ["skipped file", "why"])


@data_app.command("features")
def data_features(
    model: str = typer.Argument(
        ..., help="Preset, family:key=value or checkpoint whose input spec to build."
    ),
    dataset: str = typer.Option(
        "synthetic", "--dataset", help="synthetic, ravdess:DIR or cremad:DIR."
    ),
    samples_per_clip: int = typer.Option(
        1, "--samples-per-clip", help="Samples cut from each clip (Ding et al.: 6)."
    ),
    no_cache: bool = typer.Option(
        False, "--no-cache", help="Neither read nor write the feature cache."
    ),
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
) -> None:
    """Build the features MODEL consumes (cached: a second call is free); report shapes, time."""
    from explorer.data import build_features, load_dataset
    from explorer.models import resolve_model

    resolved = resolve_model(model)
    if resolved.input_spec is None:
        from explorer.errors import UsageError

        raise UsageError(
            f"MODEL {model!r} declares no input_spec: use a preset, family or checkpoint"
        )
    feats = build_features(
        load_dataset(dataset),
        resolved.input_spec,
        samples_per_clip=samples_per_clip,
        use_cache=not no_cache,
        progress=format is not Format.json,
    )
    info = {
        "model": model,
        "dataset": feats.dataset_name,
        "samples": len(feats),
        "audio_shape": list(feats.audio.shape),
        "video_shape": list(feats.video_uint8.shape),
        "from_cache": feats.from_cache,
        "seconds": round(feats.build_seconds, 3),
        "skipped": [s.to_dict() for s in feats.skipped],
    }
    if format is Format.json:
        print_json(info)
        return
    print_table(
        [(k, v) for k, v in info.items() if k != "skipped"], ["item", "value"], title="features"
    )
