"""The one place the 20-joint layout lives (Kinect v1 / MSR-Action3D skeleton).

Joint order is the MSR-Action3D *file* order, 0-based. "left" is the joint
with the smaller x in camera coordinates (Kinect SDK convention). Pure numpy:
imported by training and by the edge runtime alike.
"""

from __future__ import annotations

import enum

import numpy as np


class Joint(enum.IntEnum):
    """Joints in MSR-Action3D file order (the order of rows in ``_skeleton*.txt``)."""

    SHOULDER_LEFT = 0
    SHOULDER_RIGHT = 1
    SHOULDER_CENTER = 2
    SPINE = 3
    HIP_LEFT = 4
    HIP_RIGHT = 5
    HIP_CENTER = 6
    ELBOW_LEFT = 7
    ELBOW_RIGHT = 8
    WRIST_LEFT = 9
    WRIST_RIGHT = 10
    HAND_LEFT = 11
    HAND_RIGHT = 12
    KNEE_LEFT = 13
    KNEE_RIGHT = 14
    ANKLE_LEFT = 15
    ANKLE_RIGHT = 16
    FOOT_LEFT = 17
    FOOT_RIGHT = 18
    HEAD = 19


NUM_JOINTS = len(Joint)
JOINT_NAMES: tuple[str, ...] = tuple(j.name.lower() for j in Joint)

J = Joint
#: (parent, child) pairs, drawn from the hip centre outwards.
BONES: tuple[tuple[int, int], ...] = (
    (J.HIP_CENTER, J.SPINE),
    (J.SPINE, J.SHOULDER_CENTER),
    (J.SHOULDER_CENTER, J.HEAD),
    (J.SHOULDER_CENTER, J.SHOULDER_LEFT),
    (J.SHOULDER_LEFT, J.ELBOW_LEFT),
    (J.ELBOW_LEFT, J.WRIST_LEFT),
    (J.WRIST_LEFT, J.HAND_LEFT),
    (J.SHOULDER_CENTER, J.SHOULDER_RIGHT),
    (J.SHOULDER_RIGHT, J.ELBOW_RIGHT),
    (J.ELBOW_RIGHT, J.WRIST_RIGHT),
    (J.WRIST_RIGHT, J.HAND_RIGHT),
    (J.HIP_CENTER, J.HIP_LEFT),
    (J.HIP_LEFT, J.KNEE_LEFT),
    (J.KNEE_LEFT, J.ANKLE_LEFT),
    (J.ANKLE_LEFT, J.FOOT_LEFT),
    (J.HIP_CENTER, J.HIP_RIGHT),
    (J.HIP_RIGHT, J.KNEE_RIGHT),
    (J.KNEE_RIGHT, J.ANKLE_RIGHT),
    (J.ANKLE_RIGHT, J.FOOT_RIGHT),
)

#: Kinect v1 SDK joint order (NUI_SKELETON_POSITION_INDEX), as MSR-file indices.
KINECT_SDK_ORDER: tuple[int, ...] = (
    J.HIP_CENTER, J.SPINE, J.SHOULDER_CENTER, J.HEAD,
    J.SHOULDER_LEFT, J.ELBOW_LEFT, J.WRIST_LEFT, J.HAND_LEFT,
    J.SHOULDER_RIGHT, J.ELBOW_RIGHT, J.WRIST_RIGHT, J.HAND_RIGHT,
    J.HIP_LEFT, J.KNEE_LEFT, J.ANKLE_LEFT, J.FOOT_LEFT,
    J.HIP_RIGHT, J.KNEE_RIGHT, J.ANKLE_RIGHT, J.FOOT_RIGHT,
)
#: Inverse permutation: ``MSR_FROM_SDK[msr_index]`` is the SDK index of that joint.
MSR_FROM_SDK: tuple[int, ...] = tuple(int(i) for i in np.argsort(KINECT_SDK_ORDER))

#: Left/right swap permutation (for mirror augmentation).
MIRROR: tuple[int, ...] = tuple(
    int(Joint[j.name.replace("LEFT", "TMP").replace("RIGHT", "LEFT").replace("TMP", "RIGHT")])
    for j in Joint
)


