"""Ground-truth accuracy tables, kept here for the API's sake: the readers live with the space they
describe (:mod:`tgsage.spaces.ground_truth`), so a search may load one without importing the
experiment layer above it."""

from tgsage.spaces.ground_truth import GroundTruth, load_nb201_api, load_nb201_table

__all__ = ["GroundTruth", "load_nb201_api", "load_nb201_table"]
