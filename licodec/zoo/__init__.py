"""The model zoo: one registry of codecs and their shipped, hash-verified weights."""

from licodec.zoo.registry import (  # noqa: F401
    DEFAULT_MODEL,
    create_model,
    export_weights,
    get_entry,
    list_models,
    register_model,
)
