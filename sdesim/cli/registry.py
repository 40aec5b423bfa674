"""The registry behind the command line: which names a config section accepts, which keys
each takes, their types and which are required, all read from the package itself.

- ``[landscape] name``: the public dataclasses of :mod:`sdesim.landscapes` (callable
  losses). Keys: the constructor's arguments, plus the arguments of its ``basin()``
  method (the start and exit used when the config has no ``[exit]``), plus ``theta0``
  and ``dim`` (declared in :mod:`sdesim.cli.build`).
- ``[model] name``: the public dataclasses of :mod:`sdesim.models`, and
  :class:`sdesim.optim.Algorithm` (``name = "algorithm"``: its optimizer and
  hyperparameters come from ``sdesim.optim.OPTIMIZERS`` and their signatures).
- ``[model.noise] kind``: the factory function of each covariance model of
  :mod:`sdesim.noise` (``Isotropic`` -> ``isotropic(variance)``, ...), its arguments the
  keys; plus ``minibatch_fixed`` (declared in :mod:`sdesim.cli.build`).
- ``[exit] kind``: the public dataclasses of :mod:`sdesim.exits` (with ``outside``).

A class's config name is its ``config_name`` class attribute if it has one (``None``:
not offered in configs), else the snake case of its class name (``SGDLevy`` ->
``sgd_levy``, ``StyblinskiTang`` -> ``styblinski_tang``). A constructor argument without
a default is required. Its type comes from its annotation (``int``, ``bool``, ``str``, a
``Literal[...]`` of strings, or a field's ``metadata["choices"]``; any other numeric
annotation such as ``jax.Array`` takes a number or a list of numbers, and the constructor
checks the values); an argument without annotation takes its type from its default.
Arguments that hold functions or optax transformations are not config keys. A field that
holds a covariance model (named ``noise``, or annotated ``object``) is given as the
``[model.noise]`` table; if it has another name (the Lévy models' ``sigma``) it also
takes numbers directly, and exactly one of the two is given.

So a new model, landscape, exit or covariance model appears in ``sdesim run --help`` and
in configs without touching the CLI.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import inspect
import re
from collections.abc import Callable
from pathlib import Path

NO_DEFAULT = inspect.Parameter.empty

# Class names whose snake case is not their config name, for classes that do not (yet)
# declare ``config_name`` themselves: AdaL's name predates the registry ("adal", not
# "ada_l"); a Predicate needs a Python function, which a TOML file cannot hold.
_FALLBACK_NAMES = {"AdaL": "adal", "Predicate": None}

TYPE_NAMES = {"number": "a number", "int": "an integer", "bool": "true or false",
              "str": "a string", "vec": "a list of numbers",
              "array": "a number or a list of numbers", "table": "a table"}


@dataclasses.dataclass(frozen=True)
class Key:
    """One config key: its type (a ``TYPE_NAMES`` key or a tuple of allowed strings),
    whether it is required, the constructor argument it fills (``None``: read by the CLI
    itself) and its default (``NO_DEFAULT`` if none)."""

    name: str
    type: str | tuple
    required: bool = False
    arg: str | None = None
    default: object = NO_DEFAULT

    def describe(self):
        return expected(self.type)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One name of a section (a landscape, a model, a noise kind, an exit)."""

    name: str
    make: Callable  # the class or factory function
    keys: dict  # config key -> Key (constructor arguments and declared keys)
    basin: dict = dataclasses.field(default_factory=dict)  # landscapes: basin() args
    noise_arg: str | None = None  # the argument that takes a covariance model
    noise_alias: str | None = None  # its other config key (sigma), if not "noise"
    filled: tuple = ()  # arguments the CLI fills itself (data, fn, dim, ...)

    @property
    def label(self):
        return getattr(self.make, "__qualname__", self.name)


def expected(spec):
    if isinstance(spec, tuple):
        return "one of " + ", ".join(f'"{s}"' for s in spec)
    return TYPE_NAMES[spec]


def _is_num(v):
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_vec(v):
    return isinstance(v, list) and len(v) > 0 and all(map(_is_num, v))


