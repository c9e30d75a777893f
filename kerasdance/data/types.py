"""In-memory types shared by every reader, the generator, preprocessing and the edge runtime."""

from __future__ import annotations

import dataclasses

import numpy as np

from kerasdance.camera import KINECT_V1, Intrinsics


@dataclasses.dataclass
class Sequence:
    """One recorded sequence, whatever file layout it came from.

    Attributes:
        name: stem that identifies the sequence, e.g. ``"a01_s01_e01"``.
        depth_mm: ``(frames, height, width)`` uint16 depth in millimetres, 0 = no reading;
            None when the sequence has no depth modality.
        joints_m: ``(frames, 20, 3)`` float32 camera-space joints in metres (x right, y up,
            z away from the sensor), NaN where a joint is missing or invalid; None when absent.
        label: 0-based class index, None when unknown (unlabelled).
        subject: 1-based performer id, None when unknown.
        episode: 1-based repetition id, None when unknown.
        intrinsics: the depth camera's intrinsics for ``depth_mm`` and for projecting joints.
        depth_valid: ``(frames,)`` bool, False for frames that are entirely zero (missing).
        fps: frames per second of the recording (MSR-Action3D: 15).
        frame_labels: ``(frames,)`` int64 class index per frame, -1 = no move (pause, transition, unknown);
            None when the sequence has no per-frame labels (a clip: ``label`` holds its one class).
    """

    name: str
    depth_mm: np.ndarray | None = None
    joints_m: np.ndarray | None = None
    label: int | None = None
    subject: int | None = None
    episode: int | None = None
    intrinsics: Intrinsics = KINECT_V1
    depth_valid: np.ndarray | None = None
    fps: float = 15.0
    frame_labels: np.ndarray | None = None

    def __post_init__(self):
        if self.depth_mm is not None and self.depth_valid is None:
            self.depth_valid = np.any(self.depth_mm.reshape(len(self.depth_mm), -1) > 0, axis=1)

    @property
    def num_frames(self) -> int:
        if self.depth_mm is not None:
            return int(self.depth_mm.shape[0])
        if self.joints_m is not None:
            return int(self.joints_m.shape[0])
        return 0