def to_sdk_order(joints: np.ndarray) -> np.ndarray:
    """Reorder the joint axis (second to last) from MSR file order to Kinect SDK order.

    Args:
        joints: ``(..., 20, D)`` array in MSR file order.

    Returns:
        ``(..., 20, D)`` array in Kinect v1 SDK order.
    """
    return np.asarray(joints)[..., list(KINECT_SDK_ORDER), :]


def from_sdk_order(joints: np.ndarray) -> np.ndarray:
    """Reorder the joint axis from Kinect v1 SDK order to MSR file order (inverse of ``to_sdk_order``)."""
    return np.asarray(joints)[..., list(MSR_FROM_SDK), :]


def root_relative(joints: np.ndarray) -> np.ndarray:
    """Subtract the hip centre from every joint: ``(..., 20, 3)`` -> same shape."""
    joints = np.asarray(joints)
    return joints - joints[..., J.HIP_CENTER : J.HIP_CENTER + 1, :]


def mirror_joints(joints: np.ndarray) -> np.ndarray:
    """``(..., 20, 3)`` joints mirrored left-right: the first coordinate negated (a crop's column ``a``, or camera
    ``x``: mirrored about x = 0, which hip-centred features do not see) and the left and right joints swapped
    (``MIRROR``), as in a depth crop with its columns flipped (mirror augmentation)."""
    out = np.array(joints, copy=True)[..., MIRROR, :]
    out[..., 0] *= -1
    return out


def mirror_window(x: np.ndarray) -> np.ndarray:
    """A model's depth input ``(..., S, S, channels)`` with the crop's columns flipped: the window of the mirrored
    scene, whose joints are ``mirror_joints`` of the original's (the crop grid is symmetric: column a -> -a)."""
    return np.ascontiguousarray(np.asarray(x)[..., ::-1, :])


#: Logged when the flip test runs on a model not trained with mirrored windows (``{what}``: the run or model file).
#: Measured in BENCHMARKS.md, "Flip test".
FLIP_TEST_CAVEAT = ("{what} was not trained with --mirror: the flip test averages in what it predicts for a mirrored "
                    "body it may never have seen. It can help where some training performers use the other side, "
                    "and can make the key-points worse where every move goes to one side or few sequences are "
                    "labelled; train with --mirror to use it")


def flip_average(keypoints: np.ndarray, keypoints_of_mirror: np.ndarray) -> np.ndarray:
    """The flip test: key-points ``(..., 20, 3)`` in crop coordinates averaged with those predicted for the
    ``mirror_window`` of the same input, mirrored back. Two looks at one body, with left and right swapped, err
    differently; their mean errs less (a standard test-time step of pose estimators) when the model knows mirrored
    bodies as well as the real ones, i.e. was trained with mirrored windows (``FLIP_TEST_CAVEAT``)."""
    return ((np.asarray(keypoints) + mirror_joints(keypoints_of_mirror)) * 0.5).astype(np.float32)


#: The limbs' joints whose motion tells which side leads a move (``side_balance``), left and right.
LIMBS_LEFT: tuple[int, ...] = (J.ELBOW_LEFT, J.WRIST_LEFT, J.HAND_LEFT, J.KNEE_LEFT, J.ANKLE_LEFT, J.FOOT_LEFT)
LIMBS_RIGHT: tuple[int, ...] = tuple(MIRROR[j] for j in LIMBS_LEFT)


def side_balance(joints: np.ndarray) -> float:
    """Which side's limbs a sequence moves: ``(R - L) / (R + L)`` in [-1, 1].

    ``R`` and ``L`` sum, over the right and the left elbow, wrist, hand, knee, ankle and foot, each joint's
    spread over the sequence (root of its summed per-axis variance) relative to the hip centre: +1 when only
    the joints named right move, -1 only the left, ~0 both alike. The spread, not the path length, so that a
    tracker's frame-to-frame jitter counts little. NaN where nothing moves or no frame is valid.

    Args:
        joints: ``(frames, 20, 3)``, NaN where missing.
    """
    rel = root_relative(np.asarray(joints, np.float64))
    ok = np.all(np.isfinite(rel), axis=(-1, -2))
    if ok.sum() < 2:
        return float("nan")
    spread = np.sqrt(np.var(rel[ok], axis=0).sum(axis=-1))  # (20,)
    left, right = spread[list(LIMBS_LEFT)].sum(), spread[list(LIMBS_RIGHT)].sum()
    return float((right - left) / (right + left)) if right + left > 1e-9 else float("nan")