def type_ok(v, spec):
    if isinstance(spec, tuple):
        return isinstance(v, str) and v in spec
    if spec == "number":
        return _is_num(v)
    if spec == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if spec == "bool":
        return isinstance(v, bool)
    if spec == "str":
        return isinstance(v, str)
    if spec == "vec":
        return _is_vec(v)
    if spec == "table":
        return isinstance(v, dict)
    if spec == "array":  # a number, a vector or a (rectangular) matrix
        return _is_num(v) or _is_vec(v) or (
            isinstance(v, list) and len(v) > 0 and all(map(_is_vec, v))
            and len({len(r) for r in v}) == 1)
    raise ValueError(f"unknown key type {spec!r}")


def snake_case(name):
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


def config_name(cls):
    if "config_name" in vars(cls):  # its own, not a parent's
        return vars(cls)["config_name"]
    return _FALLBACK_NAMES.get(cls.__name__, snake_case(cls.__name__))


# ---------------------------------------------------------------------------------------
# Types from annotations and defaults
# ---------------------------------------------------------------------------------------

_SKIP = object()  # not a config key (a function, an optax transformation)


def _annotation_text(annotation):
    if annotation is NO_DEFAULT or annotation is None:
        return None
    text = annotation if isinstance(annotation, str) else getattr(
        annotation, "__name__", str(annotation))
    m = re.fullmatch(r"(?:dataclasses\.)?InitVar\[(.*)\]", text.strip())
    return m.group(1) if m else text


def _kind(annotation, default, metadata=None):
    """A key's type from a field's metadata, its annotation, or else its default."""
    if metadata and "choices" in metadata:
        return tuple(metadata["choices"])
    text = _annotation_text(annotation)
    if text is not None:
        lit = re.fullmatch(r"(?:typing\.)?Literal\[(.*)\]", text.strip())
        if lit:
            try:
                vals = ast.literal_eval(f"({lit.group(1)},)")
                if all(isinstance(v, str) for v in vals):
                    return tuple(vals)
            except (ValueError, SyntaxError):
                pass
        if any(w in text for w in ("Callable", "GradientTransformation", "function", "dict")):
            return _SKIP  # functions, optax transformations, mappings: not TOML values
        parts = {p.strip() for p in text.split("|")} - {"None"}
        for simple in ("bool", "int", "str"):
            if parts == {simple}:
                return simple
        if parts <= {"float"}:
            return "number"
        if parts == {"object"} or any("Covariance" in p for p in parts):
            return "object"
        return "array"
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, str):
        return "str"
    if _is_num(default):
        return "number"
    return "array"  # no default, or None: numbers the callee checks


def _params(make):
    """(name, annotation, default, metadata) of each argument of a class or function:
    a dataclass's fields (static ones included) and init-only variables, in order."""
    out = []
    fields = getattr(make, "__dataclass_fields__", {})
    for p in inspect.signature(make).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name.startswith("_"):
            continue
        f = fields.get(p.name)
        ann = f.type if f is not None else p.annotation
        out.append((p.name, ann, p.default, dict(f.metadata) if f is not None else {}))
    return out


def keys_of(make, *, filled=(), choices=None, noise=True):
    """Config keys from a constructor's or factory's arguments (see the module doc).
    Returns (keys, noise_arg, noise_alias)."""
    keys, noise_arg, alias = {}, None, None
    for name, ann, default, meta in _params(make):
        if name in filled:
            continue
        kind = _kind(ann, default, meta)
        if kind is _SKIP:
            continue
        if choices and name in choices and kind == "str":
            kind = tuple(choices[name])
        required = default is NO_DEFAULT
        if noise and (kind == "object" or name == "noise"):
            noise_arg = name
            if name == "noise":
                keys[name] = Key(name, "table", required, name, default)
            else:  # e.g. sigma: numbers, or a covariance model from [model.noise]
                alias = name
                keys[name] = Key(name, "array", False, name, default)
                keys["noise"] = Key("noise", "table", False, name, NO_DEFAULT)
            continue
        if kind == "object":
            kind = "array"
        keys[name] = Key(name, kind, required, name, default)
    return keys, noise_arg, alias


