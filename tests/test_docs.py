"""Every code block of README.md and of the documentation (docs/) runs.

Python blocks of one page run in order in one fresh process (a later block may use the
names of an earlier one), from a temporary folder. Shell blocks: each ``sdesim`` command
runs as written; ``ls`` runs; ``pip install`` and ``pytest``/``mkdocs`` lines are skipped
(this environment is the installation under test, and the suite and the site build are
what CI runs them as). TOML blocks that name a shipped example (``# sdesim examples
NAME``) must equal it; any other TOML block must be a valid config.

Small sizes: unless ``SDESIM_DOCS_FULL=1``, path counts and iteration counts are capped
(``n_paths`` at 64, ``n_replicas`` at 40, ``n_runs`` at 2, ``steps``/``n_iters`` at 300)
and ``sdesim run``/``sweep`` get ``--paths 64`` and ``--no-progress``: the blocks' own
numbers are not asserted (the benchmarks and the statistical tests hold those), what is
tested is that every block runs as written, with the API of today.

A block preceded by ``<!-- docs-test: skip (reason) -->`` is not run (a synopsis with
placeholders, a script meant for several processes); the reason says where it is tested.

The README and getting-started pages run in the default suite; the other pages (longer:
networks, splitting, the Lévy models) are ``slow``.
"""

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FULL = os.environ.get("SDESIM_DOCS_FULL") == "1"
FAST_PAGES = ("README.md", "docs/getting-started.md", "docs/index.md", "docs/howto.md")
PAGES = sorted(["README.md"] + [str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")])

FENCE = re.compile(r"(<!-- docs-test: skip \((?P<why>[^)]*)\) -->\n)?```(?P<lang>\w+)\n"
                   r"(?P<body>.*?)^```", re.S | re.M)


def blocks(page, lang):
    text = (ROOT / page).read_text(encoding="utf-8")
    return [(m["body"], m["why"]) for m in FENCE.finditer(text) if m["lang"] == lang]


def shrink_python(code):
    if FULL:
        return code
    caps = {"n_paths": 64, "n_replicas": 40, "n_runs": 2, "steps": 300, "n_iters": 300}
    for name, cap in caps.items():
        code = re.sub(rf"\b{name}=([0-9_*]+)",
                      lambda m, c=cap: f"{m[0].split('=')[0]}=min({m[1]}, {c})", code)
    return code


def test_pages_are_found():
    assert {"README.md", "docs/getting-started.md", "docs/api.md"} <= set(PAGES)
    # the parser sees every fenced block of the pages it reads (none silently missed)
    for page in PAGES:
        text = (ROOT / page).read_text(encoding="utf-8")
        fences = len(re.findall(r"^```\w+$", text, flags=re.M))
        assert fences == sum(len(blocks(page, lang)) for lang in
                             set(re.findall(r"^```(\w+)$", text, flags=re.M))), page


def _python_pages():
    out = []
    for page in PAGES:
        if any(why is None for _, why in blocks(page, "python")):
            marks = () if page in FAST_PAGES else (pytest.mark.slow,)
            out.append(pytest.param(page, marks=marks, id=page))
    return out


@pytest.mark.parametrize("page", _python_pages())
def test_python_blocks_run(page, tmp_path):
    code = "\n\n".join(shrink_python(b) for b, why in blocks(page, "python") if why is None)
    script = tmp_path / "page.py"
    script.write_text(code, encoding="utf-8")
    env = dict(os.environ, MPLBACKEND="Agg")
    p = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                       text=True, timeout=900, env=env)
    assert p.returncode == 0, f"{page}:\n{code}\n--- stderr:\n{p.stderr[-3000:]}"


def _shell_commands(page):
    cmds = []
    for body, why in blocks(page, "bash"):
        if why is not None:
            continue
        for line in body.splitlines():
            line = line.split(" #")[0].strip()
            if not line or line.startswith("#"):
                continue
            for part in (s.strip() for s in line.split("&&")):
                words = shlex.split(part)
                if not words or words[0] in ("pip", "pytest", "mkdocs") \
                        or words[:2] == ["JAX_ENABLE_X64=1", "pytest"]:
                    continue
                cmds.append(words)
    return cmds


def _shell_pages():
    out = []
    for page in PAGES:
        if _shell_commands(page):
            marks = () if page in FAST_PAGES else (pytest.mark.slow,)
            out.append(pytest.param(page, marks=marks, id=page))
    return out


@pytest.mark.parametrize("page", _shell_pages())
def test_shell_commands_run(page, tmp_path, monkeypatch, capsys):
    # `sdesim ...` runs in this process (cli.main is the console script's function; the
    # process start is tested by tests/test_cli.py), so the commands share compilations
    from sdesim import cli

    monkeypatch.chdir(tmp_path)
    for words in _shell_commands(page):
        assert words[0] in ("sdesim", "ls"), f"{page}: no rule to test {words}"
        if words[0] == "ls":
            p = subprocess.run(words, cwd=tmp_path, capture_output=True, text=True)
            assert p.returncode == 0, f"{page}: {shlex.join(words)}\n{p.stderr}"
            continue
        argv = words[1:]
        if argv[0] in ("run", "sweep") and "--help" not in argv and not FULL:
            argv += ["--paths", "64", "--no-progress"]
        try:
            code = cli.main(argv)
        except SystemExit as e:  # --help
            code = e.code
        err = capsys.readouterr().err
        assert code == 0, f"{page}: {shlex.join(words)}\n{err[-3000:]}"


def test_toml_blocks_are_the_examples_or_valid_configs(tmp_path):
    from sdesim import cli
    from sdesim.cli.main import example_files

    examples = example_files()
    seen = 0
    for page in PAGES:
        for body, why in blocks(page, "toml"):
            if why is not None:
                continue
            seen += 1
            named = re.match(r"#\s*sdesim examples (\w+)", body)
            cfg = tomllib.loads(body)
            if named:
                assert named[1] in examples, (page, named[1])
                shipped = tomllib.loads(examples[named[1]].read_text(encoding="utf-8"))
                assert cfg == shipped, f"{page}: the {named[1]} block differs from the example"
            else:
                path = tmp_path / f"block{seen}.toml"
                path.write_text(body, encoding="utf-8")
                cli.load_config(path)
    assert seen >= 2
