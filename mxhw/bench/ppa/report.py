"""The PPA suite's output: the flat ``--json`` figures, the console table, and the
Markdown report with its plots."""

from __future__ import annotations

from pathlib import Path

from .. import machine_config
from .configs import ARRAY_FORMATS, ARRAY_SIZES, CONFIGS, MX_FORMATS, SOC, element_name
from .runner import (ECP5_CAPACITY, ECP5_CLK_PIN, ECP5_NEXTPNR, ECP5_PART, HARNESS_VERSION,
                     PNR_ROUTER, PNR_SEED, REQUEST_MHZ, XC7_PART)

__all__ = ["FIGURES", "HEADERS", "PLOTS", "figures", "table_rows", "run_config_info",
           "markdown", "write_report"]

FIGURES = ("luts", "ffs", "dsps", "brams")


def figures(results):
    """The flat ``--json`` figures of ``results`` (from :func:`~.runner.run`): per configuration
    ``<name>_luts``, ``_ffs``, ``_dsps``, ``_brams``, ``_fmax_mhz`` (ECP5), ``_ccu2c``,
    ``<name>_xc7_luts`` ... ``_xc7_brams``, ``_xc7_carry4``; for MAC blocks
    ``_macs_per_cycle``, ``_macs_per_cycle_per_klut``, ``_luts_per_mac`` (LUT4-eq. per
    MAC per cycle) and ``_peak_gmac_s``; for the SoC
    ``soc_ulx3s_fmax_mhz`` (and its LUT/FF/DSP/BRAM); ``<name>_nodsp_luts`` for the arrays
    measured LUT-only as well (see :func:`~.runner.run_task`); with several placer seeds
    ``_fmax_mhz`` is their median, ``_fmax_min_mhz`` / ``_fmax_max_mhz`` the spread;
    ``<name>_synth_only`` (1) marks a configuration measured by synthesis alone
    (``--synth-only``: no Fmax). A figure whose tool failed is left out."""
    fig = {}
    for r in results:
        n = r["name"]
        if "soc" in r:
            s = r["soc"]
            fig[f"{n}_fmax_mhz"] = s["fmax_mhz"]
            for k in FIGURES:
                fig[f"{n}_{k}"] = s[k]
            continue
        e, x = r.get("ecp5"), r.get("xc7")
        if e:
            for k in FIGURES:
                fig[f"{n}_{k}"] = e[k]
            fig[f"{n}_ccu2c"] = e["ccu2c"]
            if "fmax_mhz" in e:
                fig[f"{n}_fmax_mhz"] = e["fmax_mhz"]
            if e.get("synth_only"):
                fig[f"{n}_synth_only"] = 1
            if "fmax_seeds_mhz" in e:
                fig[f"{n}_fmax_min_mhz"] = min(e["fmax_seeds_mhz"].values())
                fig[f"{n}_fmax_max_mhz"] = max(e["fmax_seeds_mhz"].values())
        if x:
            for k in (*FIGURES, "carry4"):
                fig[f"{n}_xc7_{k}"] = x[k]
        if r.get("ecp5_nodsp"):
            fig[f"{n}_nodsp_luts"] = r["ecp5_nodsp"]["luts"]
        macs = CONFIGS[n].macs_per_cycle
        if macs:
            fig[f"{n}_macs_per_cycle"] = macs
            if e:
                if e["luts"]:
                    fig[f"{n}_macs_per_cycle_per_klut"] = round(macs / (e["luts"] / 1000), 3)
                    fig[f"{n}_luts_per_mac"] = round(e["luts"] / macs, 1)
                if "fmax_mhz" in e:
                    fig[f"{n}_peak_gmac_s"] = round(macs * e["fmax_mhz"] / 1000, 3)
    return fig


HEADERS = ["config", "LUT", "FF", "DSP", "BRAM", "Fmax MHz", "xc7 LUT", "xc7 FF",
           "xc7 DSP", "xc7 BRAM", "MAC/cyc", "MAC/cyc/kLUT", "GMAC/s", "LUT, no DSP"]


