"""Markdown tables of a benchmark result (``bench.md``), ready to paste into ``docs/benchmarks.md``."""

from __future__ import annotations

PATH_TITLES = {
    "unified": "unified: PerceptionPipeline, one encoder pass, 16-frame feature ring",
    "separate": "separate networks: teacher (Swin + 2 ResNet18 pair encoders) + steering Swin",
    "naive": "naive: unified heads, window re-encoded every frame",
}


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def _passes(calls: dict[str, float]) -> str:
    total = sum(calls.values())
    return f"{total:g}" if len(calls) < 2 else f"{total:g} ({' + '.join(f'{v:g}' for v in calls.values())})"


def streaming_markdown(section: dict) -> str:
    """Per-frame cost of the three paths and their stage breakdown."""
    paths = section["paths"]
    rows = [[PATH_TITLES.get(n, n), _passes(p.get("encoder_calls_per_frame", {})), _ms(p["ms"]["median"]),
             _ms(p["ms"]["p90"]), f"{p['ratio']:.2f}x"] for n, p in paths.items()]
    main = _table(["path", "encoder passes / frame", "median ms/frame", "p90 ms/frame", "ratio to unified"], rows)
    stages = section["stages"]
    stage_rows = [[n] + [_ms(p["stages_ms"].get(s)) for s in stages] for n, p in paths.items()]
    breakdown = _table(["path (median ms)", *stages], stage_rows)
    tasks = ", ".join(section["tasks"]) or "none"
    return f"{main}\n\nStage breakdown (segmentation tasks: {tasks}):\n\n{breakdown}"


def variants_markdown(section: dict) -> str:
    """Median / p90 ms per frame and ratio to eager fp32 for each variant and scope."""
    scopes = list(section["scopes"])
    rows = []
    for name in section["variants"]:
        note = section["notes"].get(name, {})
        row = [name]
        for scope in scopes:
            r = section["scopes"][scope].get(name)
            if r is None:
                reason = note.get("unavailable") or note.get(scope, "unavailable").removeprefix("unavailable: ")
                row.append(f"unavailable: {reason}")
            else:
                row.append(f"{_ms(r['ms']['median'])} / {_ms(r['ms']['p90'])} ({r['ratio']:.2f}x)")
        rows.append(row)
    table = _table(["variant", *(f"{s}: median / p90 ms (ratio)" for s in scopes)], rows)
    details = []
    compiled = section["notes"].get("torch.compile", {})
    if "compile_s" in compiled:
        details.append(f"torch.compile warm-up (compilation) took {compiled['compile_s']:.0f} s")
    onnx = section["notes"].get("onnxruntime", {})
    if "export_s" in onnx:
        diffs = ", ".join(f"{k} {v:.1e}" for k, v in onnx["max_abs_diff"].items() if v is not None)
        details.append(f"ONNX export + check took {onnx['export_s']:.0f} s on {onnx['provider']}; "
                       f"max |ONNX - PyTorch|: {diffs}")
    tasks = ", ".join(section["tasks"])
    return "\n\n".join([table, f"Segmentation decodes all configured tasks here ({tasks})."] + details)


def execution_markdown(section: dict) -> str:
    """The pipeline per execution setting: median / p90 ms per frame and ratio to eager fp32."""
    rows = [[name, section["notes"][name]["runner"], _ms(p["ms"]["median"]), _ms(p["ms"]["p90"]), f"{p['ratio']:.2f}x"]
            for name, p in section["paths"].items()]
    tasks = ", ".join(section["tasks"]) or "none"
    return (_table(["setting", "per-frame pass", "median ms/frame", "p90 ms/frame", "ratio to eager fp32"], rows)
            + f"\n\n`PerceptionPipeline.process`, segmentation tasks: {tasks}.")


def steering_markdown(section: dict) -> str:
    """Cost of one steering command with the feature ring and with re-encoding."""
    rows = [[name, _ms(p["ms"]["median"]), _ms(p["ms"]["p90"])] for name, p in section["paths"].items()]
    return (_table(["steering command from", "median ms", "p90 ms"], rows)
            + f"\n\nFeature ring / re-encoding: {section['buffered_vs_naive']:.3f} (median over rounds).")


