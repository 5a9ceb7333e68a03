"""Conventional display colours for common ROIs, keyed by TG-263 name.

TG-263 standardises names, not colours, and DICOM none either; planning systems each ship
their own defaults. This is rtmask's own small table of the colours most departments use
(targets red/orange/magenta, lungs blue, spinal cord yellow, ...), so that predictions
written back by ``to-rtstruct`` look familiar. A ROI whose name matches no entry (through
:func:`~rtmask.names.tg263_match`, or a target prefix) gets None and the writer's palette.
"""

from __future__ import annotations

import re

from rtmask.names._normalise import tg263_match

__all__ = ["STANDARD_COLOURS", "standard_colour"]

#: TG-263 name -> (r, g, b), 0-255.
STANDARD_COLOURS: dict[str, tuple[int, int, int]] = {
    "External": (0, 200, 0),
    "Body": (0, 200, 0),
    "Heart": (220, 20, 60),
    "Pericardium": (255, 105, 180),
    "Lung_L": (0, 160, 255),
    "Lung_R": (30, 100, 255),
    "Lungs": (0, 130, 255),
    "Esophagus": (160, 82, 45),
    "SpinalCord": (255, 255, 0),
    "SpinalCanal": (255, 200, 0),
    "Trachea": (150, 220, 255),
    "Brain": (255, 192, 203),
    "Brainstem": (255, 140, 0),
    "OpticChiasm": (148, 0, 211),
    "OpticNrv_L": (186, 85, 211),
    "OpticNrv_R": (138, 43, 226),
    "Eye_L": (0, 255, 255),
    "Eye_R": (0, 206, 209),
    "Lens_L": (127, 255, 212),
    "Lens_R": (64, 224, 208),
    "Parotid_L": (0, 255, 127),
    "Parotid_R": (46, 139, 87),
    "Larynx": (255, 160, 122),
    "Liver": (139, 69, 19),
    "Kidney_L": (210, 105, 30),
    "Kidney_R": (205, 133, 63),
    "Stomach": (255, 182, 193),
    "Bowel": (244, 164, 96),
    "Bladder": (255, 215, 0),
    "Rectum": (128, 0, 0),
    "Prostate": (0, 0, 255),
    "Femur_Head_L": (173, 216, 230),
    "Femur_Head_R": (135, 206, 235),
    "Breast_L": (255, 228, 196),
    "Breast_R": (255, 218, 185),
    "Bone_Mandible": (245, 245, 220),
}

#: Target volumes by their TG-263 prefix (PTV_High, CTVp, GTV_1, ...).
_TARGETS = (
    (re.compile(r"^ptv", re.IGNORECASE), (255, 0, 0)),
    (re.compile(r"^ctv", re.IGNORECASE), (255, 128, 0)),
    (re.compile(r"^itv", re.IGNORECASE), (255, 0, 255)),
    (re.compile(r"^gtv", re.IGNORECASE), (255, 0, 128)),
)


def standard_colour(name: str) -> tuple[int, int, int] | None:
    """Return the conventional ``(r, g, b)`` (0-255) for a ROI name, or None.

    ``"LUNG LT"`` is matched through its TG-263 name (``Lung_L``); names beginning with
    ``PTV``/``CTV``/``ITV``/``GTV`` take their target colour.
    """
    standard = tg263_match(name)
    if standard is not None and standard in STANDARD_COLOURS:
        return STANDARD_COLOURS[standard]
    if name.strip() in STANDARD_COLOURS:
        return STANDARD_COLOURS[name.strip()]
    for pattern, colour in _TARGETS:
        if pattern.match(name.strip()):
            return colour
    return None