def table_rows(results):
    """Rows under :data:`HEADERS` (``-`` where a figure is missing or does not apply)."""
    fig = figures(results)
    rows = []
    for r in results:
        n = r["name"]

        def g(key, fmt="{}"):
            v = fig.get(f"{n}_{key}")
            if v is None and key in ("fmax_mhz", "peak_gmac_s") \
                    and r.get("ecp5", {}).get("fits") is False:
                return "n/f"
            if v is None and key in ("fmax_mhz", "peak_gmac_s") \
                    and r.get("ecp5", {}).get("synth_only"):
                return "synth"
            return "-" if v is None else fmt.format(v)
        rows.append([n, g("luts"), g("ffs"), g("dsps"), g("brams"), g("fmax_mhz", "{:.1f}"),
                     g("xc7_luts"), g("xc7_ffs"), g("xc7_dsps"), g("xc7_brams"),
                     g("macs_per_cycle", "{:g}"), g("macs_per_cycle_per_klut", "{:.2f}"),
                     g("peak_gmac_s", "{:.2f}"), g("nodsp_luts")])
    return rows


def run_config_info(versions):
    """The ``config`` entry of ``--json``: machine, tools, parts, counting rules."""
    cfg = machine_config()
    cfg.update({"yosys": versions.get("yosys"), "nextpnr_ecp5": versions.get("nextpnr_ecp5"),
                "ecp5_part": ECP5_PART, "ecp5_board": "ULX3S",
                "ecp5_nextpnr": " ".join([*ECP5_NEXTPNR, *PNR_ROUTER,
                                          f"(clk on pin {ECP5_CLK_PIN})"]),
                "requested_mhz": REQUEST_MHZ,
                "xc7_part": XC7_PART, "xc7_board": "Arty A7-35T",
                "xc7_synth": "synth_xilinx -family xc7 -flatten",
                "ecp5_luts": "LUT4 + 2 * CCU2C", "xc7_luts": "LUT1..LUT6",
                "xc7_brams": "RAMB36E1 + 0.5 * RAMB18E1", "harness": HARNESS_VERSION,
                "nextpnr_seeds": [PNR_SEED]})
    return cfg


def markdown(results, config):
    """The text of ``ppa.md``: tools, part and counting rules, the table, failures, blocks
    too large to place, and the SoC's Fmax."""
    fig = figures(results)
    seeds = config.get("nextpnr_seeds", [PNR_SEED])
    median = f", the median over placer seeds {', '.join(map(str, seeds))}" \
        if len(seeds) > 1 else ""
    lines = ["# mxhw PPA", "",
             f"ECP5: {config['ecp5_part']} ({config['ecp5_board']}), Yosys `synth_ecp5`, "
             f"nextpnr-ecp5 `{config['ecp5_nextpnr']}` at {config['requested_mhz']} MHz "
             f"requested (Fmax is the achieved frequency{median}). xc7: {config['xc7_part']} "
             f"({config['xc7_board']}), Yosys `{config['xc7_synth']}` (no place and route).",
             f"Tools: {config['yosys']}; {config['nextpnr_ecp5']}.",
             f"LUT counts: ECP5 {config['ecp5_luts']}; xc7 {config['xc7_luts']}. "
             f"BRAM: ECP5 DP16KD; xc7 {config['xc7_brams']}.",
             "Each block is measured register to register inside a harness whose registers "
             "are not counted. MAC/cyc/kLUT uses the ECP5 LUTs; GMAC/s is MAC/cyc times "
             "the ECP5 Fmax. \"LUT, no DSP\": an array that uses DSP blocks synthesised "
             "again with `synth_ecp5 -nodsp` (its multipliers in LUTs; no place and route), "
             "for a LUT comparison with the arrays that use no DSP.", ""]
    lines.append("| " + " | ".join(HEADERS) + " |")
    lines.append("|" + "---|" * len(HEADERS))
    for row in table_rows(results):
        lines.append("| " + " | ".join(row) + " |")
    for r in results:
        for t, msg in r.get("errors", {}).items():
            lines += ["", f"`{r['name']}` ({t}) failed: " + msg.splitlines()[0]]
        if r.get("ecp5", {}).get("fits") is False:
            over = ", ".join(f"{k} {r['ecp5'][k]} > {ECP5_CAPACITY[k]}"
                             for k in r["ecp5"]["over_capacity"])
            lines += ["", f"`{r['name']}`: n/f = does not fit the {config['ecp5_part']} "
                          f"({over}): synthesised, not placed."]
    soc = fig.get(f"{SOC}_fmax_mhz")
    if soc is not None:
        req = next(r["soc"]["requested_mhz"] for r in results if "soc" in r)
        lines += ["", f"Default ULX3S SoC (`python -m mxhw.build --board ulx3s`): Fmax "
                      f"{soc:.1f} MHz after place and route (requested {req:g} MHz)."]
    return "\n".join(lines) + "\n"


