"""Float ``(x1, y1, x2, y2)`` box maths with exclusive corners: a box covers ``x1 <= x < x2``, ``y1 <= y < y2``.

Areas are continuous (``(x2 - x1) * (y2 - y1)``), never the ``+ 1`` pixel-inclusive convention, which inflates the
IoU of small boxes and gives two identical one-pixel boxes different scores depending on the code path. Every
function returns a finite number for finite input and treats an invalid box (see :func:`is_valid`) as empty, so
callers never need a zero-division guard of their own.

>>> iou((0.0, 0.0, 10.0, 10.0), (5.0, 0.0, 15.0, 10.0))  # half overlap: 50 / 150
0.3333333333333333
>>> iou((0.0, 0.0, 10.0, 10.0), (10.0, 0.0, 20.0, 10.0))  # touching edges share no area
0.0
"""

import math


Box = tuple[float, float, float, float]


def is_valid(box: Box) -> bool:
    """True when all four numbers are finite and the box has positive width and height.

    >>> is_valid((1.0, 2.0, 3.0, 4.0)), is_valid((3.0, 2.0, 1.0, 4.0)), is_valid((0.0, 0.0, float("nan"), 1.0))
    (True, False, False)
    """
    x1, y1, x2, y2 = box
    # chained comparisons are False for NaN, so this one line checks finiteness and ordering together
    return -math.inf < x1 < x2 < math.inf and -math.inf < y1 < y2 < math.inf


def area(box: Box) -> float:
    """Area of a valid box, 0.0 otherwise."""
    if not is_valid(box):
        return 0.0
    return (box[2] - box[0]) * (box[3] - box[1])


def intersection(a: Box, b: Box) -> float:
    """Area shared by two boxes (0.0 if either is invalid or they are disjoint)."""
    if not (is_valid(a) and is_valid(b)):
        return 0.0
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0


def iou(a: Box, b: Box) -> float:
    """Intersection over union in [0, 1]; 0.0 when either box is invalid.

    >>> iou((0.0, 0.0, 2.0, 2.0), (0.0, 0.0, 2.0, 2.0))
    1.0
    """
    inter = intersection(a, b)
    if inter <= 0:
        return 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    # union >= inter > 0 in exact arithmetic; the guard keeps overflow (areas beyond 1e308) from making NaN
    return min(1.0, inter / union) if 0 < union < math.inf else 0.0


def giou(a: Box, b: Box) -> float:
    """Generalized IoU in [-1, 1]: IoU minus the share of the smallest enclosing box that neither box covers.

    Unlike IoU it still ranks disjoint boxes (closer is better). -1.0 when either box is invalid.

    >>> giou((0.0, 0.0, 1.0, 1.0), (2.0, 0.0, 3.0, 1.0))  # disjoint: hull 3, union 2
    -0.3333333333333333
    """
    if not (is_valid(a) and is_valid(b)):
        return -1.0
    inter = intersection(a, b)
    union = area(a) + area(b) - inter
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    if not (0 < union < math.inf and hull < math.inf):  # overflow only; hull >= union > 0 otherwise
        return -1.0
    return max(-1.0, min(1.0, inter / union - (hull - union) / hull))


def coverage(pred: Box, gt: Box) -> float:
    """Fraction of the ground-truth area that ``pred`` covers, in [0, 1] (0.0 if either box is invalid).

    >>> coverage((0.0, 0.0, 100.0, 100.0), (10.0, 10.0, 20.0, 20.0))  # a huge box covers everything
    1.0
    """
    gt_area = area(gt)
    return min(1.0, intersection(pred, gt) / gt_area) if 0 < gt_area < math.inf else 0.0


def corner_l1(pred: Box, gt: Box, width: float, height: float) -> float:
    """Mean absolute corner distance, x by ``width`` and y by ``height``: in [0, 1] for boxes inside the frame.

    Normalizing by the frame (not by the GT size) keeps the term comparable across images and keeps it informative
    for tiny boxes, whose IoU is 0 for almost every guess. 1.0 when either box is invalid or the frame is empty.

    >>> corner_l1((0.0, 0.0, 10.0, 10.0), (10.0, 0.0, 20.0, 10.0), 100.0, 50.0)  # x1, x2 off by 0.1 width each
    0.05
    """
    if not (is_valid(pred) and is_valid(gt)) or not (width > 0 and height > 0):
        return 1.0
    dx = abs(pred[0] - gt[0]) + abs(pred[2] - gt[2])
    dy = abs(pred[1] - gt[1]) + abs(pred[3] - gt[3])
    distance = (dx / width + dy / height) / 4
    return min(1.0, distance) if math.isfinite(distance) else 1.0


def center_l1(pred: Box, gt: Box, width: float, height: float) -> float:
    """Mean absolute centre distance, x by ``width`` and y by ``height``: in [0, 1] for boxes inside the frame.

    The centre counterpart of :func:`corner_l1` (it ignores size: a huge box around the right centre scores 0).
    1.0 when either box is invalid or the frame is empty.

    >>> center_l1((0.0, 0.0, 10.0, 10.0), (10.0, 0.0, 20.0, 10.0), 100.0, 50.0)  # centres 0.1 width apart, / 2
    0.05
    """
    if not (is_valid(pred) and is_valid(gt)) or not (width > 0 and height > 0):
        return 1.0
    dx = abs(pred[0] + pred[2] - gt[0] - gt[2]) / 2
    dy = abs(pred[1] + pred[3] - gt[1] - gt[3]) / 2
    distance = (dx / width + dy / height) / 2
    return min(1.0, distance) if math.isfinite(distance) else 1.0


def clip_box(box: Box, width: float, height: float) -> Box:
    """Clamp each coordinate into ``[0, width]`` / ``[0, height]``; NaN stays NaN, so the box stays invalid.

    >>> clip_box((-5.0, 10.0, 700.0, 20.0), 640, 480)
    (0.0, 10.0, 640.0, 20.0)
    """
    x1, y1, x2, y2 = box
    if 0.0 <= x1 <= width and 0.0 <= x2 <= width and 0.0 <= y1 <= height and 0.0 <= y2 <= height:
        return box  # the usual case, and the reward's hot path
    return (_clamp(x1, width), _clamp(y1, height), _clamp(x2, width), _clamp(y2, height))


def _clamp(value: float, upper: float) -> float:
    # written out because builtin min/max give order-dependent results for NaN; NaN falls through unchanged
    if value < 0.0:
        return 0.0
    return float(upper) if value > upper else value