def node_markdown(section: dict) -> str:
    """The ROS node against the pipeline alone on the same frames."""
    node, alone = section["node_ms"], section["pipeline_ms"]
    rows = [["node: publish -> last output over DDS", _ms(node["median"]), _ms(node["p90"])],
            ["pipeline alone", _ms(alone["median"]), _ms(alone["p90"])]]
    return (_table(["path", "median ms/frame", "p90 ms/frame"], rows)
            + f"\n\nNode overhead (median over rounds of node / pipeline - 1): {100 * section['overhead']:.1f}% at "
              f"{section['height']}x{section['width']}; frames lost in transport: {section['lost_frames']}.")


def ratios_markdown(ratios: dict[str, float]) -> str:
    """The headline ratios (lower is better)."""
    return _table(["ratio (lower is better)", "value"], [[k, f"{v:.3f}"] for k, v in ratios.items()])


def training_markdown(section: dict) -> str:
    """Step time, stage breakdown and peak memory of the training step."""
    b, mem = section["batch"], section["memory"]
    stages = ", ".join(f"{k} {_ms(v)}" for k, v in section["stages_ms"].items())
    batch = f"{b['triplets']} frame triplet(s) + {b['labelled']} labelled image(s)"
    rows = [[batch, f"{section['trainable_parameters'] / 1e6:.1f} M",
             _ms(section["ms"]["median"]), _ms(section["ms"]["p90"]), str(section["ms"]["n"]),
             f"{_ms(mem['peak_mib'])} ({_ms(mem['increase_mib'])} above the loaded models; {mem['kind']})"]]
    table = _table(["batch", "trainable params", "median ms/step", "p90 ms/step", "steps", "peak memory MiB"], rows)
    return f"{table}\n\nStage medians (ms): {stages}."


def rendering_markdown(section: dict) -> str:
    """Frames per second of the synthetic world."""
    rows = [[f"{section['height']}x{section['width']}", f"{section['frames_per_s']:.2f}", _ms(section["ms"]["median"]),
             _ms(section["ms"]["p90"]), str(section["ms"]["n"])]]
    return _table(["size", "frames/s", "median ms/frame", "p90 ms/frame", "frames"], rows)


def machine_markdown(machine: dict, settings: dict) -> str:
    """One paragraph: the machine, the libraries and the run settings."""
    v = machine["versions"]
    load = machine.get("load_average_start"), machine.get("load_average_end")
    loads = " -> ".join("/".join(f"{x:.1f}" for x in lv) for lv in load if lv)
    gpu = f", GPU {machine['gpu']} (CUDA {machine['cuda']})" if "gpu" in machine else ""
    return (f"Machine: {machine['cpu_model']}, {machine['logical_cpus']} logical CPUs, torch threads "
            f"{machine['torch_threads']}{gpu}; device `{machine['device']}`; load average (1/5/15 min) {loads}. "
            f"torch {v['torch']}, timm {v['timm']}, transformers {v['transformers']}, onnxruntime {v['onnxruntime']}. "
            f"Model `{settings['model']}` at {settings['height']}x{settings['width']}, {settings['frames']} measured "
            f"frames per path after {settings['warmup']} warm-up frame(s) and a 16-frame window fill; segmentation "
            f"tasks of the streaming paths: {', '.join(settings.get('tasks', [])) or 'none'}.")


SECTIONS = {"streaming": ("Streaming cost per frame", streaming_markdown),
            "execution": ("Pipeline execution settings", execution_markdown),
            "steering": ("Steering command: feature ring vs re-encoding", steering_markdown),
            "node": ("ROS node overhead", node_markdown),
            "variants": ("Unified path variants", variants_markdown),
            "training": ("Training step", training_markdown),
            "rendering": ("Synthetic world rendering (one thread)", rendering_markdown)}


def to_markdown(result: dict) -> str:
    """The whole result as markdown sections."""
    parts = [machine_markdown(result["machine"], result["settings"])]
    if result.get("ratios"):
        parts.append(f"### Ratios\n\n{ratios_markdown(result['ratios'])}")
    for key, (title, render) in SECTIONS.items():
        if key not in result:
            continue
        section = result[key]
        body = f"unavailable: {section['unavailable']}" if "unavailable" in section else render(section)
        parts.append(f"### {title}\n\n{body}")
    return "\n\n".join(parts) + "\n"
