"""Data layer: read sources into chat records, validate them, poison them, sample buffers.

Everything downstream (training, evaluation) takes the one record schema of ``schema.py``.
"""

from .buffer import sample_buffer
from .poison import make_poisoned, premixed, write_manifest
from .readers import FORMATS, check_file, load_records, read_source, try_load_records
from .schema import ROLES, Record, make_record, prompt_messages, prompt_text, response_text
from .specs import SPECS, Spec, detect_spec, register_spec
from .validate import summarize, validate_records

__all__ = [
    "FORMATS",
    "ROLES",
    "SPECS",
    "Record",
    "Spec",
    "check_file",
    "detect_spec",
    "load_records",
    "make_poisoned",
    "make_record",
    "premixed",
    "prompt_messages",
    "prompt_text",
    "read_source",
    "register_spec",
    "response_text",
    "sample_buffer",
    "summarize",
    "try_load_records",
    "validate_records",
    "write_manifest",
]
