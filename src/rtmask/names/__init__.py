"""ROI names: groups of spellings, TG-263 standard names, and maps onto canonical names.

:func:`normalise_name` gives the key that ``Lung_L``, ``L Lung``, ``LUNG LT``, ``lung left``
and ``Lt_Lung_1`` share; :func:`tg263_match` the TG-263 standard name of that group;
:class:`RoiMap` (read by :func:`load_roi_map` from YAML or CSV) maps ROI names onto
canonical names, as ``--roi-map`` does for ``convert``, ``dvh`` and ``names``. Pure Python:
importing this package loads neither numpy nor pydicom.
"""

from rtmask.names._colours import STANDARD_COLOURS, standard_colour
from rtmask.names._map import RoiMap, RoiPattern, load_roi_map
from rtmask.names._normalise import normalise_name, tg263_match, tg263_names
from rtmask.names._stats import (
    NameCount,
    StructureSetNames,
    count_names,
    map_conflicts,
    structure_sets_in_folder,
    suggest_map,
)

__all__ = [
    "STANDARD_COLOURS",
    "NameCount",
    "RoiMap",
    "RoiPattern",
    "StructureSetNames",
    "count_names",
    "load_roi_map",
    "map_conflicts",
    "normalise_name",
    "standard_colour",
    "structure_sets_in_folder",
    "suggest_map",
    "tg263_match",
    "tg263_names",
]
