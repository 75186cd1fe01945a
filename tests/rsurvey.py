"""Run R's `survey` package (Debian r-cran-survey) as the independent reference for design-based figures.

``domain_estimates`` writes each wave's respondents to CSV, runs one R script over them and returns, for
every (wave, scope, side, question, estimate), R's estimate, standard error and (for the top box)
``svyciprop(method = "beta")`` interval, the design being ``svydesign(ids = ~1 or ~PSU, strata = ~STRATUM,
weights = ~WEIGHT, nest = TRUE)`` with ``options(survey.lonely.psu = "adjust")``. A scope's domain is its
jurisdictions' valid answers, its benchmark's the other jurisdictions' (``subset()`` of the wave design).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest


def rscript() -> str:
    """The Rscript executable with `survey` loadable; skip without it, except in CI (CI=true), where the
    reference must run."""
    path = shutil.which("Rscript")
    ok = (
        path is not None
        and subprocess.run(
            [path, "-e", "suppressMessages(library(survey))"], capture_output=True, timeout=120
        ).returncode
        == 0
    )
    if not ok:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("R with the survey package is required in CI (apt-get install r-base-core r-cran-survey)")
        pytest.skip("Rscript with the survey package is not installed (make test installs r-cran-survey)")
    return path  # type: ignore[return-value]


def run_r(script: str, folder: Path) -> None:
    path = folder / "reference.R"
    path.write_text(script, encoding="utf-8")
    done = subprocess.run([rscript(), str(path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def r_vector(values: list) -> str:
    return "c(" + ", ".join(repr(v) if isinstance(v, str) else f"{float(v)!r}" for v in values) + ")"


def domain_estimates(
    folder: Path,
    frames: dict[int, pd.DataFrame],
    scopes: dict[str, list[str]],
    questions: dict[str, tuple[list[float], list[float]]],
    *,
    stratum: str = "PROV",
    cluster: str | None = None,
    benchmarks: bool = True,
    level: float = 0.95,
) -> pd.DataFrame:
    """R's estimates for every wave in ``frames`` (columns PROV, WEIGHT, the questions and the design
    columns), scope (name -> jurisdictions), side and question (name -> (valid codes, top-box codes)).

    Returns columns wave, scope, side, question, estimate ('top', 'mean' or a code), est, se, ci_low, ci_high
    (0-1 proportions)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for wave, frame in frames.items():
        files[wave] = folder / f"wave{wave}.csv"
        frame.to_csv(files[wave], index=False)
    ids = f"~{cluster}" if cluster else "~1"
    scope_list = ", ".join(f"`{name}` = {r_vector(members)}" for name, members in scopes.items())
    question_list = ", ".join(
        f"`{q}` = list(valid = {r_vector(valid)}, top = {r_vector(top)})" for q, (valid, top) in questions.items()
    )
    sides = 'c("scope", "bench")' if benchmarks else 'c("scope")'
    waves = ", ".join(f"`{w}` = {str(p)!r}" for w, p in files.items())
    script = f"""
suppressMessages(library(survey))
options(survey.lonely.psu = "adjust")
scopes <- list({scope_list})
questions <- list({question_list})
files <- list({waves})
rows <- list()
add <- function(...) rows[[length(rows) + 1]] <<- data.frame(..., stringsAsFactors = FALSE)
for (wave in names(files)) {{
  d <- read.csv(files[[wave]], stringsAsFactors = FALSE)
  for (q in names(questions)) {{
    d[[paste0(q, "_top")]] <- as.numeric(d[[q]] %in% questions[[q]]$top)
    for (code in questions[[q]]$valid) d[[paste0(q, "_c", code)]] <- as.numeric(d[[q]] %in% code)
  }}
  des <- svydesign(ids = {ids}, strata = ~{stratum}, weights = ~WEIGHT, data = d, nest = TRUE)
  for (s in names(scopes)) for (side in {sides}) for (q in names(questions)) {{
    inside <- d$PROV %in% scopes[[s]]
    if (side == "bench") inside <- !inside
    dom <- inside & (d[[q]] %in% questions[[q]]$valid)
    if (sum(dom) == 0 || (side == "bench" && s == "all")) next
    sub <- subset(des, dom)
    m <- svymean(as.formula(paste0("~", q)), sub)
    add(wave = wave, scope = s, side = side, question = q, estimate = "mean", est = coef(m)[[1]],
        se = SE(m)[[1]], ci_low = NA, ci_high = NA, degf = degf(sub))
    if (length(questions[[q]]$top) > 0) {{
      f <- as.formula(paste0("~", q, "_top"))
      m <- svymean(f, sub)
      ci <- if (sum(dom) > 1) attr(svyciprop(f, sub, method = "beta", level = {level}), "ci") else c(NA, NA)
      add(wave = wave, scope = s, side = side, question = q, estimate = "top", est = coef(m)[[1]],
          se = SE(m)[[1]], ci_low = ci[[1]], ci_high = ci[[2]], degf = degf(sub))
    }}
    if (side == "scope") for (code in questions[[q]]$valid) {{
      m <- svymean(as.formula(paste0("~", q, "_c", code)), sub)
      add(wave = wave, scope = s, side = side, question = q, estimate = as.character(code), est = coef(m)[[1]],
          se = SE(m)[[1]], ci_low = NA, ci_high = NA, degf = degf(sub))
    }}
  }}
}}
write.csv(do.call(rbind, rows), "{folder / "reference.csv"}", row.names = FALSE)
"""
    run_r(script, folder)
    result = pd.read_csv(folder / "reference.csv", dtype={"scope": str, "estimate": str})
    result["estimate"] = [e if e in ("top", "mean") else str(int(float(e))) for e in result["estimate"]]
    return result


def p_adjust(folder: Path, families: dict[str, list[float]], method: str) -> dict[str, list[float]]:
    """R's ``p.adjust(p, method)`` of each family of p-values."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["out <- list()"]
    for i, (name, values) in enumerate(families.items()):
        lines.append(f"out[[{name!r}]] <- p.adjust({r_vector(values)}, method = {method!r})")
        del i
    lines.append(
        f'writeLines(unlist(lapply(names(out), function(n) paste(n, paste(sprintf("%.17g", out[[n]]), collapse = " ")))), "{folder / "adjusted.txt"}")'
    )
    run_r("\n".join(lines) + "\n", folder)
    result = {}
    for line in (folder / "adjusted.txt").read_text().splitlines():
        name, *values = line.split(" ")
        result[name] = [float(v) for v in values]
    return result
