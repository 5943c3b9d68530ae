"""The bundled derivations, installed as package data (see refvi.cli)."""