def _public_dataclasses(module, want=None):
    out = []
    for name, obj in vars(module).items():
        if (inspect.isclass(obj) and not name.startswith("_") and obj.__module__ ==
                module.__name__ and dataclasses.is_dataclass(obj)
                and not inspect.isabstract(obj) and (want is None or want(obj))):
            out.append(obj)
    return out


def _named(classes):
    out = {}
    for cls in classes:
        name = config_name(cls)
        if name is not None:
            out.setdefault(name, cls)
    return out


# ---------------------------------------------------------------------------------------
# The registry (built once, on first use)
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Registry:
    landscapes: dict
    models: dict
    noises: dict
    exits: dict


@functools.cache
def registry():
    """Every section's entries, read from the package (see the module doc)."""
    import importlib

    from sdesim import exits, landscapes, models, noise, optim

    _b = importlib.import_module("sdesim.cli.build")  # the module, not cli.build()

    lands = {}
    def loss_class(c):  # instances are losses θ -> scalar
        return any("__call__" in vars(k) for k in c.__mro__[:-1])

    for name, cls in _named(_public_dataclasses(landscapes, loss_class)).items():
        keys, _, _ = keys_of(cls, noise=False)
        basin = {}
        if callable(getattr(cls, "basin", None)):
            bkeys, _, _ = keys_of(cls.basin, choices=_b.BASIN_CHOICES, noise=False)
            basin = {k: v for k, v in bkeys.items() if k != "self"}
        for k, key in _b.LANDSCAPE_KEYS.items():
            keys.setdefault(k, key)
        lands[name] = Entry(name, cls, keys, basin)

    mods = {}
    for name, cls in _named(_public_dataclasses(models)).items():
        keys, arg, alias = keys_of(cls)
        mods[name] = Entry(name, cls, keys, noise_arg=arg, noise_alias=alias)
    for name, cls in _named(_public_dataclasses(optim)).items():
        if name != _b.ALGORITHM:
            continue
        keys, arg, alias = keys_of(cls, filled=_b.ALGORITHM_FILLED)
        keys = {**keys, **_b.algorithm_keys(optim)}
        mods[name] = Entry(name, cls, keys, noise_arg=arg, noise_alias=alias,
                           filled=_b.ALGORITHM_FILLED)

    noises = {}
    for cls in _public_dataclasses(noise):
        name = snake_case(cls.__name__)
        factory = getattr(noise, name, None)
        if inspect.isfunction(factory) and factory.__module__ == noise.__name__:
            keys, _, _ = keys_of(factory, filled=_b.NOISE_FILLED, noise=False)
            filled = tuple(p for p in inspect.signature(factory).parameters
                           if p in _b.NOISE_FILLED)
            noises[name] = Entry(name, factory, keys, filled=filled)
    for name, entry in _b.declared_noises().items():
        noises.setdefault(name, entry)

    exs = {}
    for name, cls in _named(_public_dataclasses(
            exits, lambda c: callable(getattr(c, "outside", None)))).items():
        keys, _, _ = keys_of(cls, filled=_b.EXIT_FILLED, noise=False)
        if "center" in keys:  # default: the start theta0 (a network's minimum)
            keys["center"] = dataclasses.replace(keys["center"], required=False)
        if "fn" in inspect.signature(cls).parameters:
            keys.update(_b.LEVEL_KEYS)
        exs[name] = Entry(name, cls, keys, filled=tuple(
            f for f in _b.EXIT_FILLED if f in inspect.signature(cls).parameters))
    return Registry(lands, mods, noises, exs)