def _format_bars(ax, series):
    """Bars grouped by :data:`~.configs.MX_FORMATS` on ``ax``: one bar per ``(value,
    label)`` of ``series`` in each format's group where ``value(format)`` is a number."""
    width = 0.8 / len(series)
    for i, (value, label) in enumerate(series):
        xs, ys = [], []
        for j, f in enumerate(MX_FORMATS):
            v = value(f)
            if v:
                xs.append(j + (i - (len(series) - 1) / 2) * width)
                ys.append(v)
        if xs:
            ax.bar(xs, ys, width, label=label)
    ax.set_xticks(range(len(MX_FORMATS)), MX_FORMATS)


def _area_vs_format(ax, fig):
    """Per block kind, the ECP5 LUTs for each format."""
    keys = [(lambda f: f"mul_{element_name(f)}_x_{element_name(f)}", "multiplier"),
            (lambda f: f"dot_{f}", "dot product (k=32)"),
            (lambda f: f"requant_{f}", "re-quantiser (k=32)"),
            (lambda f: f"array_{f}_8x8", "8x8 array")]
    _format_bars(ax, [(lambda f, key=key: fig.get(f"{key(f)}_luts"), label)
                      for key, label in keys])
    ax.set_yscale("log")
    ax.set_ylabel("ECP5 LUTs (LUT4 + 2 CCU2C)")
    ax.set_title("Area vs format")


def _fmax_vs_array_size(ax, fig):
    for f in ARRAY_FORMATS:
        pts = [(n, fig[f"array_{f}_{n}x{n}_fmax_mhz"]) for n in ARRAY_SIZES
               if f"array_{f}_{n}x{n}_fmax_mhz" in fig]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=f)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ARRAY_SIZES, [f"{n}x{n}" for n in ARRAY_SIZES])
    ax.set_xlabel("array size")
    ax.set_ylabel("ECP5 Fmax (MHz)")
    ax.set_ylim(bottom=0)
    ax.set_title("Fmax vs array size")


def _gmacs_per_klut(ax, fig):
    def per_klut(name):
        g, luts = fig.get(f"{name}_peak_gmac_s"), fig.get(f"{name}_luts")
        return g / (luts / 1000) if g and luts else None
    series = [(lambda f: per_klut(f"dot_{f}"), "dot product")]
    series += [(lambda f, n=n: per_klut(f"array_{f}_{n}x{n}"), f"{n}x{n} array")
               for n in ARRAY_SIZES]
    _format_bars(ax, series)
    ax.set_ylabel("peak GMAC/s per 1k ECP5 LUTs")
    ax.set_title("Throughput per area vs format")


#: The report's plots: file name, figure size, drawing function ``(ax, figures)``.
PLOTS = [("area_vs_format.png", (9, 4.5), _area_vs_format),
         ("fmax_vs_array_size.png", (6, 4), _fmax_vs_array_size),
         ("gmacs_per_klut.png", (9, 4.5), _gmacs_per_klut)]


def write_report(results, outdir, config):
    """Write ``outdir/ppa.md`` (:func:`markdown`) and the PNG plots of :data:`PLOTS`:
    ``area_vs_format.png``, ``fmax_vs_array_size.png``, ``gmacs_per_klut.png``.
    Returns the paths written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "ppa.md").write_text(markdown(results, config))
    written = [outdir / "ppa.md"]
    fig = figures(results)
    for name, size, draw in PLOTS:
        p, ax = plt.subplots(figsize=size)
        draw(ax, fig)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
        p.tight_layout()
        p.savefig(outdir / name, dpi=100)
        plt.close(p)
        written.append(outdir / name)
    return written
