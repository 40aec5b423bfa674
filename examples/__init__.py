"""The example configs (``*.toml``) and the network they name (``digits_mlp.py``).

Installed as ``sdesim.examples``: ``sdesim examples`` lists them, ``sdesim examples NAME``
prints one (to copy and edit), ``sdesim run --example NAME`` runs it.
"""