def help_lines():
    """One line per entry for ``sdesim run --help`` (``*`` = required)."""
    import importlib

    _b = importlib.import_module("sdesim.cli.build")  # the module, not cli.build()

    reg = registry()

    def fmt(keys, alias=None, alias_required=False):
        out = []
        for k in keys.values():
            if alias is not None and k.name == "noise":
                continue
            t = k.type
            tag = (" (" + "|".join(t) + ")" if isinstance(t, tuple)
                   else " ([model.noise] table)" if t == "table" else "")
            if k.name == alias:
                tag = " (or a [model.noise] table)"
            star = k.required or (k.name == alias and alias_required)
            out.append(f"{k.name}{'*' if star else ''}{tag}")
        return ", ".join(out) or "(no keys)"

    lines = []
    for name, e in reg.landscapes.items():
        own = {k: v for k, v in e.keys.items() if v.arg is not None}
        line = f"[landscape] name = {name}: {fmt(own)}"
        if e.basin:
            line += f"; basin (without [exit]): {fmt(e.basin)}"
        else:
            line += "; no basin: needs [exit] and theta0"
        lines.append(line)
    lines.append("[landscape] every landscape: " + ", ".join(
        f"{k} ({v})" for k, v in _b.LANDSCAPE_KEY_HELP.items()))
    lines.append('[landscape] target = "module:function" or "file.py:function" (instead of '
                 'name: your own problem, e.g. a network; the function gets [landscape.args] '
                 'and returns loss, params (any pytree), and optionally per_sample + data, '
                 'eval_loss, exit); [exit] center defaults to the start, level_set takes '
                 'above_start')
    for name, e in reg.models.items():
        alias = e.noise_alias
        lines.append(f"[model] name = {name}: " + fmt(
            e.keys, alias, alias is not None and e.keys[alias].default is NO_DEFAULT))
    for name, e in reg.noises.items():
        lines.append(f"[model.noise] kind = {name}: {fmt(e.keys)}")
    for name, e in reg.exits.items():
        lines.append(f"[exit] kind = {name}: {fmt(e.keys)}")
    direct = [k for k in _b.RUN if k not in _b.AMS_RUN and k != "method"]
    lines.append(f"[run] {', '.join(direct)}  (block = paths per saved block, the resume "
                 f"unit)")
    lines.append(f"[run] method = {' | '.join(_b.METHODS)} (default direct); method = ams "
                 f"(sd.escape_ams): {', '.join(_b.AMS_RUN)}, with dt, t_max (the longest "
                 f"segment), seed, bridge; n_paths, lanes, block are not used")
    lines.append('[sweep] "SECTION.KEY" = [values...] (lists zipped; cross = ["KEY"] for '
                 "all combinations)")
    lines.append("(* = required; numbers may be lists where the constructor takes an array)")
    return lines


# ---------------------------------------------------------------------------------------
# The help text, stored: ``sdesim run --help`` answers without importing JAX
# ---------------------------------------------------------------------------------------

HELP_FILE = Path(__file__).with_name("keys.txt")
# what help_lines() reads: these files of the package, and the optimizers' signatures
_SOURCES = ("landscapes.py", "models.py", "model.py", "noise.py", "exits.py", "optim.py",
            "cli/build.py", "cli/registry.py")


def sources_digest():
    """A hash of everything ``help_lines()`` depends on: the sources it introspects and the
    versions of optax and JAX (the optimizers' signatures)."""
    from importlib import metadata

    h = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for name in _SOURCES:
        h.update(name.encode() + b"\0" + (root / name).read_bytes())
    for dist in ("optax", "jax"):
        try:
            h.update(f"{dist}=={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist}: missing".encode())
    return h.hexdigest()


def help_text():
    """``help_lines()`` joined: read from ``keys.txt`` when it was written from these very
    sources (its first line is their digest), computed otherwise (importing the package,
    ~2 s), so an edited constructor shows at once."""
    try:
        first, rest = HELP_FILE.read_text(encoding="utf-8").split("\n", 1)
        if first == sources_digest():
            return rest.rstrip("\n")
    except (OSError, ValueError):
        pass
    return "\n".join(help_lines())


def write_help_file():
    """Regenerate ``keys.txt`` (``python -c "from sdesim.cli.registry import
    write_help_file; write_help_file()"``; ``tests/test_cli.py`` fails while it is stale)."""
    HELP_FILE.write_text(sources_digest() + "\n" + "\n".join(help_lines()) + "\n",
                         encoding="utf-8")
    return HELP_FILE
