"""Preference data: readers for the formats users have, validation, the built-in demo task."""

from rewardlab.data.loading import data_hash, find_leakage, load_preferences
from rewardlab.data.types import DataError, DataSummary, Message, PreferenceGroup, Text

__all__ = [
    "DataError",
    "DataSummary",
    "Message",
    "PreferenceGroup",
    "Text",
    "data_hash",
    "find_leakage",
    "load_preferences",
]
