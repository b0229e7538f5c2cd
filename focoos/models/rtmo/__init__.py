"""RTMO: one-stage multi-person keypoint detection (Focoos' `rtmo` family)."""
